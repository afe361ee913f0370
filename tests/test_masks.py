"""The chosen-mask figure of M-ANFIC / MS-ANFIC and the ANFIC family's per-level views (untrained, small crops)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from invlab.errors import MissingWeightsError, NoLevelsViewError
from invlab.weights import has_weights, load_model
from invlab.widgets import masks, scales, sources


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return {name: load_model(name, pretrained=False) for name in ("manfic-mini", "msanfic-mini")}


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    return sources.load_rgb("kodim23", 128)


@pytest.mark.parametrize("name", ["manfic-mini", "msanfic-mini"])
def test_figure_has_the_depth_map_and_one_panel_per_level(models, crop, name):
    model = models[name]
    fig = masks.mask_figure(model, crop, image_name="kodim23")
    levels = model.num_levels
    images = [t for t in fig.data if isinstance(t, go.Image)]
    assert len(images) == 1 + levels
    assert all(t.z.shape == crop.shape for t in images)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0].startswith("chosen depth map") and len(titles) == 1 + levels
    assert [t.split(" ")[0] for t in titles[1:]] == [f"v{n + 1}" for n in range(levels)]
    assert all("bits (" in t for t in titles[1:])
    assert sum(isinstance(t, go.Scatter) for t in fig.data) == levels  # legend: one colour per level
    assert "untrained" in fig.layout.title.text


def test_panels_show_a_given_depth_map(models, crop):
    model = models["manfic-mini"]
    depth_map = torch.tensor([[[0, 1, 0, 1], [1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0]]])
    view = model.mask_view(scales.model_input(model, crop), depth_map=depth_map)
    panels = masks.mask_panels(crop, view)
    assert [p.shape for p in panels.levels] == [crop.shape] * 2 and panels.strides == [16, 32]
    assert (panels.depth[32] == masks.GRID_COLOUR).all() and (panels.depth[:, 64] == masks.GRID_COLOUR).all()
    # inside a block the tint leans to its level's colour: block (0, 0) is v1 (blue), block (0, 1) is v2 (orange)
    blue, orange = panels.depth[2:30, 2:30].reshape(-1, 3).mean(0), panels.depth[2:30, 34:62].reshape(-1, 3).mean(0)
    assert blue[2] - blue[0] > orange[2] - orange[0]
    assert "8 blocks (50%)" in panels.legend_label(0)


def test_summary_shares_sum_to_one_per_image(models, crop):
    model = models["msanfic-mini"]
    table = masks.masks_summary(model, {"kodim23": crop, "kodim04": sources.load_rgb("kodim04", 128)})
    assert list(table.columns) == ["image", "level", "blocks", "bits", "share"]
    assert table.groupby("image")["share"].sum().tolist() == pytest.approx([1.0, 1.0])
    assert table.groupby("image")["blocks"].sum().tolist() == [4, 4]  # 128x128 in 64 px blocks
    view = masks.mask_view(model, crop)
    assert table[table.image == "kodim23"].bits.sum() == pytest.approx(view.bpp * 128 * 128)


def test_save_mask_figures_writes_png_and_svg(tmp_path):
    paths = masks.save_mask_figures("manfic-mini", out=tmp_path, pretrained=False, crop=64)
    assert paths == [tmp_path / "masks_manfic-mini.png", tmp_path / "masks_manfic-mini.svg"]
    assert paths[0].read_bytes().startswith(b"\x89PNG") and b"<svg" in paths[1].read_bytes()[:2000]


def test_untrained_is_said_plainly(models, crop):
    model = models["manfic-mini"]
    assert sources.UNTRAINED_BANNER in masks.figure_title(model)
    view = masks.mask_view(model, crop[:64, :64])
    suptitle = masks.draw_mask_rows(model, {"kodim23": (crop[:64, :64], view)}).get_suptitle()
    assert "untrained" in suptitle
    model.trained = True  # as load_model marks shipped weights
    try:
        assert "untrained" not in masks.figure_title(model, "kodim23")
    finally:
        model.trained = False
    if not has_weights("manfic-mini"):
        with pytest.raises(MissingWeightsError):
            masks.save_mask_figures("manfic-mini", out="unused", pretrained=True)


# ---------------------------------------------------------------------- scales for the ANFIC family
def test_latents_and_bits_of_the_anfic_family(models, crop):
    model = models["manfic-mini"]
    x = scales.model_input(model, crop)
    lat = scales.latents(model, x)
    assert {k: tuple(v.shape[1:]) for k, v in lat.items()} == {"v1": (96, 8, 8), "v2": (64, 4, 4)}
    maps = scales.bits_maps(model, x, None)
    assert list(maps) == ["v1", "h1", "v2", "h2"]
    assert sum(float(m.sum()) for m in maps.values()) == pytest.approx(masks.mask_view(model, crop).bpp * 128 * 128)
    anfic = load_model("anfic-mini-noctx", pretrained=False)
    assert list(scales.latents(anfic, scales.model_input(anfic, crop[:64, :64]))) == ["y"]


def test_models_without_levels_say_so(crop):
    tiny = sources.open_learned("tiny-flow").model(0.0)
    with pytest.raises(NoLevelsViewError, match="no quadtree masks"):
        masks.mask_figure(tiny, crop)

    from invlab.models.base import InvlabModel

    class NoLevels(InvlabModel):
        pad_multiple = 4

    with pytest.raises(NoLevelsViewError, match="NoLevels exposes no per-scale latents"):
        scales.latents(NoLevels(), torch.zeros(1, 3, 8, 8))


def test_cli_writes_figures_and_never_replaces_them_unasked(tmp_path, crop, monkeypatch, capsys):
    from PIL import Image

    from invlab.cli import main

    Image.fromarray(crop[:64, :64]).save(tmp_path / "small.png")
    monkeypatch.setattr("sys.argv", ["invlab", "masks"])  # cli.build_parser picks lazy subcommands from sys.argv
    monkeypatch.setenv("INVLAB_WEIGHTS", str(tmp_path / "no-weights"))  # a machine without manfic-mini's weights
    argv = ["masks", "manfic-mini", "--images", str(tmp_path / "small.png"), "--out", str(tmp_path / "fig")]
    assert main(argv) == 2 and "weights" in capsys.readouterr().err  # no trained weights: refused, said why
    assert main([*argv, "--untrained"]) == 0
    assert (tmp_path / "fig" / "masks_manfic-mini.png").is_file()
    assert main([*argv, "--untrained"]) == 2 and "--force" in capsys.readouterr().err
    assert main([*argv, "--untrained", "--force"]) == 0
