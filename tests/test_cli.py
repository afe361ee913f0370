"""The ``invlab`` command line: fast paths without torch, one name space for learned and classical codecs,
and user errors as one line with exit status 2 (never a traceback)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from invlab.cli import _negative_rates, _one_line, main
from invlab.codecs.registry import CLASSICAL_RATES, VVC_PRESETS, classical_rate_space
from invlab.io.container import InvlabFile
from invlab.models import registry

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "compressai")


def _run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300, check=False)


def _cli_in_subprocess(args: list[str], tmp_path: Path) -> tuple[int, str, str, list[str]]:
    """Run ``main(args)`` in a fresh interpreter: (exit status, stdout, stderr, heavy modules it imported)."""
    code = f"""
        import json, sys
        from invlab.cli import main
        try:
            rc = main({args!r})
        except SystemExit as stop:
            rc = stop.code
        print("HEAVY=" + json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr)
        sys.exit(rc)
    """
    proc = _run_python(code, tmp_path)
    lines = proc.stderr.splitlines()
    heavy = json.loads(lines[-1].removeprefix("HEAVY=")) if lines and lines[-1].startswith("HEAVY=") else None
    assert heavy is not None, proc.stderr
    return proc.returncode, proc.stdout, "\n".join(lines[:-1]), heavy


def _small_png(path: Path, shape=(23, 37, 3)) -> Path:
    """A small smooth image (odd sizes on purpose) with some texture."""
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1), (xx + yy) * 127 / (h + w)], axis=2)
    arr = (base + np.random.default_rng(0).normal(0, 6, base.shape)).clip(0, 255).astype(np.uint8)
    if len(shape) == 3 and shape[2] == 4:
        alpha = (np.arange(w)[None, :] * 255 // max(w - 1, 1)).repeat(h, 0).astype(np.uint8)
        arr = np.dstack([arr, alpha])
    Image.fromarray(arr).save(path)
    return path


def _invlab_file(path: Path, height: int = 32, width: int = 48) -> Path:
    """A sound invlab file of any announced size (fields patched after serialising, CRC recomputed)."""
    f = InvlabFile(model="tiny-flow", weights_hash=bytes(8), height=1, width=1, mode="RGB", bitdepth=8, rate=1.0,
                   streams=[b"\x00" * 10], meta={"shape": {}})
    raw = bytearray(f.to_bytes())
    at = 4 + 1 + 1 + len(f.model) + 8  # magic, version, name length, name, weights hash
    raw[at : at + 8] = struct.pack(">II", height, width)
    body = bytes(raw[:-4])
    path.write_bytes(body + struct.pack(">I", zlib.crc32(body)))
    return path


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {err!r}"
    assert lines[0].startswith("invlab: error: ") and "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------------- fast paths
def test_import_invlab_is_cheap_and_changes_no_import(tmp_path):
    proc = _run_python(f"""
        import sys
        meta_path = list(sys.meta_path)
        import invlab
        assert not [m for m in {HEAVY!r} if m in sys.modules], sys.modules.keys()
        assert sys.meta_path == meta_path  # no import hook
        from compressai.models import CompressionModel
        print("ok")
    """, tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("first", ["compressai", "torchvision", "invlab.models"])
def test_any_import_order_works(tmp_path, first):
    """A user's script may import compressai or torchvision before invlab."""
    proc = _run_python(f"""
        import {first}
        import compressai
        from invlab.weights import load_model
        model = load_model("tiny-flow", pretrained=False)
        print("ok", type(model).__name__)
    """, tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip().startswith("ok"), proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["encode", "--help"], ["decode", "--help"], ["models"], ["info"]])
def test_help_models_and_info_import_no_heavy_library(args, tmp_path):
    if args == ["info"]:
        args = ["info", str(_invlab_file(tmp_path / "a.invl"))]
    rc, out, err, heavy = _cli_in_subprocess(args, tmp_path)
    assert rc == 0, err
    assert heavy == [], f"`invlab {' '.join(args)}` imported {heavy}"
    if args[0] == "models":
        for name in registry.list_models():
            assert name in out
        for name in CLASSICAL_RATES:
            assert name in out
        assert "§" not in out
    if args[0] == "info":
        assert "tiny-flow" in out and "48x32" in out


def test_encode_help_says_what_rate_means_for_each_kind(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["encode", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "variable-rate" in out and "weight index" in out and "fixed-rate" in out
    for name, knob in CLASSICAL_RATES.items():
        assert name in out
        assert knob.label in out
    assert "QP" in out and "quality" in out and "default" in out


def test_top_level_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("encode", "decode", "info", "models", "rd", "train", "reencode", "evaluate", "report", "masks"):
        assert name in out


# ---------------------------------------------------------------------- the tables agree with the code
def test_every_family_package_declares_its_models_and_names_a_factory_that_exists():
    specs = [registry.get_spec(n) for n in registry.list_models()]
    assert {s.family for s in specs} >= {"msinn", "invcompress", "baseline", "tiny"}
    for spec in specs:
        module, function = spec.factory.split(":")
        assert module.startswith("invlab.models."), spec.name
        assert callable(registry.factory(spec.name)), spec.name
        assert spec.description and "§" not in spec.description


def test_get_spec_and_list_models_need_no_model_module(tmp_path):
    proc = _run_python("""
        import sys
        from invlab.models import get_spec, list_models
        from invlab.weights import has_weights
        names = list_models()
        specs = [get_spec(n) for n in names]
        assert all(s.family and s.description for s in specs)
        [has_weights(n) for n in names]
        loaded = [m for m, mod in sys.modules.items() if m.startswith("invlab.models.")
                  and m != "invlab.models.registry" and not hasattr(mod, "__path__")]  # a family package is light
        assert not loaded and "torch" not in sys.modules, (loaded, "torch" in sys.modules)
        [get_spec(n).rate_space() for n in names]
        assert "torch" not in sys.modules
        print(len(names))
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == len(registry.list_models())


def test_classical_rate_space_table_matches_the_codec_classes():
    from invlab.codecs.classical import CLASSICAL_CODECS, VVC

    assert list(CLASSICAL_RATES) == list(CLASSICAL_CODECS)
    assert all(VVC(preset).name.removeprefix("vvc-") in (preset, "vvc") for preset in VVC_PRESETS)  # one list
    for name, knob in CLASSICAL_RATES.items():
        codec = CLASSICAL_CODECS[name]
        assert codec.rate_space is knob, name
        assert knob.contains(knob.default) and all(knob.contains(r) for r in knob.sweep), name
        ordered = sorted(knob.sweep, reverse=codec.higher_is_fewer_bits)
        assert list(knob.sweep) == ordered, name  # the sweep runs from fewest to most bits
    assert classical_rate_space("vvc-slower") is CLASSICAL_RATES["vvc"] and classical_rate_space("vvc-bogus") is None


def test_one_table_says_what_a_codec_name_names():
    """The CLI, get_codec and rate_space_of read codec names through one function."""
    from invlab.codecs.registry import codec_kind, get_codec, rate_space_of
    from invlab.errors import UnknownCodecError

    assert [codec_kind(n) for n in ("jpeg", "vvc-slow", "compressai:mbt2018-mean@x.pth", "tiny-flow")] == [
        "classical", "classical", "compressai", "learned"]
    for call in (codec_kind, get_codec, rate_space_of):
        with pytest.raises(UnknownCodecError, match="did you mean 'jpeg'"):
            call("jpgg")


# ---------------------------------------------------------------------- classical codecs through the CLI
@pytest.mark.parametrize("name", list(CLASSICAL_RATES))
def test_classical_codec_round_trip_with_its_default_rate(name, tmp_path, capsys):
    src = _small_png(tmp_path / "in.png")
    enc, dec = tmp_path / "x.invl", tmp_path / "out.png"
    assert main(["encode", str(src), str(enc), "--model", name]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    knob = CLASSICAL_RATES[name]
    assert f"{name} {knob.label} {knob.default:g}" in out
    assert main(["info", str(enc)]) == 0
    info = capsys.readouterr().out
    assert name in info and "classical" in info and "37x23" in info
    assert main(["decode", str(enc), str(dec)]) == 0, capsys.readouterr().err
    original = np.asarray(Image.open(src).convert("RGB")).astype(float)
    decoded = np.asarray(Image.open(dec)).astype(float)
    assert decoded.shape == original.shape
    psnr = 10 * np.log10(255**2 / max(np.mean((decoded - original) ** 2), 1e-10))
    assert psnr > 24, f"{name}: {psnr:.1f} dB"


def test_classical_rate_is_used_and_alpha_survives(tmp_path, capsys):
    src = _small_png(tmp_path / "in.png", (20, 30, 4))
    lo, hi = tmp_path / "lo.invl", tmp_path / "hi.invl"
    assert main(["encode", str(src), str(lo), "--model", "jpeg", "--rate", "10"]) == 0
    assert main(["encode", str(src), str(hi), "--model", "jpeg", "--rate", "95"]) == 0
    assert lo.stat().st_size < hi.stat().st_size
    assert InvlabFile.from_bytes(hi.read_bytes()).rate == 95
    dec = tmp_path / "out.png"
    assert main(["decode", str(hi), str(dec)]) == 0
    out = np.asarray(Image.open(dec))
    assert out.shape == (20, 30, 4)
    assert np.array_equal(out[..., 3], np.asarray(Image.open(src))[..., 3])  # alpha is lossless
    capsys.readouterr()


def test_damaged_classical_stream_is_one_line(tmp_path, capsys):
    src = _small_png(tmp_path / "in.png")
    enc = tmp_path / "x.invl"
    assert main(["encode", str(src), str(enc), "--model", "webp"]) == 0
    f = InvlabFile.from_bytes(enc.read_bytes())
    f.streams = [b"RIFF" + b"\x00" * 40]
    enc.write_bytes(f.to_bytes())
    capsys.readouterr()
    assert main(["decode", str(enc), str(tmp_path / "o.png")]) == 2
    assert "webp" in _error_line(capsys)
    assert not (tmp_path / "o.png").exists()


# ---------------------------------------------------------------------- user errors: exit 2, one line
def test_missing_files_and_directories(tmp_path, capsys):
    src = _small_png(tmp_path / "in.png")
    missing = str(tmp_path / "nope.invl")
    for args in (["decode", missing, str(tmp_path / "o.png")], ["info", missing],
                 ["encode", str(tmp_path / "nope.png"), str(tmp_path / "o.invl"), "--model", "jpeg"]):
        assert main(args) == 2
        line = _error_line(capsys)
        assert "no such file" in line and "Errno" not in line
    for args in (["decode", str(tmp_path), str(tmp_path / "o.png")], ["info", str(tmp_path)],
                 ["encode", str(tmp_path), str(tmp_path / "o.invl"), "--model", "jpeg"]):
        assert main(args) == 2
        assert "is a directory" in _error_line(capsys)
    # a directory as the output, and an output folder that does not exist
    assert main(["encode", str(src), str(tmp_path), "--model", "jpeg"]) == 2
    assert "is a directory" in _error_line(capsys)
    assert main(["encode", str(src), str(tmp_path / "no" / "o.invl"), "--model", "jpeg"]) == 2
    assert "does not exist" in _error_line(capsys)


@pytest.mark.parametrize("rate", [None, "5"])
def test_unknown_model_with_or_without_rate(rate, tmp_path, capsys):
    src = _small_png(tmp_path / "in.png")
    args = ["encode", str(src), str(tmp_path / "o.invl"), "--model", "jpgg"]
    assert main(args + ([] if rate is None else ["--rate", rate])) == 2
    line = _error_line(capsys)
    assert "unknown model or codec 'jpgg'" in line and "did you mean 'jpeg'" in line and "tiny-flow" in line


@pytest.mark.parametrize("rate", ["nan", "inf", "-inf", "-1", "99", "2.5"])
def test_rate_out_of_range_for_a_variable_rate_model(rate, tmp_path, capsys):
    src = _small_png(tmp_path / "in.png")
    out = tmp_path / "o.invl"
    assert main(["encode", str(src), str(out), "--model", "tiny-flow", "--untrained", "--rate", rate]) == 2
    line = _error_line(capsys)
    assert "--rate" in line and "variable-rate" in line
    if rate not in ("nan", "inf", "-inf"):
        assert "from 0 to 2" in line  # the range is given
    assert not out.exists()


@pytest.mark.parametrize("rate", ["nan", "inf", "-inf", "-1", "99", "0.5"])
def test_rate_of_a_fixed_rate_family_must_be_a_weight_index(rate, tmp_path, capsys):
    src = _small_png(tmp_path / "in.png")
    out = tmp_path / "o.invl"
    assert main(["encode", str(src), str(out), "--model", "bmshj2018-hyperprior-mini", "--untrained",
                 "--rate", rate]) == 2
    line = _error_line(capsys)
    assert "--rate" in line
    if rate not in ("nan", "inf", "-inf"):
        assert "weight index, 0 (one set of weights)" in line
    assert not out.exists()


@pytest.mark.parametrize("rate", ["-1", "101", "50.5", "nan"])
def test_rate_out_of_range_for_a_classical_codec(rate, tmp_path, capsys):
    src = _small_png(tmp_path / "in.png")
    assert main(["encode", str(src), str(tmp_path / "o.invl"), "--model", "jpeg", "--rate", rate]) == 2
    line = _error_line(capsys)
    assert "--rate" in line
    if rate != "nan":
        assert "quality" in line and "1 to 100" in line


def test_negative_rate_values_reach_the_rate_check():
    assert _negative_rates(["encode", "a", "b", "--rate", "-inf"]) == ["encode", "a", "b", "--rate=-inf"]
    assert _negative_rates(["encode", "--rate", "-1", "a"]) == ["encode", "--rate=-1", "a"]
    assert _negative_rates(["encode", "--rate", "--force"]) == ["encode", "--rate", "--force"]


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_overwrite_is_refused_before_any_model_is_loaded(command, tmp_path):
    src = _small_png(tmp_path / "in.png")
    existing = tmp_path / ("o.invl" if command == "encode" else "o.png")
    existing.write_bytes(b"keep me")
    if command == "encode":  # no weights for msinn-mini here; --untrained would print a warning when loading
        args = ["encode", str(src), str(existing), "--model", "msinn-mini", "--untrained"]
    else:
        args = ["decode", str(_invlab_file(tmp_path / "a.invl")), str(existing), "--untrained"]
    rc, out, err, heavy = _cli_in_subprocess(args, tmp_path)
    assert rc == 2
    assert err.strip().splitlines() == [f"invlab: error: {existing} exists; refusing to overwrite it "
                                        "(use --force to replace it)"]
    assert heavy == [], "a model (torch) was loaded before the refusal"
    assert existing.read_bytes() == b"keep me"


@pytest.mark.parametrize("size", [(0, 48), (32, 0), (0, 0)])
def test_info_of_a_file_without_pixels_does_not_divide_by_zero(size, tmp_path, capsys):
    path = _invlab_file(tmp_path / "a.invl", *size)
    rc = main(["info", str(path)])
    if rc == 0:
        assert "no pixels" in capsys.readouterr().out
    else:  # a container that refuses empty images says so
        assert rc == 2
        _error_line(capsys)


def test_not_an_invlab_file_and_unknown_model_in_a_file(tmp_path, capsys):
    junk = tmp_path / "junk.invl"
    junk.write_bytes(b"hello")
    assert main(["info", str(junk)]) == 2
    assert "not an invlab file" in _error_line(capsys)
    f = InvlabFile.from_bytes(_invlab_file(tmp_path / "a.invl").read_bytes())
    f.model = "no-such-model"
    other = tmp_path / "b.invl"
    other.write_bytes(f.to_bytes())
    assert main(["decode", str(other), str(tmp_path / "o.png")]) == 2
    assert "no-such-model" in _error_line(capsys)


def test_os_errors_are_said_in_words():
    assert _one_line(PermissionError(13, "Permission denied", "/x/y.png")) == "/x/y.png: permission denied"
    assert _one_line(FileNotFoundError(2, "No such file or directory", "a.png")) == "a.png: no such file or folder"
    assert _one_line(IsADirectoryError(21, "Is a directory", "d")) == "d: is a directory"
    from invlab.errors import OutputExistsError

    text = _one_line(OutputExistsError("o.png exists; refusing to overwrite it (use --force / overwrite=True)"))
    assert text == "o.png exists; refusing to overwrite it (use --force to replace it)"
    assert "\n" not in _one_line(ValueError("two\nlines"))


def test_encode_help_names_the_registered_models_from_the_registry(capsys):
    with pytest.raises(SystemExit):
        main(["encode", "--help"])
    text = capsys.readouterr().out
    specs = [registry.get_spec(name) for name in registry.list_models()]
    assert all(s.name in text for s in specs if s.variable_rate)  # msinn-mini-12 included
    assert all(s.family in text for s in specs if not s.variable_rate)
