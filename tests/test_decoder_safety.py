"""The decoder never crashes, hangs, over-allocates or lies: the bounds-checked coder, header validation before
any allocation, symbol and reconstruction checksums, other CPU capabilities, and a quick slice of the fuzzer."""

from __future__ import annotations

import json
import os
import random
import resource
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
import torch
from compressai.entropy_models import EntropyModel, GaussianConditional

from invlab.codecs.learned import LearnedCodec
from invlab.entropy.rans import EntropyCoder, TableDecoder, TableEncoder, coders_in
from invlab.errors import (
    BitstreamError,
    CorruptBitstreamError,
    InvalidHeaderError,
    InvlabError,
    UnsupportedImageError,
)
from invlab.io.container import InvlabFile
from invlab.io.images import ImageData, load_image
from invlab.models import list_models
from invlab.weights import load_model
from scripts import fuzz
from scripts.fuzz import KINDS, MODELS, Parsed, run_fuzz


@pytest.fixture(scope="module")
def gaussian() -> GaussianConditional:
    g = GaussianConditional(None)
    g.update_scale_table(torch.exp(torch.linspace(np.log(0.11), np.log(256), 64)))
    g.update()
    return g


def _symbols(g: GaussianConditional, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 64, n)
    sym = np.round(rng.normal(0, 1, n) * g.scale_table.numpy()[idx] * 1.5).astype(np.int64)
    sym[:4] = [100_000, -100_000, 5_000, -70_000]  # beyond every table: escapes
    return sym, idx


def test_coder_round_trips_in_the_encoders_calls(gaussian) -> None:
    g = gaussian
    sym, idx = _symbols(g, 20_000)
    cuts = [(0, 7), (7, 12_000), (12_000, 20_000)]
    encoder = TableEncoder()
    for a, b in cuts:
        encoder.encode_with_indexes(sym[a:b], idx[a:b], g.quantized_cdf, g.cdf_length, g.offset)
    stream = encoder.flush()
    decoder = TableDecoder()
    decoder.set_stream(stream)
    out = []
    for a, b in cuts:
        out += decoder.decode_stream(idx[a:b], g.quantized_cdf, g.cdf_length, g.offset)
    decoder.finish()
    assert out == sym.tolist()


def test_coder_rate_matches_compressai(gaussian) -> None:
    """Same tables, same information: within 0.5 % of CompressAI's own rANS."""
    from compressai.ans import RansEncoder

    g = gaussian
    sym, idx = _symbols(g, 50_000, seed=1)
    sym[:4] = 0
    args = (sym.tolist(), idx.tolist(), g.quantized_cdf.tolist(), g.cdf_length.tolist(), g.offset.tolist())
    ours, theirs = len(EntropyCoder().encode_with_indexes(*args)), len(RansEncoder().encode_with_indexes(*args))
    assert abs(ours - theirs) / theirs < 0.005


def test_damaged_streams_never_decode_silently(gaussian) -> None:
    g = gaussian
    sym, idx = _symbols(g, 5_000)
    tables = (g.quantized_cdf.tolist(), g.cdf_length.tolist(), g.offset.tolist())
    stream = EntropyCoder().encode_with_indexes(sym.tolist(), idx.tolist(), *tables)
    rng = random.Random(0)
    for trial in range(400):
        damaged = bytearray(stream)
        if trial % 4 == 0:
            damaged = damaged[: rng.randrange(len(damaged))]
        elif trial % 4 == 1:
            damaged = bytearray(rng.randrange(256) for _ in range(rng.randrange(64)))
        else:
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        with pytest.raises(CorruptBitstreamError):
            EntropyCoder().decode_with_indexes(bytes(damaged), idx.tolist(), *tables)


def test_decoding_in_other_calls_is_detected(gaussian) -> None:
    g = gaussian
    sym, idx = _symbols(g, 1_000)
    encoder = TableEncoder()
    encoder.encode_with_indexes(sym, idx, g.quantized_cdf, g.cdf_length, g.offset)
    decoder = TableDecoder()
    decoder.set_stream(encoder.flush())
    decoder.decode_stream(idx[:500], g.quantized_cdf, g.cdf_length, g.offset)
    decoder.decode_stream(idx[500:], g.quantized_cdf, g.cdf_length, g.offset)
    with pytest.raises(CorruptBitstreamError):  # data left over, or (if not) a symbol mismatch
        decoder.finish()


@pytest.mark.parametrize("name", [m for m in list_models() if m not in ("invcompress", "anfic", "msinn")])
def test_every_entropy_model_codes_with_the_checked_coder(name) -> None:
    model = load_model(name, pretrained=False)
    coders = coders_in(model)
    assert coders and all(isinstance(c, EntropyCoder) for c in coders)
    assert not any(isinstance(m, EntropyModel) and not isinstance(m.entropy_coder, EntropyCoder)
                   for m in model.modules())


# ---------------------------------------------------------------------- header validation
@pytest.fixture(scope="module")
def tiny_file() -> tuple[LearnedCodec, bytes]:
    codec = LearnedCodec("tiny-flow", pretrained=False)
    rgb = np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    return codec, codec.encode(rgb, 1.0)


def _rebuilt(data: bytes, **fields) -> bytes:
    f = Parsed.parse(data)
    for key, value in fields.items():
        setattr(f, key, value)
    return f.build()


def _peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.mark.parametrize("height,width", [(100_032, 100_032), (6144, 6144), (12_608, 12_608), (0, 28), (20, 0)])
def test_size_claims_are_refused_at_once(tiny_file, height, width) -> None:
    codec, data = tiny_file
    crafted = _rebuilt(data, height=height, width=width)
    before, t0 = _peak_kb(), time.perf_counter()
    with pytest.raises(InvalidHeaderError):
        codec.decode_image(crafted)
    assert time.perf_counter() - t0 < 0.5
    assert _peak_kb() - before < 50_000  # under 50 MB more at the high-water mark


def test_size_claim_with_consistent_geometry_is_bounded_by_the_memory_rule(tiny_file) -> None:
    codec, data = tiny_file
    model = codec.model(1.0)
    f = Parsed.parse(data)
    f.height = f.width = 6000
    meta = json.loads(f.meta)
    meta["shape"] = model.stream_geometry(6000, 6000)
    f.meta = json.dumps(meta).encode()
    with pytest.raises(InvalidHeaderError, match="memory"):
        LearnedCodec("tiny-flow", pretrained=False, memory_budget_mb=64).decode_image(f.build())


@pytest.mark.parametrize("meta", [b"[]", b"1", b'"x"', b"null", b"[" * 30_000 + b"]" * 30_000, b"\xff\xfe",
                                  b'{"shape": {"latents": "x"}}', b'{"shape": 7}', b'{"shape": {}, "extra": 1}'])
def test_bad_metadata_is_a_documented_error(tiny_file, meta) -> None:
    codec, data = tiny_file
    with pytest.raises(InvalidHeaderError):
        codec.decode_image(_rebuilt(data, meta=meta))


@pytest.mark.parametrize("rate", [float("nan"), float("inf"), -float("inf"), -1.0, 1e300, 99.0])
def test_bad_rates_are_refused(tiny_file, rate) -> None:
    codec, data = tiny_file
    with pytest.raises(InvalidHeaderError):
        codec.decode_image(_rebuilt(data, rate=rate))


def test_old_format_is_refused_clearly(tiny_file) -> None:
    _, data = tiny_file
    with pytest.raises(BitstreamError, match="format 1"):
        InvlabFile.from_bytes(_rebuilt(data, version=1))


def test_alpha_bomb_is_refused() -> None:
    codec = LearnedCodec("tiny-flow", pretrained=False)
    alpha = np.zeros((8, 8), np.uint8)
    alpha[0, 0] = 3
    data = codec.encode_image(ImageData(np.zeros((8, 8, 3), np.uint8), "RGBA", 8, alpha), 1.0)
    f = Parsed.parse(data)
    f.streams[-1] = zlib.compress(bytes(200_000_000), 9)  # 200 MB of zeros in about 200 kB
    before = _peak_kb()
    with pytest.raises(CorruptBitstreamError, match="alpha"):
        codec.decode_image(f.build())
    assert _peak_kb() - before < 50_000


def test_reconstruction_checksum_says_whether_the_output_is_the_encoders(tiny_file) -> None:
    codec, data = tiny_file
    image = codec.decode_image(data)
    assert image.matches_encoder is True and image.within_float_rounding is None
    f = Parsed.parse(data)
    assert f.version == 3 and f.recon[0] == 2 and len(f.sketch) == 16
    f.recon = (2, f.recon[1] ^ 1)  # another CRC, the same sketch: as if a few pixels rounded the other way
    image = codec.decode_image(f.build())
    assert image.matches_encoder is False and image.within_float_rounding is True
    f.recon, f.sketch = (1, f.recon[1]), b""  # CRC only (as version 2 wrote): nothing to tell rounding apart
    assert (codec.decode_image(f.build()).matches_encoder, codec.decode_image(f.build()).within_float_rounding) == (
        False, None)
    f.recon = (0, 0)
    assert codec.decode_image(f.build()).matches_encoder is None


def test_a_picture_beyond_float_rounding_is_an_error_unless_kept(tiny_file, tmp_path) -> None:
    from invlab.errors import ReconstructionMismatchError

    codec, data = tiny_file
    f = Parsed.parse(data)
    sums = struct.unpack(">4I", f.sketch)
    f.recon, f.sketch = (2, f.recon[1] ^ 1), struct.pack(">4I", *((s + 5000) % 2**32 for s in sums))
    crafted = f.build()
    with pytest.raises(ReconstructionMismatchError, match="keep_mismatch"):
        codec.decode_image(crafted)
    kept = codec.decode_image(crafted, keep_mismatch=True)
    assert kept.matches_encoder is False and kept.within_float_rounding is False
    assert np.array_equal(kept.rgb, codec.decode(data))
    source, out = tmp_path / "wrong.invl", tmp_path / "out.png"
    source.write_bytes(crafted)
    cli = [sys.executable, "-m", "invlab.cli", "decode", str(source), str(out), "--untrained"]
    refused = subprocess.run(cli, capture_output=True, text=True)
    assert refused.returncode == 2 and "--keep-mismatch" in refused.stderr and not out.exists()
    kept_run = subprocess.run([*cli, "--keep-mismatch"], capture_output=True, text=True)
    assert kept_run.returncode == 0 and "beyond float rounding" in kept_run.stdout and out.exists()


def test_the_sketch_tells_float_rounding_from_another_picture() -> None:
    from invlab.io.reconstruction import sketch, tolerance, within_float_rounding

    rgb = np.random.default_rng(1).integers(1, 255, (512, 768, 3), dtype=np.uint8)
    recorded = sketch(rgb)
    rounded = rgb.copy().reshape(-1)
    picks = np.random.default_rng(2).choice(rounded.size, 200, replace=False)
    rounded[picks] += np.random.default_rng(3).choice(np.array([-1, 1], dtype=np.int16), 200).astype(np.uint8)
    assert within_float_rounding(rounded.reshape(rgb.shape), recorded)  # 200 values one level off
    noise = np.random.default_rng(4).integers(-2, 3, rgb.shape)  # 1.4 levels RMS, 45 dB: another synthesis
    other = (rgb.astype(np.int16) + noise).astype(np.uint8)
    assert not within_float_rounding(other, recorded) and tolerance(rgb.size) == int(rgb.size * 2e-4)


def test_a_version_2_file_still_decodes(tiny_file) -> None:
    codec, data = tiny_file
    f = Parsed.parse(data)
    f.version, f.recon, f.sketch = 2, (1, f.recon[1]), b""
    image = codec.decode_image(f.build())
    assert image.matches_encoder is True and np.array_equal(image.rgb, codec.decode(data))
    f.recon = (2, f.recon[1])  # version 2 had no sketch
    with pytest.raises(InvalidHeaderError, match="flag"):
        codec.decode_image(f.build())


def test_sixteen_bit_bomb_is_refused_from_the_header(tmp_path) -> None:
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 30_000, 30_000, 16, 0, 0, 0, 0)
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
                     + b"\0" * 100)
    before, t0 = _peak_kb(), time.perf_counter()
    with pytest.raises(UnsupportedImageError, match="MP"):
        load_image(path)
    assert time.perf_counter() - t0 < 0.5 and _peak_kb() - before < 50_000


# ---------------------------------------------------------------------- other CPU capabilities
_DECODE_CHILD = r"""
import sys, zlib
from invlab.codecs.learned import LearnedCodec
from invlab.errors import CorruptBitstreamError
data = open(sys.argv[1], "rb").read()
try:
    image = LearnedCodec(sys.argv[2]).decode_image(data)
    print("ok", image.matches_encoder, zlib.crc32(image.rgb.tobytes()))
except CorruptBitstreamError as err:
    print("refused", type(err).__name__)
"""


@pytest.mark.parametrize("env", [{"ATEN_CPU_CAPABILITY": "default"}, {"ONEDNN_MAX_CPU_ISA": "SSE41"},
                                 {"OMP_NUM_THREADS": "2"}])
def test_decoding_on_other_cpu_capabilities_is_exact_or_says_so(tmp_path, monkeypatch, env) -> None:
    """Weights as shipped (a file), encoded here, decoded in a process with other CPU kernels or threads:
    the output is the encoder's exactly when the decoder says so, or the file is refused."""
    name = "msinn-mini"
    model = load_model(name, pretrained=False)
    (tmp_path / "w").mkdir()
    torch.save({"state_dict": model.state_dict(), "config": {}}, tmp_path / "w" / f"{name}.pt")
    monkeypatch.setenv("INVLAB_WEIGHTS", str(tmp_path / "w"))
    codec = LearnedCodec(name)
    rgb = np.asarray(load_image("data/kodak/kodim23.png").rgb[100:196, 200:328]).copy()
    data, recon = codec.encode_with_reconstruction(rgb, 3.5)
    path = tmp_path / "f.invl"
    path.write_bytes(data)
    out = subprocess.run([sys.executable, "-c", _DECODE_CHILD, str(path), name], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1", **env}, timeout=300)
    assert out.returncode == 0, out.stderr[-1500:]
    words = out.stdout.split()
    if words[0] == "ok":
        assert (words[1] == "True") == (int(words[2]) == zlib.crc32(recon.tobytes()))
    else:
        assert words[0] == "refused"


# ---------------------------------------------------------------------- the fuzzer (quick slice)
def test_fuzz_slice_has_no_failures() -> None:
    """Every kind of damage once per family (and the encoder's hostile images): ok or a documented error."""
    result = run_fuzz(len(KINDS) * len(MODELS), seed=1, progress=False)
    summary = result["summary"]
    assert result["cases"] == len(KINDS) * len(MODELS)
    assert not result["failures"], result["failures"][:5]
    assert summary["outcomes"].get("error", 0) > summary["outcomes"].get("ok", 0)
    assert issubclass(InvalidHeaderError, InvlabError)


def _worker_like(code: str) -> fuzz._Process:
    """A fuzz worker stand-in: a process running ``code``, read through the fuzzer's own _Process.read."""
    process = fuzz._Process.__new__(fuzz._Process)
    process.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True)
    return process


def test_fuzz_case_limit_counts_the_workers_cpu_time_and_bounds_the_wall_time() -> None:
    """A case is a hang after its CPU-time limit (not the wall time a busy machine stretches), or after the wall
    limit when the worker waits without computing; a worker that answers is read."""
    spinning = _worker_like("while True: pass")
    t0 = time.monotonic()
    assert spinning.read(60, cpu_limit=1.0) is None
    assert spinning.cpu_seconds() >= 1.0 and time.monotonic() - t0 < 30
    spinning.kill()
    waiting = _worker_like("import time; time.sleep(60)")
    t0 = time.monotonic()
    assert waiting.read(1.5, cpu_limit=30) is None and 1.4 < time.monotonic() - t0 < 20
    waiting.kill()
    answering = _worker_like("import json; print(json.dumps({'case': 3}), flush=True)")
    assert answering.read(60, cpu_limit=30) == {"case": 3}
    answering.kill()
    assert fuzz.WALL_LIMIT_S > fuzz.TIME_LIMIT_S
