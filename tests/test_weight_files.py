"""Weight files load safely and strictly: nothing in a file runs, and a file that does not fit its model is refused
with one clear line (never a silently partial model). Also: a model name read from a file is checked against the
registry before it becomes part of a path; a user's weight file codes through the CLI with ``--weights``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from invlab.cli import main
from invlab.codecs.learned import LearnedCodec, decoder_for
from invlab.errors import InvalidHeaderError, InvlabError, ModelMismatchError, UnknownModelError, WeightFileError
from invlab.io.container import InvlabFile
from invlab.train.trainer import load_state
from invlab.weights import build_from_file, load_model, read_weight_file, shipped_weights, weights_dir

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(weights_dir().glob("*.pt"))


def _model_of(path: Path) -> str:
    return json.loads(path.with_suffix(".json").read_text())["model"]


def _tiny_file(tmp_path: Path, name: str = "tiny.pt", **changes) -> Path:
    """tiny-flow's untrained weights as an invlab weight file; ``changes`` edit the state dict (None deletes)."""
    state = dict(load_model("tiny-flow", pretrained=False).state_dict())
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            del state[key]
        else:
            state[key] = value
    path = tmp_path / name
    torch.save({"state_dict": state, "config": {}}, path)
    return path


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_file_fits_its_model_exactly(path):
    state, config = read_weight_file(path)  # weights_only: the shipped files hold tensors and settings alone
    model = build_from_file(_model_of(path), path)
    assert set(model.state_dict()) == set(state)


def test_a_file_missing_or_adding_tensors_is_refused_naming_them(tmp_path):
    key = next(iter(load_model("tiny-flow", pretrained=False).state_dict()))
    with pytest.raises(WeightFileError, match=rf"does not fit tiny-flow: missing {key}"):
        load_model("tiny-flow", path=_tiny_file(tmp_path, **{key.replace(".", "__"): None}))
    with pytest.raises(WeightFileError, match=r"unexpected extra\.tensor"):
        load_model("tiny-flow", path=_tiny_file(tmp_path, extra__tensor=torch.zeros(3)))


def test_a_resized_tensor_is_refused(tmp_path):
    model = load_model("tiny-flow", pretrained=False)
    key, value = next((k, v) for k, v in model.state_dict().items() if v.dim() >= 1 and v.is_floating_point())
    with pytest.raises(WeightFileError, match=rf"size mismatch for {key}"):
        load_model("tiny-flow", path=_tiny_file(tmp_path, **{key.replace(".", "__"): torch.zeros(value.numel() + 1)}))


def test_a_file_of_another_family_is_refused():
    other = weights_dir() / "bmshj2018-hyperprior-mini-q2.pt"
    with pytest.raises(WeightFileError, match="does not (fit|build) msinn-mini"):
        load_model("msinn-mini", path=other)


def test_an_official_format_checkpoint_is_refused_not_loaded_as_random(tmp_path):
    """The repository's training checkpoint layout ({"epoch", "state_dict" with its own names, ...}): before, none of
    the names matched, nothing was said, and a random model came back marked trained."""
    state = load_model("invcompress-mini", pretrained=False).state_dict()
    official = {"module." + k.replace(".", "_", 1): v for k, v in state.items()}
    path = tmp_path / "checkpoint_best_loss.pth.tar"
    torch.save({"epoch": 3, "state_dict": official, "loss": 1.0}, path)
    with pytest.raises(WeightFileError, match=rf"missing .*\({len(state)} tensors in the model, {len(state)} in the"):
        load_model("invcompress-mini", path=path)


@pytest.mark.parametrize("cut", [0, 100, 5000, -1000])
def test_a_truncated_or_foreign_file_is_refused(tmp_path, cut):
    whole = (weights_dir() / "msinn-mini.pt").read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(whole[:cut] if cut >= 0 else whole[:cut] + b"junk")
    with pytest.raises(WeightFileError, match="not a readable weight file"):
        load_model("msinn-mini", path=path)
    path.write_text("not a torch file at all")
    with pytest.raises(WeightFileError, match="not a readable weight file"):
        load_model("msinn-mini", path=path)


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("where", ["state_dict", "config", "top"])
def test_a_pickle_that_would_run_code_is_refused_and_does_not_run(tmp_path, where):
    marker = tmp_path / "ran"
    state = load_model("tiny-flow", pretrained=False).state_dict()
    ckpt = {"state_dict": dict(state), "config": {}}
    if where == "top":
        ckpt["extra"] = _RunsCode(marker)
    elif where == "config":
        ckpt["config"]["anchors"] = _RunsCode(marker)
    else:
        ckpt["state_dict"]["x"] = _RunsCode(marker)
    path = tmp_path / "evil.pt"
    torch.save(ckpt, path)
    with pytest.raises(WeightFileError, match="refused: .*system.*could run code"):
        load_model("tiny-flow", path=path)
    with pytest.raises(WeightFileError, match="refused"):  # --init-from and checkpoints read the same way
        load_state(path)
    assert not marker.exists()


def test_a_state_dict_of_non_tensors_or_a_bad_config_is_refused(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"state_dict": {"a": 1.0}, "config": {}}, path)
    with pytest.raises(WeightFileError, match="not a mapping of names to tensors"):
        load_model("tiny-flow", path=path)
    torch.save({"state_dict": load_model("tiny-flow", pretrained=False).state_dict(), "config": {"no_such": 1}}, path)
    with pytest.raises(WeightFileError, match="config does not build tiny-flow"):
        load_model("tiny-flow", path=path)
    torch.save([1, 2, 3], path)
    with pytest.raises(WeightFileError, match="not an invlab weight file"):
        load_model("tiny-flow", path=path)


def test_an_override_may_drop_a_part_the_file_has():
    """``postnet=None`` codes without the post-net: the file still fits the model it was made for."""
    model = load_model("msinn-mini", postnet=None)
    assert model.trained and not any(k.startswith("postnet.") for k in model.state_dict())


def test_a_hostile_model_name_never_reaches_the_file_system(small_rgb):
    for name in ["a" * 255, "../../etc/passwd", "msinn-mini/../x"]:
        with pytest.raises(UnknownModelError, match="unknown model") as err:
            LearnedCodec(name)
        assert len(str(err.value)) < 1000
        with pytest.raises(UnknownModelError):
            shipped_weights(name)
        with pytest.raises(UnknownModelError):
            load_model(name)
    data = LearnedCodec("tiny-flow", pretrained=False).encode(small_rgb, 0)
    f = InvlabFile.from_bytes(data)
    f.model = "b" * 255
    with pytest.raises(UnknownModelError):
        decoder_for(f.to_bytes(), pretrained=False)
    f.model = "compressai:mbt2018-mean@/etc/passwd"  # a header may name a network, never a file to load
    with pytest.raises(InvalidHeaderError, match="names a file"):
        decoder_for(f.to_bytes(), pretrained=False)


def _png(path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)).save(path)
    return path


def test_cli_codes_with_a_users_weight_file_and_refuses_a_bad_one(tmp_path, capsys):
    image = _png(tmp_path / "in.png")
    weights = _tiny_file(tmp_path, "mine.pt")
    assert main(["encode", str(image), str(tmp_path / "a.inv"), "--model", "tiny-flow", "--weights", str(weights)]) == 0
    assert main(["decode", str(tmp_path / "a.inv"), str(tmp_path / "a.png"), "--weights", str(weights)]) == 0
    assert "bit-identical to the encoder's reconstruction" in capsys.readouterr().out
    data = (tmp_path / "a.inv").read_bytes()
    other = _tiny_file(tmp_path, "other.pt", **{k.replace(".", "__"): v + 1 for k, v in
                                               load_model("tiny-flow", pretrained=False).state_dict().items()
                                               if v.is_floating_point() and v.dim() > 1})
    with pytest.raises(ModelMismatchError, match="other weights"):
        LearnedCodec("tiny-flow", weights=other).decode(data)

    bad = _tiny_file(tmp_path, "bad.pt", extra=torch.zeros(1))
    capsys.readouterr()
    assert main(["encode", str(image), str(tmp_path / "b.inv"), "--model", "tiny-flow", "--weights", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("invlab: error: ") and "does not fit tiny-flow: unexpected extra" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "b.inv").exists()
    assert main(["encode", str(image), str(tmp_path / "c.inv"), "--model", "jpeg", "--weights", str(weights)]) == 2
    assert main(["encode", str(image), str(tmp_path / "d.inv"), "--model", "tiny-flow", "--untrained",
                 "--weights", str(weights)]) == 2
    f = InvlabFile.from_bytes(data)
    f.model = "compressai:mbt2018-mean@" + str(weights)
    (tmp_path / "crafted.inv").write_bytes(f.to_bytes())
    capsys.readouterr()
    assert main(["decode", str(tmp_path / "crafted.inv"), str(tmp_path / "crafted.png")]) == 2
    assert "names a file" in capsys.readouterr().err


def test_model_at_file_names_a_weight_file_everywhere_a_codec_name_goes(tmp_path, monkeypatch, small_rgb):
    """``MODEL@FILE``: encode, rd and reencode code with the user's file; results go under MODEL@STEM."""
    from invlab.codecs.registry import codec_kind, get_codec, split_weights
    from invlab.errors import UnknownCodecError
    from invlab.eval.reencode import run_study

    weights = _tiny_file(tmp_path, "mine.pt")
    name = f"tiny-flow@{weights}"
    assert split_weights(name) == ("tiny-flow", weights) and split_weights("jpeg") == ("jpeg", None)
    assert codec_kind(name) == "learned"
    with pytest.raises(UnknownCodecError):
        codec_kind(f"no-such-model@{weights}")
    codec = get_codec(name)
    assert codec.name == "tiny-flow" and codec.weights == weights and codec.trained and codec.label == "tiny-flow@mine"
    with pytest.raises(InvlabError, match="two weight files"):
        LearnedCodec(name, weights=_tiny_file(tmp_path, "other.pt"))
    image = _png(tmp_path / "in.png")
    assert main(["encode", str(image), str(tmp_path / "a.inv"), "--model", name]) == 0
    assert main(["decode", str(tmp_path / "a.inv"), str(tmp_path / "a.png"), "--weights", str(weights)]) == 0
    monkeypatch.setattr("sys.argv", ["invlab", "rd"])  # cli.build_parser picks lazy subcommands from sys.argv
    folder = tmp_path / "set"
    folder.mkdir()
    _png(folder / "one.png")
    assert main(["rd", "--dataset", str(folder), "--codecs", name, "--rates", f"{name}=0", "--workers", "1",
                 "--out", str(tmp_path / "rd")]) == 0
    assert json.loads((tmp_path / "rd" / "tiny-flow@mine.json").read_text())["name"] == "tiny-flow@mine"
    rows, summary = run_study([name], {"crop": small_rgb}, generations=1, progress=False)
    assert list(summary["label"]) == ["trained"] and len(rows) == 1
