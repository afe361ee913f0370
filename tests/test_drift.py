"""The drift study: variants of a variable-rate model re-encoded through the eval-mode forward, symbols per scale."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from invlab.codecs.learned import LearnedCodec
from invlab.eval.drift import drift_rows, drift_study, drift_summary, variant_model, variants_of
from invlab.io.images import to_tensor, to_uint8
from invlab.models.base import eval_mode


@pytest.fixture
def crop(kodak_dir):
    from invlab.io.images import load_image

    return np.ascontiguousarray(load_image(kodak_dir / "kodim23.png").rgb[200:248, 300:348])


def test_the_forward_a_generation_runs_is_the_decoders_output_and_its_symbols_are_the_coded_ones(crop):
    codec = LearnedCodec("msinn-mini")
    model = codec.model(3.0)
    decoded = codec.decode(codec.encode(crop, 3.0))
    x = model.pad(to_tensor(crop))
    with eval_mode(model), torch.inference_mode():
        coded = model.coded_forward(x, torch.tensor([3.0]))["x_hat"].clamp(0, 1)
        forward = to_uint8(model.crop(coded, *crop.shape[:2]))
    assert np.array_equal(forward, decoded)
    symbols = model.scale_symbols(x, 3.0)
    assert list(symbols) == ["y1", "y2", "y3", "y4", "y5"]
    assert all(s.dtype == torch.int32 for s in symbols.values())
    assert sum(s.numel() for s in symbols.values()) == 3 * x.shape[-2] * x.shape[-1]  # invertible: as many numbers


def test_the_study_counts_changed_symbols_per_scale_and_summarises_each_variant(crop):
    rows = drift_study("msinn-mini", {"crop": crop}, generations=3, match_bpp=None, rate=3.0,
                       variants=["as shipped", "post-net and LRP off", "float pixels"], progress=False)
    assert list(rows["variant"].unique()) == ["as shipped", "post-net and LRP off", "float pixels"]
    first = rows[rows["generation"] == 1]
    assert (first[[f"changed_y{i}" for i in range(1, 6)]] == 0).all().all()  # nothing to compare with yet
    summary = drift_summary(rows, at=(1, 3))
    assert list(summary["variant"]) == ["as shipped", "post-net and LRP off", "float pixels"]
    assert set(summary.columns) >= {"PSNR@1 (dB)", "PSNR@3 (dB)", "ΔPSNR (dB)", "y1 first changes"}
    shipped = summary.set_index("variant").loc["as shipped"]
    assert shipped["PSNR@1 (dB)"] == pytest.approx(rows.query("variant == 'as shipped'")["psnr"].iloc[0], abs=0.01)


def test_the_gain_product_variant_makes_g_times_inverse_g_one_and_leaves_the_shipped_model_alone():
    model = variant_model("msinn-mini", "g·g' = 1", 2.5)
    rates = torch.tensor([0.0, 2.5, 7.0])
    assert torch.allclose(model.gain(rates) * model.inverse_gain(rates), torch.ones(3, 1), atol=1e-5)
    shipped = LearnedCodec("msinn-mini").model(2.5)
    assert not torch.allclose(shipped.gain(rates) * shipped.inverse_gain(rates), torch.ones(3, 1), atol=1e-3)
    assert variants_of("msinn-mini") == ["as shipped", "post-net off", "LRP off", "post-net and LRP off", "g·g' = 1",
                                         "float pixels"]
    assert variants_of("anfic-mini") == ["as shipped", "QE off", "float pixels"]
    assert variants_of("invcompress-mini") == ["as shipped", "float pixels"]


def test_a_fixed_rate_model_drifts_with_its_own_ablations_and_psnr_alone_where_it_says_no_symbols(crop):
    rows = drift_study("anfic-mini-noctx", {"crop": crop}, generations=2, match_bpp=None, rate=1,
                       variants=["as shipped", "QE off"], progress=False)
    assert set(rows["variant"]) == {"as shipped", "QE off"} and not any(c.startswith("changed_") for c in rows)
    summary = drift_summary(rows).set_index("variant")
    assert summary.loc["as shipped", "PSNR@1 (dB)"] != summary.loc["QE off", "PSNR@1 (dB)"]  # the filter was used
    model = variant_model("anfic-mini-noctx", "QE off", 1)
    assert isinstance(model.qe, torch.nn.Identity)
    assert not isinstance(LearnedCodec("anfic-mini-noctx").model(1).qe, torch.nn.Identity)


def test_float_pixels_skip_the_8_bit_rounding(crop):
    model = variant_model("msinn-mini", "as shipped", 3.0)
    seen = []
    coded = model.scale_symbols
    model.scale_symbols = lambda x, rate: seen.append(x.clone()) or coded(x, rate)
    for float_pixels in (False, True):
        seen.clear()
        drift_rows(model, crop, 3.0, 2, float_pixels=float_pixels)
        on_grid = torch.allclose(seen[1] * 255, (seen[1] * 255).round(), atol=1e-4)
        assert on_grid != float_pixels  # generation 2 saw 8-bit pixels, or the decoder's float output


def test_cli_writes_rows_and_summary_and_keeps_an_earlier_study(tmp_path, kodak_dir, monkeypatch):
    from invlab.cli import main

    monkeypatch.setattr("sys.argv", ["invlab", "drift"])
    argv = ["drift", "--images", str(kodak_dir / "kodim23.png"), "--crop", "32", "--generations", "2", "--rate", "2",
            "--variants", "as shipped,LRP off", "--out", str(tmp_path / "d")]
    assert main(argv) == 0
    saved = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert [r["variant"] for r in saved["summary"]] == ["as shipped", "LRP off"] and saved["meta"]["crop"] == 32
    before = (tmp_path / "d" / "summary.json").read_bytes()
    assert main(argv) == 2 and (tmp_path / "d" / "summary.json").read_bytes() == before
    assert main([*argv[:-4], "--variants", "no such", "--out", str(tmp_path / "e")]) == 2


def test_the_drift_figure_has_a_panel_per_image_and_a_line_per_variant(crop):
    from invlab.widgets.reencode_plots import drift_panels

    images = {"a": crop, "b": np.ascontiguousarray(crop[::-1])}
    rows = drift_study("msinn-mini", images, generations=2, match_bpp=None, rate=3.0,
                       variants=["as shipped", "LRP off"], progress=False)
    fig = drift_panels(rows)
    assert len(fig.layout.annotations) >= 2 and len(fig.data) == 4
    assert [t.name for t in fig.data if t.showlegend] == ["as shipped", "LRP off"]
    assert {t.line.dash for t in fig.data} == {"solid", "dash"}
