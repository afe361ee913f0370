"""The training targets checked on result files: each status follows from the numbers (met, missed, not measurable)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from invlab.eval import report
from scripts.targets import MET, MISSED, NOT_MEASURABLE, check_targets, main


def _eval_json(folder: Path, model: str, family: str, rates, bpp, psnr, hours=(1.0,), variable=False, lambdas=(0.01,),
               starts=None):
    meta = {"model": model, "family": family, "trained": True, "variable_rate": variable, "lambdas": list(lambdas),
            "weights": [{"training_cpu_hours": h, "training_steps": 100} for h in hours]}
    for weight, start in zip(meta["weights"], starts or [], strict=False):
        weight["fine_tuned_from"] = start
    data = {"name": model, "results": {"rate": list(rates), "bpp": list(bpp), "psnr-rgb": list(psnr)}, "meta": meta}
    (folder / f"{model}-eval.json").write_text(json.dumps(data))


def _status(table, target: str, model: str) -> tuple[str, str]:
    row = table[(table["target"].str.startswith(target)) & (table["model"] == model)]
    assert len(row) == 1, table
    return row["status"].iloc[0], row["measured"].iloc[0]


def test_targets_follow_from_the_curves(tmp_path):
    kodak = tmp_path / "kodak"
    kodak.mkdir()
    (kodak / "jpeg.json").write_text(json.dumps({"name": "jpeg", "results": {
        "bpp": [0.2, 0.5, 1.0, 2.0], "psnr-rgb": [25.0, 29.0, 32.0, 36.0]}}))
    # an invertible model, monotone, 2 dB above JPEG everywhere, 4 CPU-h over 8 anchors
    _eval_json(kodak, "msinn-mini", "msinn", [0, 1, 2, 3], [0.2, 0.5, 1.0, 2.0], [27.0, 31.0, 34.0, 38.0],
               hours=(4.0,), variable=True, lambdas=[0.1] * 8)
    # an autoencoder: not monotone in PSNR, below JPEG at its last point, reaching 1.5 bpp
    _eval_json(kodak, "mbt2018-mean-mini", "baseline", [0, 1, 2], [0.3, 0.8, 1.5], [28.0, 31.5, 31.0],
               hours=(1.0, 0.5, 0.5))
    # an untrained result is no evidence: it is left out
    _eval_json(kodak, "anfic-mini-noctx", "anfic", [0, 1], [0.3, 0.6], [30.0, 33.0])
    untrained = json.loads((kodak / "anfic-mini-noctx-eval.json").read_text())
    untrained["meta"]["trained"] = False
    (kodak / "anfic-mini-noctx-eval.json").write_text(json.dumps(untrained))

    # an ablation (the model less one part) is compared with its model, not held to the targets
    _eval_json(kodak, "invcompress-mini-nofe", "invcompress", [0, 1], [0.3, 0.6], [20.0, 19.0])

    table = check_targets(kodak)
    assert "invcompress-mini-nofe" not in set(table["model"])  # only compared with its model, which has no curve here
    assert _status(table, "an ablation", "invcompress-mini-nofe vs invcompress-mini")[0] == NOT_MEASURABLE
    assert _status(table, "monotone", "msinn-mini")[0] == MET
    status, measured = _status(table, "monotone", "mbt2018-mean-mini")
    assert status == MISSED and "1→2" in measured
    status, measured = _status(table, "beats JPEG", "msinn-mini")
    assert status == MET and "+2.00 dB" in measured
    status, measured = _status(table, "beats JPEG", "mbt2018-mean-mini")
    assert status == MISSED and "at 1.500 bpp" in measured
    status, measured = _status(table, "invertible beats autoencoder", "msinn-mini vs mbt2018-mean-mini")
    assert status == MET and "1.00–1.50 bpp" in measured
    assert "msinn-mini 0.50 CPU-h per rate" in measured and "mbt2018-mean-mini 0.67 CPU-h per rate" in measured
    status, measured = _status(table, "multi-scale", "msanfic-mini vs anfic-mini-noctx")
    assert status == NOT_MEASURABLE and "anfic-mini-noctx" in measured
    assert not (table["model"] == "anfic-mini-noctx").any()


def test_multi_scale_vs_single_scale_is_a_bd_rate_with_both_budgets(tmp_path):
    kodak = tmp_path / "kodak"
    kodak.mkdir()
    bpp = [0.3, 0.6, 1.0]
    _eval_json(kodak, "anfic-mini-noctx", "anfic", [1, 2, 3], bpp, [29.0, 32.0, 34.0], hours=(1.0, 0.5, 0.5))
    _eval_json(kodak, "msanfic-mini", "manfic", [1, 2, 3], [b * 0.9 for b in bpp], [29.0, 32.0, 34.0],
               hours=(0.9, 0.3, 0.3))  # the same PSNR with 10 % fewer bits
    _eval_json(kodak, "manfic-mini", "manfic", [1, 2, 3], [b * 1.2 for b in bpp], [29.0, 32.0, 34.0])
    table = check_targets(kodak)
    status, measured = _status(table, "multi-scale", "msanfic-mini vs anfic-mini-noctx")
    assert status == MET and "BD-rate -10.0 %" in measured
    assert "msanfic-mini 0.50 CPU-h per rate" in measured and "anfic-mini-noctx 0.67 CPU-h per rate" in measured
    status, measured = _status(table, "multi-scale", "manfic-mini vs anfic-mini-noctx")
    assert status == MISSED and "BD-rate +20.0 %" in measured


def test_a_model_warm_from_another_names_that_budget_beside_its_own(tmp_path):
    from invlab.eval.anchors import training_budget

    kodak = tmp_path / "kodak"
    kodak.mkdir()
    bpp = [0.3, 0.6, 1.0]
    _eval_json(kodak, "anfic-mini-noctx", "anfic", [1, 2, 3], bpp, [29.0, 32.0, 34.0], hours=(0.5, 1.5, 0.5))
    starts = [{"model": "anfic-mini-noctx", "rate_index": i, "weights_hash": f"h{i}", "cpu_hours_total": h}
              for i, h in ((1, 0.5), (2, 1.5), (3, 0.5))]
    _eval_json(kodak, "msanfic-mini", "manfic", [1, 2, 3], bpp, [29.5, 32.5, 34.5], hours=(0.3, 0.3, 0.3),
               starts=starts)
    status, measured = _status(check_targets(kodak), "multi-scale", "msanfic-mini vs anfic-mini-noctx")
    assert status == MET and "msanfic-mini 0.30 CPU-h per rate (+0.83 of anfic-mini-noctx's, its start)" in measured
    meta = json.loads((kodak / "msanfic-mini-eval.json").read_text())["meta"]
    assert training_budget(meta) == "3 files, 0.9 CPU-h, 300 steps, warm from anfic-mini-noctx (+2.5 CPU-h)"
    meta["weights"][0]["fine_tuned_from"] = {"model": "msanfic-mini", "rate_index": 2, "cpu_hours_total": 9.0}
    meta["weights"][1:] = [{k: v for k, v in w.items() if k != "fine_tuned_from"} for w in meta["weights"][1:]]
    assert training_budget(meta) == "3 files, 0.9 CPU-h, 300 steps"  # a fine-tune within its family: no extra


def test_an_autoencoder_below_one_bpp_cannot_be_compared_at_high_rate(tmp_path):
    _eval_json(tmp_path, "msinn-mini", "msinn", [0, 1], [0.5, 1.5], [31.0, 37.0], variable=True, lambdas=[1, 2])
    _eval_json(tmp_path, "bmshj2018-hyperprior-mini", "baseline", [0, 1], [0.3, 0.7], [28.0, 31.0])
    table = check_targets(tmp_path)
    status, measured = _status(table, "invertible beats autoencoder", "msinn-mini vs bmshj2018-hyperprior-mini")
    assert status == NOT_MEASURABLE and "0.30–0.70" in measured
    assert _status(table, "beats JPEG", "msinn-mini")[0] == NOT_MEASURABLE  # no jpeg.json to compare with


def test_the_targets_and_the_results_blocks_are_written_each_by_its_command(tmp_path, capsys):
    kodak = tmp_path / "results" / "kodak"
    kodak.mkdir(parents=True)
    _eval_json(kodak, "msinn-mini", "msinn", [0, 1], [0.5, 1.5], [31.0, 37.0], variable=True, lambdas=[1, 2])
    page = tmp_path / "results.md"
    page.write_text("<!-- results:start -->\n<!-- results:end -->\nx\n"
                    "<!-- targets:start -->\nold\n<!-- targets:end -->\n")
    assert main(["--results", str(kodak), "--write", str(page)]) == 0
    text = page.read_text()
    assert "old" not in text and "| monotone curve | msinn-mini | met |" in text and "\nx\n" in text
    args = argparse.Namespace(results=str(tmp_path / "results"), anchor="vtm", write=str(page))
    assert report.run(args) == 0
    assert "| monotone curve | msinn-mini | met |" in page.read_text()  # the results block leaves the targets alone
    capsys.readouterr()
    assert main(["--results", str(kodak)]) == 0
    assert "| monotone curve | msinn-mini | met |" in capsys.readouterr().out


def test_a_gpu_trained_model_names_its_gpu_time_in_the_targets(tmp_path):
    _eval_json(tmp_path, "msinn-mini-12", "msinn", [0, 1], [0.5, 1.5], [31.0, 37.0], hours=(None,), variable=True,
               lambdas=[1, 2], starts=[{"model": "msinn-mini", "cpu_hours_total": 14.0}])
    data = json.loads((tmp_path / "msinn-mini-12-eval.json").read_text())
    data["meta"]["weights"][0]["training_gpu"] = "8.7 GPU-min (NVIDIA H200)"
    (tmp_path / "msinn-mini-12-eval.json").write_text(json.dumps(data))
    _eval_json(tmp_path, "mbt2018-mean-mini", "baseline", [0, 1], [0.8, 1.2], [30.0, 33.0], hours=(1.0, 1.0))
    status, measured = _status(check_targets(tmp_path), "invertible beats autoencoder",
                               "msinn-mini-12 vs mbt2018-mean-mini")
    assert status == MET
    gpu = "msinn-mini-12 8.7 GPU-min (NVIDIA H200) in all (+7.00 CPU-h per rate of msinn-mini's, its start)"
    assert gpu in measured


def test_an_ablation_is_compared_with_the_model_it_ablates(tmp_path):
    _eval_json(tmp_path, "invcompress-mini", "invcompress", [0, 1, 2], [0.25, 0.5, 0.75], [28.0, 31.0, 32.0],
               hours=(1.0, 1.0, 1.0))
    _eval_json(tmp_path, "invcompress-mini-nofe", "invcompress", [2], [0.6], [30.5], hours=(0.5,))
    _eval_json(tmp_path, "invcompress-mini-conv1x1", "invcompress", [2], [0.6], [32.0], hours=(0.5,))
    table = check_targets(tmp_path)
    assert "invcompress-mini-nofe" not in set(table["model"])  # held to no target of its own
    status, measured = _status(table, "an ablation", "invcompress-mini-nofe vs invcompress-mini")
    # invcompress-mini at 0.6 bpp, linear in log-bpp between (0.5, 31) and (0.75, 32): 31.45 dB
    assert status == MET and measured.startswith("-0.95 dB at 0.600 bpp")
    assert _status(table, "an ablation", "invcompress-mini-conv1x1 vs invcompress-mini")[0] == MISSED
    (tmp_path / "invcompress-mini-eval.json").unlink()
    table = check_targets(tmp_path)
    assert _status(table, "an ablation", "invcompress-mini-nofe vs invcompress-mini")[0] == NOT_MEASURABLE
