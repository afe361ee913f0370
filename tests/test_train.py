"""The shared training pipeline on CPU: smoke run, exact resume, time-limit exit, export -> load_model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from invlab.cli import main as cli_main
from invlab.train.data import ImageFolder, dataset_hash, dihedral
from invlab.train.export import export_weights
from invlab.train.trainer import TrainConfig, Trainer, build_model
from invlab.weights import load_model


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"crop{i}.png")
    return folder


@pytest.fixture(scope="module")
def kodak_small(tmp_path_factory, kodak_dir_module) -> Path:
    folder = tmp_path_factory.mktemp("kodak")
    with Image.open(kodak_dir_module / "kodim23.png") as img:
        img.crop((300, 200, 364, 248)).save(folder / "kodim23-crop.png")
    return folder


@pytest.fixture(scope="module")
def kodak_dir_module() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "kodak"


def _cfg(crops: Path, run_dir: Path, **kw) -> TrainConfig:
    base = TrainConfig(model="tiny-flow", data=str(crops), val=str(crops), run_dir=str(run_dir), batch_size=4,
                       crop=32, max_steps=4, log_every=1, val_every=2, ckpt_every=100, progress=False)
    return replace(base, **kw)


def _log(run_dir: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run_dir / "log.jsonl").read_text().splitlines()]


def test_batches_are_a_function_of_seed_and_step(crops):
    data = ImageFolder(crops, 32)
    a, b = data.train_batch(0, 5, 4), data.train_batch(0, 5, 4)
    assert a.shape == (4, 3, 32, 32) and torch.equal(a, b)
    assert not torch.equal(a, data.train_batch(0, 6, 4))
    assert data.centre_crops().shape == (8, 3, 32, 32)
    img = np.arange(12).reshape(2, 2, 3)
    assert len({dihedral(img, k).tobytes() for k in range(8)}) == 8
    assert len(dataset_hash(crops)) == 64


def test_cli_smoke_training_three_steps(crops, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    monkeypatch.setattr("sys.argv", ["invlab", "train"])  # cli.build_parser picks lazy subcommands from sys.argv
    rc = cli_main(["train", "tiny-flow", "--data", str(crops), "--val", str(crops), "--crop", "32", "--batch-size", "4",
                   "--max-steps", "3", "--log-every", "1", "--val-every", "3", "--device", "cpu", "--no-progress",
                   "--run-dir", str(run_dir)])
    assert rc == 0 and (run_dir / "last.pt").is_file()
    log = _log(run_dir)
    assert [r["step"] for r in log if r["split"] == "train"] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) and r["bpp"] > 0 for r in log)
    assert [r["step"] for r in log if r["split"] == "val"] == [3]


def test_resume_is_exact_and_time_limit_checkpoints(crops, tmp_path):
    straight = Trainer(_cfg(crops, tmp_path / "a"))
    assert straight.run() == "done"

    for expected_step in (1, 2):  # a zero time limit stops after one step, with a checkpoint
        interrupted = Trainer(_cfg(crops, tmp_path / "b", time_limit_min=0.0))
        assert interrupted.run() == "time_limit" and interrupted.step == expected_step
        assert torch.load(tmp_path / "b" / "last.pt", weights_only=False)["step"] == expected_step
    resumed = Trainer(_cfg(crops, tmp_path / "b"))
    assert resumed.step == 2
    assert resumed.run() == "done"

    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    def untimed(run: str) -> list[dict]:  # wall-clock and CPU seconds differ; every measured value must not
        return [{k: v for k, v in r.items() if k not in ("seconds", "cpu_seconds")} for r in _log(tmp_path / run)
                if r.get("at") != "time_limit"]

    assert untimed("a") == untimed("b")
    ends = [r for r in _log(tmp_path / "b") if r.get("at") == "time_limit"]
    assert [(r["split"], r["step"]) for r in ends] == [("val", 1)]  # a run that stops early validates its end
    cpu = [r["cpu_seconds"] for r in _log(tmp_path / "b") if r["split"] == "train"]  # the study's CPU-minutes
    assert cpu == sorted(cpu) and all(c >= 0 for c in cpu)  # carried across the resume, never reset


def test_export_then_load_model_round_trip(crops, kodak_small, tmp_path, monkeypatch):
    monkeypatch.setenv("INVLAB_WEIGHTS", str(tmp_path / "weights"))
    trainer = Trainer(_cfg(crops, tmp_path / "run", max_steps=2))
    trainer.run()
    for fp16 in (False, True):
        path = export_weights(trainer.ckpt_path, fp16=fp16, kodak=kodak_small)
        meta = json.loads(path.with_suffix(".json").read_text())
        model = load_model("tiny-flow")
        assert model.trained and meta["weights_hash"] == model.weights_hash.hex()
        assert meta["training"]["steps"] == 2 and meta["storage"] == ("fp16" if fp16 else "fp32")
        assert meta["decode_matches_forward"] is True
        assert [p["rate"] for p in meta["kodak_rd"]] == [0.0, 1.0, 2.0] and meta["kodak_images"] == 1
        assert meta["data"]["train_sha256"] == dataset_hash(crops) and meta["git_commit"]
        trained = trainer.model.state_dict()
        for name, p in model.named_parameters():
            want = trained[name].half().float() if fp16 else trained[name]
            assert torch.equal(p.detach(), want), name


def test_fixed_rate_lambda_selection(crops, tmp_path):
    cfg = _cfg(crops, tmp_path, model="bmshj2018-hyperprior-mini", rate_index=4)
    model, config = build_model(cfg)
    assert model.lambdas == (0.0483,) and config == {"lambdas": [0.0483]}
    assert build_model(replace(cfg, rate_index=None, lmbda=0.02))[0].lambdas == (0.02,)
    with pytest.raises(ValueError, match="variable-rate"):
        build_model(_cfg(crops, tmp_path, lmbda=0.01))


def test_gpu_training_call_runs_end_to_end_on_the_cpu(crops, tmp_path):
    """scripts/gpu/train.sh as a GPU session sends it (CPU, no wheels): train, export with Kodak RD, pieces."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "out"
    env = {**os.environ, "INSTALL_WHEELS": "0", "PYTHON": sys.executable, "DEVICE": "cpu", "OUT": str(out),
           "STEPS": "2", "KODAK_LIMIT": "1", "MINUTES": "1", "OMP_NUM_THREADS": "1", "RUNS_DIR": str(tmp_path / "runs"),
           "DATA": str(crops), "VAL": str(crops), "INVLAB_GIT_COMMIT": "test"}
    run = subprocess.run(["bash", "scripts/gpu/train.sh", "tiny-flow", "--batch-size", "2", "--crop", "32",
                          "--log-every", "1", "--val-every", "2"], cwd=repo, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    meta = json.loads((out / "tiny-flow.json").read_text())
    assert meta["training"]["steps"] == 2 and meta["storage"] == "fp16" and meta["decode_matches_forward"] is True
    assert meta["git_commit"] == "test" and (out / "tiny-flow.pt").is_file() and (out / "log.jsonl").is_file()
    assert sorted(p.name for p in out.glob("last.pt.part-*")) == ["last.pt.part-00"]
    assert all(p.stat().st_size <= 16 * 2**20 for p in out.iterdir())  # what the device sends back


def test_bf16_training_is_finite_and_exports_exact_fp32_coding(crops, kodak_small, tmp_path, monkeypatch):
    monkeypatch.setenv("INVLAB_WEIGHTS", str(tmp_path / "weights"))
    trainer = Trainer(_cfg(crops, tmp_path / "run", max_steps=3, precision="bf16"))
    assert trainer.run() == "done"
    assert all(np.isfinite(r["loss"]) and np.isfinite(r["bpp"]) for r in _log(tmp_path / "run"))
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # autocast: fp32 master weights
    meta = json.loads(export_weights(trainer.ckpt_path, fp16=True, kodak=kodak_small).with_suffix(".json").read_text())
    assert meta["decode_matches_forward"] is True and meta["training"]["precision"] == "bf16"
    assert meta["training"]["cpu_hours"] is not None and meta["training"]["samples_seen"] == 3 * 4
    from invlab.weights import budget_line
    from invlab.widgets.sources import model_status

    line = budget_line("tiny-flow")
    assert "CPU-hours" in line and "bf16" in line and "3 steps" in line and "12 samples" in line
    assert model_status("tiny-flow").startswith(line)


def test_warm_continuation_keeps_step_anchor_sampling_and_data_order(crops, tmp_path, monkeypatch):
    monkeypatch.setenv("INVLAB_WEIGHTS", str(tmp_path / "weights"))
    straight = Trainer(_cfg(crops, tmp_path / "a", max_steps=4))
    first = Trainer(_cfg(crops, tmp_path / "b", max_steps=4, time_limit_min=0.0))
    first.run()
    first.run()  # two steps, then "the checkpoint is lost": continue from the exported weights
    weights = export_weights(first.ckpt_path, kodak=None)
    warm = Trainer(_cfg(crops, tmp_path / "c", max_steps=4, init_from=str(weights), start_step=2))
    assert warm.step == 2 and warm.scheduler.last_epoch == 2
    assert torch.equal(warm._rates(2, 4), straight._rates(2, 4))
    assert torch.equal(warm.train_data.train_batch(0, 2, 4), straight.train_data.train_batch(0, 2, 4))
    warm.run()
    assert [r["step"] for r in _log(tmp_path / "c") if r["split"] == "train"] == [3, 4]
    trained = first.model.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in load_model("tiny-flow").state_dict().items() if k in trained
               and v.is_floating_point() and not k.endswith(("_quantized_cdf", "_offset", "_cdf_length")))


def test_wsd_schedule_decays_at_the_end_and_the_next_run_continues_the_stable_branch(crops, tmp_path):
    from invlab.train.trainer import wsd_factor

    assert wsd_factor(0.1, 0.5, 0.2, 0.05) == 0.5  # warming up
    assert wsd_factor(0.5, 1.0, 0.2, 0.05) == 1.0  # stable
    assert wsd_factor(1.0, 1.0, 0.2, 0.05) == pytest.approx(0.05)  # decayed
    cfg = _cfg(crops, tmp_path / "run", max_steps=6, schedule="wsd", lr=1e-3, warmup_steps=2, decay_fraction=0.5)
    trainer = Trainer(cfg)
    trainer.run()
    lrs = [r["lr"] for r in _log(tmp_path / "run") if r["split"] == "train"]
    assert lrs[0] == pytest.approx(5e-4) and lrs[1] == pytest.approx(1e-3)  # warm-up
    assert lrs[5] < lrs[4] < lrs[3] == pytest.approx(1e-3)  # cosine decay once past half the budget
    stable = torch.load(tmp_path / "run" / "stable.pt", weights_only=False)
    assert stable["step"] == 4
    following = Trainer(replace(cfg, max_steps=8))
    assert following.step == 4 and following.resumed_from.endswith("stable.pt")
    assert following.spent_seconds >= trainer.spent_seconds > 0


def _torchrun(args: list[str], env_extra: dict | None = None) -> None:
    import os
    import subprocess
    import sys

    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    run = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "invlab.train", *args],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]


def test_two_processes_train_like_one_and_resume_exactly(crops, tmp_path):
    """torchrun, 2 CPU processes (gloo): ranks agree at every checkpoint (checked inside the trainer), the weights
    match a one-process run of the same batches, and a run stopped and resumed ends where a straight run ends."""
    common = ["tiny-flow", "--data", str(crops), "--val", str(crops), "--crop", "32", "--batch-size", "4",
              "--log-every", "1", "--val-every", "100", "--ckpt-every", "1", "--no-progress", "--device", "cpu"]
    _torchrun([*common, "--max-steps", "4", "--run-dir", str(tmp_path / "ddp")])
    _torchrun([*common, "--max-steps", "4", "--run-dir", str(tmp_path / "cut"), "--time-limit", "0"])
    _torchrun([*common, "--max-steps", "4", "--run-dir", str(tmp_path / "cut")])
    single = Trainer(_cfg(crops, tmp_path / "one", max_steps=4, val_every=100, ckpt_every=100))
    single.run()
    ddp = torch.load(tmp_path / "ddp" / "last.pt", weights_only=False)
    cut = torch.load(tmp_path / "cut" / "last.pt", weights_only=False)
    assert ddp["step"] == cut["step"] == 4
    assert all(torch.equal(v, cut["model"][k]) for k, v in ddp["model"].items())  # resume is exact
    logged = [r for r in _log(tmp_path / "ddp") if r["split"] == "train"]
    assert [r["step"] for r in logged] == [1, 2, 3, 4] and all(np.isfinite(r["loss"]) for r in logged)
    alone = [r for r in _log(tmp_path / "one") if r["split"] == "train"]
    # step 1's loss is taken before any update: the shares of the batch average to the one-process loss (up to
    # the quantisation noise, which each rank draws for its own share)
    assert logged[0]["loss"] == pytest.approx(alone[0]["loss"], rel=1e-3)
    assert logged[0]["bpp"] == pytest.approx(alone[0]["bpp"], rel=1e-3)
    for k, v in single.model.state_dict().items():  # the same steps, up to float-sum order (Adam: <= lr per step)
        if v.is_floating_point():
            assert torch.allclose(v, ddp["model"][k], atol=4 * 1e-4 * 1.01), k


def test_validation_reports_three_anchors_on_its_own_crop_size(crops, tmp_path):
    trainer = Trainer(_cfg(crops, tmp_path / "run", val_crop=16, max_steps=2, actnorm_init="identity"))
    assert trainer.val_batch.shape[-2:] == (16, 16)
    val = trainer.validate()  # tiny-flow: 3 anchors, all three reported
    assert {"bpp@0", "bpp@1", "bpp@2", "psnr@0", "psnr@2"} <= set(val)
    assert val["bpp@0"] < val["bpp@2"] and abs(np.mean([val[f"bpp@{a}"] for a in range(3)]) - val["bpp"]) < 1e-6


def test_actnorm_identity_init_skips_the_data_dependent_init(crops, tmp_path):
    from invlab.flows.actnorm import ActNorm

    trainer = Trainer(_cfg(crops, tmp_path / "run", model="msinn-mini", crop=32, actnorm_init="identity",
                           model_config={"depths": (1, 1, 1, 1), "hidden": (8, 8, 8, 8), "context_width": 8,
                                         "postnet": None}))
    norms = [m for m in trainer.model.modules() if isinstance(m, ActNorm)]
    assert norms and all(bool(m.initialized) and not m.log_scale.any() for m in norms)


def test_convergence_study_report_from_run_logs(tmp_path):
    from invlab.train import study

    runs = tmp_path / "runs"
    for arm, losses in (("msinn-base", [3.0, 2.5]), ("msinn-lr1e-4", [3.2, 2.9])):
        (runs / arm).mkdir(parents=True)
        cpu = {"cpu_seconds": 90.0} if arm == "msinn-lr1e-4" else {}  # a log with CPU time: that is the axis
        lines = [json.dumps({"step": 100 * (i + 1), "split": "val", "seconds": 60.0 * (i + 1), "loss": loss,
                             "bpp": 1.0, "psnr": 30.0, **{k: v * (i + 1) for k, v in cpu.items()}})
                 for i, loss in enumerate(losses)]
        (runs / arm / "log.jsonl").write_text("\n".join(lines) + '\n{"torn')
    table = study.report(runs, tmp_path / "out", threads=2)
    csv = (tmp_path / "out" / "convergence.csv").read_text().splitlines()
    assert len(csv) == 5 and (tmp_path / "out" / "convergence.png").stat().st_size > 0
    row = table.set_index("arm").loc["msinn-lr1e-4"]
    for arm, loss, cpu in (("hyperprior-base", 1.1, 1.0), ("hyperprior-fp32", 1.0, 2.0)):  # bf16 vs fp32
        (runs / arm).mkdir(parents=True)
        (runs / arm / "log.jsonl").write_text("\n".join(json.dumps(
            {"step": step, "split": "train", "seconds": 1.0, "cpu_seconds": cpu * step, "loss": loss})
            for step in (25, 50, 75)) + "\n")
    precision = study.precision_table(runs).set_index("model").loc["bmshj2018-hyperprior-mini"]
    assert precision["train loss bf16 vs fp32 %"] == pytest.approx(10.0) and precision["bf16 speed-up"] == 2.0
    # the baseline at 3.0 CPU-minutes: halfway between its validations at 2.0 (3.0) and 4.0 (2.5)
    assert row["CPU-min"] == 3.0 and row["loss vs baseline %"] == pytest.approx(100 * (2.9 / 2.75 - 1))


def test_a_fine_tune_names_its_start_and_keeps_its_budget_apart(tmp_path, monkeypatch):
    import json

    from invlab.train.export import _init_is, _init_metadata, _started_from, fine_tune_record
    from invlab.weights import budget_line

    base = {"model": "bmshj2018-hyperprior-mini", "rate_index": 2, "weights_hash": "ab",
            "training": {"steps": 5000, "cpu_hours_total": 1.5}}
    (tmp_path / "q2.json").write_text(json.dumps(base))
    cfg = {"init_from": str(tmp_path / "q2.pt"), "start_step": 0}  # another λ, from step 0: a fine-tune
    assert _started_from(cfg, tmp_path / "q3.pt") is None and _init_metadata(cfg) == base
    assert not _init_is(cfg, tmp_path / "q3.pt") and _init_is(cfg, tmp_path / "q2.pt")  # not its own start
    record = fine_tune_record(base)
    assert record == {"model": "bmshj2018-hyperprior-mini", "rate_index": 2, "weights_hash": "ab", "steps": 5000,
                      "cpu_hours_total": 1.5}
    monkeypatch.setenv("INVLAB_WEIGHTS", str(tmp_path))
    (tmp_path / "bmshj2018-hyperprior-mini-q3.pt").write_bytes(b"")
    (tmp_path / "bmshj2018-hyperprior-mini-q3.json").write_text(json.dumps(
        {"family": "baselines", "training": {"steps": 800, "cpu_hours_total": 0.4, "fine_tuned_from": record}}))
    line = budget_line("bmshj2018-hyperprior-mini", 3)
    assert "0.4 CPU-hours" in line and "fine-tuned from bmshj2018-hyperprior-mini q2 (5,000 steps, 1.5" in line
    # another model's weights at a step count equal to --start-step are still a start named apart, not own runs
    other = {"init_from": str(tmp_path / "q2.pt"), "start_step": 5000, "model": "mbt2018-mean-mini"}
    assert _started_from(other, tmp_path / "q3.pt") is None
    assert _started_from(other | {"model": "bmshj2018-hyperprior-mini"}, tmp_path / "q3.pt") == base


def test_a_warm_run_counts_the_budget_of_the_weights_it_started_from():
    from invlab.train.export import budget_totals

    earlier = {"exported": "then", "training": {"steps": 100, "wall_hours_all_runs": 1.0, "cpu_hours": 2.0,
                                                "threads": 2, "earlier_runs": [{"wall_hours_all_runs": 0.5}]}}
    totals = budget_totals({"wall_hours_all_runs": 3.0, "cpu_hours": 6.0}, earlier)
    assert [r.get("steps") for r in totals["earlier_runs"]] == [None, 100]
    assert totals["wall_hours_total"] == 4.5 and totals["cpu_hours_total"] == 8.0
    assert budget_totals({"wall_hours_all_runs": 1.0, "cpu_hours": None}, None)["wall_hours_total"] == 1.0


def test_a_second_export_of_the_same_warm_run_keeps_its_earlier_runs(tmp_path):
    import json

    from invlab.train.export import _exported_before, _started_from, budget_totals

    out = tmp_path / "m.pt"
    cfg = {"init_from": str(out), "start_step": 100}  # a warm run from m.pt at step 100
    first_export = {"training": {"steps": 250, "start_step": 100, "init_from": str(out),
                                 "earlier_runs": [{"steps": 100, "wall_hours_all_runs": 1.0, "cpu_hours": 2.0}]}}
    (tmp_path / "m.json").write_text(json.dumps(first_export))  # the first export of that run overwrote m.json
    assert _started_from(cfg, out) is None  # m.json no longer describes the start...
    again = _exported_before(cfg, out)  # ...but it is this run's own earlier export
    assert again == first_export
    totals = budget_totals({"wall_hours_all_runs": 0.5, "cpu_hours": 1.0}, None, again["training"]["earlier_runs"])
    assert [r.get("steps") for r in totals["earlier_runs"]] == [100] and totals["cpu_hours_total"] == 3.0
    other_run = {"init_from": str(out), "start_step": 250}  # a new warm run from the first export: not "again"
    assert _exported_before(other_run, out) is None and _started_from(other_run, out) == first_export


def test_a_fine_tune_resumed_without_init_from_still_names_its_start(crops, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("INVLAB_WEIGHTS", str(tmp_path / "weights"))
    base = Trainer(_cfg(crops, tmp_path / "base", max_steps=2))
    base.run()
    exported = export_weights(base.ckpt_path, kodak=None)
    start = tmp_path / "start.pt"  # another weight file (e.g. another λ of the family) to fine-tune from
    shutil.copy(exported, start)
    shutil.copy(exported.with_suffix(".json"), start.with_suffix(".json"))
    tune = _cfg(crops, tmp_path / "tune", max_steps=4)
    # stopped early (a checkpoint); started with --init-partial (here every tensor fits: the same model)
    Trainer(replace(tune, init_from=str(start), init_partial=True, time_limit_min=0.0)).run()
    resumed = Trainer(tune)  # the same run continued from its checkpoint, without --init-from
    assert resumed.resumed_from and resumed.cfg.init_from == str(start) and resumed.cfg.start_step == 0
    assert resumed.cfg.init_partial  # how it started is kept, so its weights still say "warm from"
    resumed.run()
    meta = json.loads(export_weights(resumed.ckpt_path, kodak=None).with_suffix(".json").read_text())
    assert meta["training"]["init_from"] == str(start) and meta["training"]["steps"] == 4
    assert meta["training"]["init_partial"] is True
    assert meta["training"]["fine_tuned_from"]["steps"] == 2


def test_auto_precision_picks_bf16_only_where_the_cpu_computes_it():
    from invlab.train.trainer import resolve_precision

    assert resolve_precision("auto", "cpu", {"avx2", "avx512f", "avx512_bf16"}) == "bf16"
    assert resolve_precision("auto", "cpu", {"avx2", "amx_bf16"}) == "bf16"
    assert resolve_precision("auto", "cpu", {"avx", "avx2", "fma"}) == "fp32"  # AVX2 only: bf16 is emulated
    assert resolve_precision("bf16", "cpu", {"avx2"}) == "bf16" and resolve_precision("fp32", "cpu", None) == "fp32"


def test_the_training_curve_spans_every_run_and_recovers_old_runs_from_git(tmp_path):
    import subprocess

    from invlab.train.curve import plot, recover_from_git, training_curve
    from invlab.train.export import budget_totals, read_log, validation_history

    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [
        {"step": 5, "split": "train", "loss": 9.0},
        {"step": 10, "split": "val", "cpu_seconds": 360.0, "phase": "stable", "loss": 3.0, "bpp@0": 0.5, "mse": 1},
        {"step": 20, "split": "val", "cpu_seconds": 720.0, "phase": "decay", "loss": 2.5, "bpp@0": 0.4}]) + "\n")
    history = validation_history(read_log(log))
    assert read_log(tmp_path / "none.jsonl") == []
    assert history == [{"step": 10, "cpu_seconds": 360.0, "phase": "stable", "loss": 3.0, "bpp@0": 0.5},
                       {"step": 20, "cpu_seconds": 720.0, "phase": "decay", "loss": 2.5, "bpp@0": 0.4}]
    # a warm run from weights whose metadata kept only the last validation: that record becomes its curve
    start = {"exported": "then", "log_summary": {"val_last": {"step": 4, "loss": 4.0}},
             "training": {"steps": 4, "wall_hours_all_runs": 1.0, "cpu_hours": 2.0}}
    training = {"wall_hours_all_runs": 0.1, "cpu_hours": 0.2, "validation": history}
    training.update(budget_totals(training, start))
    assert training["earlier_runs"][0]["validation"] == [{"step": 4, "loss": 4.0}]
    curve = training_curve({"training": training})
    assert curve["run"].tolist() == [1, 2, 2] and curve["step"].tolist() == [4, 10, 20]
    assert curve["cpu_hours"].tolist() == [2.0, 2.1, 2.2]  # the runs before in full, then this run's clock
    assert not curve["set_aside"].any()
    plot(curve, tmp_path / "curve.png", "test")
    assert (tmp_path / "curve.png").stat().st_size > 1000
    # a run that resumed its stable checkpoint after an earlier session's decay: that branch is marked set aside
    resumed = [{"step": 5, "loss": 3.0}, {"step": 10, "phase": "decay", "loss": 2.9},
               {"step": 12, "phase": "decay", "loss": 2.7}, {"step": 10, "loss": 2.95}, {"step": 15, "loss": 2.8}]
    curve = training_curve({"training": {"cpu_hours": 1.0, "validation": resumed}})
    assert curve["set_aside"].tolist() == [False, True, True, False, False]
    plot(curve, tmp_path / "resumed.png", "test")

    repo = tmp_path / "repo"  # an old export committed with its log summary, then a later one over it
    (repo / "weights").mkdir(parents=True)
    meta_path = repo / "weights" / "m.json"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    meta_path.write_text(json.dumps({"log_summary": {"val_last": {"step": 4, "loss": 4.0}}, "training": {"steps": 4}}))
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    meta_path.write_text(json.dumps({"training": {"steps": 20, "earlier_runs": [{"steps": 4}, {"steps": 7}]}}))
    assert recover_from_git(meta_path, repo) == 1  # the 7-step run was never committed: left without a curve
    runs = json.loads(meta_path.read_text())["training"]["earlier_runs"]
    assert runs[0]["validation"] == [{"step": 4, "loss": 4.0}] and "at commit" in runs[0]["validation_source"]
    assert "validation" not in runs[1]


def test_a_crop_the_model_cannot_train_on_is_a_clear_error(crops, tmp_path):
    """msanfic-mini downsamples by 128: a 64² crop used to fail deep inside CompressAI's entropy model."""
    from invlab.errors import InvlabError

    with pytest.raises(InvlabError, match=r"--crop 64 does not fit msanfic-mini: .* multiples of 128.*--crop 128"):
        Trainer(_cfg(crops, tmp_path / "run", model="msanfic-mini", crop=64, rate_index=2))
    with pytest.raises(InvlabError, match=r"--val-crop 38 does not fit tiny-flow: .* multiples of 4.*--val-crop 36$"):
        Trainer(_cfg(crops, tmp_path / "run", val_crop=38))
    assert not (tmp_path / "run").exists()  # nothing written before the check


def test_a_gpu_trained_file_states_its_accelerator_time_not_zero_cpu_hours():
    from invlab.weights import cpu_hours_of, gpu_budget

    gpu = {"device": "cuda", "device_name": "NVIDIA H200", "cpu_hours": None, "cpu_hours_total": 0,
           "wall_hours_all_runs": 0.145, "wall_hours_total": 0.145}
    assert cpu_hours_of(gpu) is None and gpu_budget(gpu) == "8.7 GPU-min (NVIDIA H200)"
    assert gpu_budget({**gpu, "wall_hours_all_runs": 2.5}) == "2.5 GPU-h (NVIDIA H200)"
    cpu = {"device": "cpu", "cpu_hours": 1.0, "cpu_hours_total": 3.0}
    assert cpu_hours_of(cpu) == 3.0 and gpu_budget(cpu) == ""
    # continued on the GPU after a CPU run: each kind of time counted once
    cpu_run = {"device": "cpu", "wall_hours_all_runs": 0.75, "cpu_hours": 1.5}
    mixed = {**gpu, "wall_hours_all_runs": 0.145, "earlier_runs": [cpu_run], "cpu_hours_total": 1.5,
             "wall_hours_total": 0.895}
    assert cpu_hours_of(mixed) == 1.5 and gpu_budget(mixed) == "8.7 GPU-min (NVIDIA H200)"
    # continued on the CPU after a GPU run: the GPU time stays
    later = {**cpu, "earlier_runs": [{**gpu, "wall_hours_all_runs": 0.5}]}
    assert cpu_hours_of(later) == 3.0 and gpu_budget(later) == "30.0 GPU-min (NVIDIA H200)"
    assert gpu_budget({"device": "cuda", "device_name": "X"}) == "? GPU-h (X)"  # unknown, not made up
    assert gpu_budget({"device": None}) == ""
