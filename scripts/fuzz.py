"""Fuzzing the decoder (and the encoder's image reader) as a hostile sender would.

    python -m scripts.fuzz --cases 10000            # the full run (figures in docs/file-format.md)
    python -m scripts.fuzz --cases 200 --json out.json

Every case is a crafted file: a real invlab file of one model family (untrained weights, or "fake-trained"
ones: the untrained weights perturbed, so the weights hash and the streams differ), damaged one way —
bit flips in a stream with the container checksum recomputed (so the damage reaches the decoder),
truncated, extended, emptied or swapped streams, crafted header fields and metadata, other versions,
random files — or a hostile input image for the encoder. Cases run in worker subprocesses, so a crash
(a signal) is seen and counted instead of ending the run; each case has a time limit and a memory limit.

Outcomes: ``ok`` (decoded; identical to the unmodified file's decode, or flagged by the decoder as not the
encoder's), ``error`` (a documented :class:`~invlab.errors.InvlabError`), and the failures ``undocumented``
(any other exception), ``lie`` (decoded without error or flag to another image), ``crash``, ``hang``,
``overalloc`` (memory beyond the limit), ``cli`` (the CLI did not print one line and exit 2).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import math
import os
import random
import resource
import select
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]  # workers run ``python -m scripts.fuzz`` from here
#: the families fuzzed, one or two models each
MODELS = ("tiny-flow", "msinn-mini", "bmshj2018-hyperprior-mini", "invcompress-mini", "anfic-mini-noctx",
          "manfic-mini", "msanfic-mini")
FAILURES = ("undocumented", "lie", "crash", "hang", "overalloc", "cli")
HEADER_KINDS = ("size", "size-consistent", "rate", "mode", "meta", "streams", "version", "hash", "model", "recon")
STREAM_KINDS = ("flip", "flip-raw", "truncate-stream", "truncate-file", "extend-stream", "empty", "swap")
KINDS = STREAM_KINDS + HEADER_KINDS + ("random", "image")
#: per-case limits: CPU seconds of the worker (a busy machine does not turn a slow case into a "hang"), and a
#: wall-clock bound for a worker that waits without computing. The slowest honest case: a consistent claim of the
#: largest size the memory budget admits, decoded on MSINN's exact path (about 100 s at 1 thread for 5 MP)
TIME_LIMIT_S = 240.0
WALL_LIMIT_S = 4 * TIME_LIMIT_S
MEMORY_LIMIT_MB = 2500


# ---------------------------------------------------------------------- container surgery (no torch)
@dataclass
class Parsed:
    """An invlab file (version 2 or 3) split into its fields (see :mod:`invlab.io.container`)."""

    version: int
    model: bytes
    weights: bytes
    height: int
    width: int
    mode: int
    bitdepth: int
    rate: float
    recon: tuple[int, int]
    meta: bytes
    streams: list[bytes]
    sketch: bytes = b""  # the reconstruction's sketch (flag 2)

    @classmethod
    def parse(cls, data: bytes) -> Parsed:
        pos = 5
        n = data[pos]
        model = data[pos + 1 : pos + 1 + n]
        pos += 1 + n
        weights = data[pos : pos + 8]
        pos += 8
        height, width, mode, bitdepth, rate = struct.unpack_from(">IIBBd", data, pos)
        pos += struct.calcsize(">IIBBd")
        recon = struct.unpack_from(">BI", data, pos)
        pos += 5
        sketch = data[pos : pos + 16] if recon[0] == 2 else b""
        pos += len(sketch)
        (meta_len,) = struct.unpack_from(">H", data, pos)
        meta = data[pos + 2 : pos + 2 + meta_len]
        pos += 2 + meta_len
        count = data[pos]
        lengths = struct.unpack_from(f">{count}I", data, pos + 1)
        pos += 1 + 4 * count
        streams = []
        for length in lengths:
            streams.append(data[pos : pos + length])
            pos += length
        return cls(data[4], model, weights, height, width, mode, bitdepth, rate, recon, meta, streams, sketch)

    def build(self) -> bytes:
        """Serialise with a correct CRC (so the damage reaches the decoder)."""
        body = b"".join([
            b"INVL", bytes([self.version]), bytes([len(self.model) & 0xFF]), self.model, self.weights,
            struct.pack(">IIBBd", self.height & 0xFFFFFFFF, self.width & 0xFFFFFFFF, self.mode & 0xFF,
                        self.bitdepth & 0xFF, self.rate),
            struct.pack(">BI", *self.recon), self.sketch, struct.pack(">H", len(self.meta)), self.meta,
            bytes([len(self.streams)]), b"".join(struct.pack(">I", len(s)) for s in self.streams), *self.streams,
        ])
        return body + struct.pack(">I", zlib.crc32(body))


def _flip_bits(data: bytes, rng: random.Random, flips: int) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(flips):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def _crafted_meta(rng: random.Random, meta: dict) -> bytes:
    choice = rng.randrange(9)
    if choice == 0:
        return json.dumps(rng.choice([[], 1, "x", None, True, [meta]])).encode()
    if choice == 1:
        depth = rng.choice([9, 100, 30_000])
        return (b"[" * depth + b"]" * depth)[:65_000]
    if choice == 2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    shape = dict(meta.get("shape", {}))
    if choice == 3 and shape:
        key = rng.choice(sorted(shape))
        shape[key] = rng.choice([None, "x", -1, 0, 10**30, [10**9, 10**9], [], [1.5, 2.5], {"a": 1}])
    elif choice == 4 and shape:
        del shape[rng.choice(sorted(shape))]
    elif choice == 5:
        shape["abs_max"] = rng.choice([[10**6], [-5], [4096] * 8, "x", [1.5]])
    elif choice == 6:
        return json.dumps({**meta, "alpha": rng.choice([1, "yes", [], None, True])}).encode()
    elif choice == 7:
        return json.dumps({**meta, rng.choice(["x", "shape2", ""]): 1}).encode()
    else:
        return json.dumps({"shape": rng.choice([[], 7, "size", None])}).encode()
    return json.dumps({**meta, "shape": shape}).encode()


def mutate(kind: str, data: bytes, other: bytes, rng: random.Random, models: tuple[str, ...]) -> tuple[bytes, bool]:
    """A crafted variant of ``data`` (``other``: another file of the same model); also whether the mutation
    leaves the coded content as it was (then a decode must equal the unmodified file's)."""
    f = Parsed.parse(data)
    same_content = False
    if kind == "flip":
        if not any(f.streams):
            return data, True
        i = rng.choice([k for k, s in enumerate(f.streams) if s])
        f.streams[i] = _flip_bits(f.streams[i], rng, rng.choice([1, 1, 2, 4, 16]))
    elif kind == "flip-raw":
        return _flip_bits(data, rng, rng.choice([1, 2, 8])), False
    elif kind == "truncate-stream":
        i = rng.randrange(len(f.streams))
        f.streams[i] = f.streams[i][: rng.randrange(len(f.streams[i]) + 1)]
    elif kind == "truncate-file":
        return data[: rng.randrange(len(data))], False
    elif kind == "extend-stream":
        i = rng.randrange(len(f.streams))
        f.streams[i] += bytes(rng.randrange(256) for _ in range(rng.choice([1, 4, 100])))
    elif kind == "empty":
        f.streams = [b"" for _ in f.streams]
    elif kind == "swap":
        g = Parsed.parse(other)
        if rng.random() < 0.5 and g.streams:
            i = rng.randrange(min(len(f.streams), len(g.streams)))
            f.streams[i] = g.streams[i]
        else:
            f.streams = list(g.streams)
    elif kind == "size-consistent":
        return data, False  # made consistent by the worker, which knows the model's stream geometry
    elif kind == "size":
        value = rng.choice([0, 1, 7, 65_535, 100_032, 2**32 - 1, f.width + 1, f.height * 2, 6144, 12_608])
        if rng.random() < 0.5:
            f.width = value
        else:
            f.height = value
    elif kind == "rate":
        old = f.rate
        f.rate = rng.choice([math.nan, math.inf, -math.inf, -1.0, 0.5, 1e300, 99.0, 3.7, 1.0, -0.0])
        same_content = f.rate == old
    elif kind == "mode":
        if rng.random() < 0.5:
            f.mode = rng.randrange(256)
        else:
            f.bitdepth = rng.choice([0, 1, 7, 9, 16, 32, 255])
    elif kind == "meta":
        f.meta = _crafted_meta(rng, json.loads(f.meta))
    elif kind == "streams":
        if rng.random() < 0.5 and f.streams:
            del f.streams[rng.randrange(len(f.streams))]
        else:
            f.streams.insert(rng.randrange(len(f.streams) + 1), rng.choice([b"", bytes(64)]))
    elif kind == "version":
        f.version = rng.choice([0, 1, 4, 255])
    elif kind == "hash":
        f.weights = bytes(rng.randrange(256) for _ in range(8))
    elif kind == "model":
        f.model = rng.choice([*(m.encode() for m in models), b"", b"jpeg", b"\xff\xfe", b"x" * 255])
    elif kind == "recon":
        f.recon = rng.choice([(1, rng.randrange(2**32)), (0, 0), (2, rng.randrange(2**32)), (3, 0)])
        f.sketch = bytes(rng.randrange(256) for _ in range(16)) if f.recon[0] == 2 else b""
        same_content = True
    elif kind == "random":
        if rng.random() < 0.5:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))), False
        return b"INVL\x03" + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))), False
    else:
        raise ValueError(kind)
    return f.build(), same_content


# ---------------------------------------------------------------------- hostile input images
def hostile_image(rng: random.Random, folder: Path) -> Path:
    """A bad input image for the encoder: a decompression bomb header, truncated or odd files."""
    import numpy as np
    from PIL import Image

    choice = rng.randrange(8)
    path = folder / f"hostile-{rng.randrange(10**9)}.png"
    if choice == 0:  # a PNG whose IHDR claims a huge 8- or 16-bit image (the bytes after it are junk)
        depth, colour = rng.choice([(8, 2), (16, 0), (16, 2)])
        ihdr = struct.pack(">IIBBBBB", rng.choice([30_000, 20_000, 65_535]), 30_000, depth, colour, 0, 0, 0)
        chunk = b"IHDR" + ihdr
        data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
        path.write_bytes(data + b"\x00" * 64)
    elif choice == 1:
        path.write_bytes(b"")
    elif choice == 2:
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 500))))
    elif choice == 3:  # a real PNG, truncated
        buf = io.BytesIO()
        Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(buf, "PNG")
        path.write_bytes(buf.getvalue()[: rng.randrange(8, len(buf.getvalue()))])
    elif choice == 4:
        Image.new("1", (17, 9)).save(path)
    elif choice == 5:
        path = path.with_suffix(".tif")
        Image.fromarray(np.zeros((8, 8), np.float32), mode="F").save(path)
    elif choice == 6:
        path.mkdir()
    else:
        buf = io.BytesIO()
        Image.fromarray(np.full((3, 5, 3), 7, np.uint8)).save(buf, "PNG")
        path.write_bytes(buf.getvalue())  # a valid tiny image: must encode fine
    return path


# ---------------------------------------------------------------------- the worker (torch lives here)
class Worker:
    """Builds the base files once, then runs cases read from stdin, one JSON line per case on stdout."""

    def __init__(self, folder: Path, seed: int):
        import numpy as np
        import torch

        from invlab.codecs.learned import LearnedCodec

        torch.set_num_threads(1)
        self.folder, self.seed = folder, seed
        self.base: dict[tuple[str, str], list[tuple[bytes, Any]]] = {}
        rng = np.random.default_rng(seed)
        images = _base_images(rng)
        for name in MODELS:
            for variant in ("untrained", "fake"):
                codec = LearnedCodec(name, pretrained=variant == "fake")
                rates = codec.rates if len(codec.rates) < 3 else (codec.rates[0], codec.rates[-1])
                files = []
                for k, image in enumerate(images):
                    data = codec.encode_image(image, rates[k % len(rates)])
                    files.append((data, codec.decode_image(data)))
                self.base[(name, variant)] = files
        self.codecs = {(n, v): LearnedCodec(n, pretrained=v == "fake") for n, v in self.base}

    def run(self, index: int) -> dict[str, Any]:
        from invlab.errors import InvlabError

        rng = random.Random(self.seed * 1_000_003 + index)
        kind = KINDS[index % len(KINDS)]
        name = MODELS[(index // len(KINDS)) % len(MODELS)]
        variant = rng.choice(("untrained", "fake"))
        record: dict[str, Any] = {"case": index, "kind": kind, "model": name, "variant": variant}
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        try:
            if kind == "image":
                record["outcome"] = self._image_case(rng, name, variant)
            else:
                record["outcome"] = self._file_case(rng, kind, name, variant, index)
        except InvlabError as err:
            record.update(outcome="error", error=type(err).__name__)
        except MemoryError:
            record.update(outcome="overalloc", error="MemoryError")
        except Exception as err:  # noqa: BLE001 - exactly what the fuzzer looks for
            outcome = "overalloc" if "allocate" in str(err) else "undocumented"
            record.update(outcome=outcome, error=f"{type(err).__name__}: {str(err)[:200]}")
        record["seconds"] = round(time.perf_counter() - t0, 3)
        record["maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        record["rss_growth_mb"] = round((record["maxrss_mb"] * 1024 - before) / 1024, 1)
        return record

    def _file_case(self, rng: random.Random, kind: str, name: str, variant: str, index: int) -> str:
        files = self.base[(name, variant)]
        k = rng.randrange(len(files))
        data, reference = files[k]
        other = files[(k + 1 + rng.randrange(len(files) - 1)) % len(files)][0]
        crafted, same_content = mutate(kind, data, other, rng, MODELS)
        if kind == "size-consistent":  # a size claim whose stream geometry agrees: the decoder must bound its work
            crafted = self._consistent_size(crafted, rng, name, variant)
        if index % 10 == 0:
            self._cli_case(crafted, name, variant)
        image = self.codecs[(name, variant)].decode_image(crafted)
        identical = (image.rgb.shape == reference.rgb.shape and bool((image.rgb == reference.rgb).all())
                     and (image.mode, image.bitdepth) == (reference.mode, reference.bitdepth)
                     and ((image.alpha is None and reference.alpha is None) or (
                         image.alpha is not None and reference.alpha is not None
                         and bool((image.alpha == reference.alpha).all()))))
        if identical or (image.matches_encoder is False and not same_content):
            return "ok"  # the same image, or another one that the decoder flags as not the encoder's
        return "lie"

    def _consistent_size(self, data: bytes, rng: random.Random, name: str, variant: str) -> bytes:
        f = Parsed.parse(data)
        model = self.codecs[(name, variant)].model(f.rate)
        f.height, f.width = rng.choice([(2048, 2048), (4096, 3072), (6144, 6144), (512, 8192), (768, 1024)])
        m = model.pad_multiple
        meta = json.loads(f.meta)
        meta["shape"] = {**meta["shape"], **model.stream_geometry(-(-f.height // m) * m, -(-f.width // m) * m)}
        f.meta = json.dumps(meta).encode()
        return f.build()

    def _cli_case(self, crafted: bytes, name: str, variant: str) -> None:
        from invlab.cli import main

        path = self.folder / "cli-case.invl"
        out = self.folder / "cli-case.png"
        path.write_bytes(crafted)
        with contextlib.suppress(FileNotFoundError):
            out.unlink()
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = main(["decode", str(path), str(out), *(["--untrained"] if variant == "untrained" else [])])
            except SystemExit as exit_:
                rc = exit_.code
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        if rc not in (0, 2) or (rc == 2 and (len(lines) != 1 or not lines[0].startswith("invlab: error:"))):
            raise _CliFailure(f"exit {rc}, stderr {lines[:3]}")

    def _image_case(self, rng: random.Random, name: str, variant: str) -> str:
        from invlab.io.images import load_image

        path = hostile_image(rng, self.folder)
        image = load_image(path)
        self.codecs[(name, variant)].encode_image(image, self.codecs[(name, variant)].rates[0])
        return "ok"


class _CliFailure(Exception):
    pass


def _base_images(rng: Any) -> list[Any]:
    """Small images of the kinds that matter: odd size, noise (long streams), grey, partial alpha."""
    import numpy as np

    from invlab.io.images import ImageData

    h, w = 37, 45
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([xx * 5, yy * 6, (xx + yy) * 3], axis=-1).clip(0, 255).astype(np.uint8)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    grey = np.repeat(rng.integers(0, 256, (20, 24, 1), dtype=np.uint8), 3, axis=2)
    alpha = rng.integers(0, 256, (33, 31), dtype=np.uint8)
    return [ImageData(smooth), ImageData(noise), ImageData(grey, "L"),
            ImageData(rng.integers(0, 256, (33, 31, 3), dtype=np.uint8), "RGBA", 8, alpha)]


def _fake_weights(folder: Path) -> None:
    """Perturbed untrained weights for every fuzzed model, as shipped files (another hash, other streams)."""
    import torch

    from invlab.weights import load_model

    for name in MODELS:
        model = load_model(name, pretrained=False)
        gen = torch.Generator().manual_seed(1)
        state = model.state_dict()
        for key, value in state.items():
            if value.is_floating_point() and not key.endswith(("_quantized_cdf", "_offset", "_cdf_length")):
                value.mul_(1 + 0.05 * torch.randn(value.shape, generator=gen))
        torch.save({"state_dict": state, "config": {}}, folder / f"{name}.pt")


def _worker_main(folder: Path, seed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    import torch  # noqa: F401  (the address space torch maps at import is not the cases')

    from invlab.errors import InvlabError  # noqa: F401

    vm_kb = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0])
    limit = vm_kb * 1024 + MEMORY_LIMIT_MB * 2**20 * 2
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    worker = Worker(folder, seed)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        try:
            record = worker.run(int(line))
        except _CliFailure as err:
            record = {"case": int(line), "outcome": "cli", "error": str(err)}
        print(json.dumps(record), flush=True)


# ---------------------------------------------------------------------- the parent
class _Process:
    def __init__(self, folder: Path, seed: int, env: dict[str, str]):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.fuzz", "--worker", "--dir", str(folder), "--seed", str(seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
        ready = self.read(600)
        if not ready or not ready.get("ready"):
            raise RuntimeError("fuzz worker did not start")

    def read(self, timeout: float, cpu_limit: float | None = None) -> dict | None:
        """The worker's next JSON line, or None when it has none within ``timeout`` wall seconds, or after
        ``cpu_limit`` seconds of its own CPU time (counted from this call), or when it has exited."""
        start = self.cpu_seconds()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, min(left, 1.0)))
            if ready:
                line = self.proc.stdout.readline()
                return json.loads(line) if line else None
            if left <= 0 or (cpu_limit is not None and self.cpu_seconds() - start > cpu_limit):
                return None

    def cpu_seconds(self) -> float:
        """User + system CPU time of the worker so far (Linux ``/proc``); 0 once it has gone."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def run_fuzz(cases: int, seed: int = 0, start: int = 0, progress: bool = True) -> dict[str, Any]:
    """Run ``cases`` cases; return per-case records and the summary (outcomes per family and kind)."""
    from tqdm.auto import tqdm

    records = []
    with tempfile.TemporaryDirectory(prefix="invlab-fuzz-") as tmp:
        folder = Path(tmp)
        (folder / "weights").mkdir()
        env = {**os.environ, "INVLAB_WEIGHTS": str(folder / "weights"), "OMP_NUM_THREADS": "1"}
        subprocess.run([sys.executable, "-c", f"from scripts.fuzz import _fake_weights; from pathlib import Path; "
                        f"_fake_weights(Path({str(folder / 'weights')!r}))"], check=True, env=env, cwd=REPO)
        worker = _Process(folder, seed, env)
        t0 = time.perf_counter()
        for index in tqdm(range(start, start + cases), disable=not progress, desc="fuzz"):
            worker.proc.stdin.write(f"{index}\n")
            worker.proc.stdin.flush()
            record = worker.read(WALL_LIMIT_S, cpu_limit=TIME_LIMIT_S)
            if record is None:
                code = worker.proc.poll()
                outcome = "hang" if code is None else "crash"
                record = {"case": index, "outcome": outcome, "error": f"exit code {code}",
                          "kind": KINDS[index % len(KINDS)], "model": MODELS[(index // len(KINDS)) % len(MODELS)]}
                worker.kill()
                worker = _Process(folder, seed, env)
            elif record.get("rss_growth_mb", 0) > MEMORY_LIMIT_MB:
                record["outcome"] = "overalloc"
            records.append(record)
        worker.kill()
        wall = time.perf_counter() - t0
    return {"cases": len(records), "seed": seed, "wall_seconds": round(wall, 1), "summary": summarise(records),
            "failures": [r for r in records if r["outcome"] in FAILURES], "records": records}


def summarise(records: list[dict]) -> dict[str, Any]:
    """Outcome counts overall, per model and per kind; the slowest case and the largest memory high-water."""
    total = collections.Counter(r["outcome"] for r in records)
    per_model: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    per_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in records:
        per_model[r.get("model", "?")][r["outcome"]] += 1
        per_kind[r.get("kind", "?")][r["outcome"]] += 1
    return {
        "outcomes": dict(total), **{f: total.get(f, 0) for f in FAILURES},
        "per_model": {k: dict(v) for k, v in sorted(per_model.items())},
        "per_kind": {k: dict(v) for k, v in sorted(per_kind.items())},
        "slowest_case_s": max((r.get("seconds", 0) for r in records), default=0),
        "max_rss_mb": max((r.get("maxrss_mb", 0) for r in records), default=0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="number of cases (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="first case index")
    parser.add_argument("--json", help="write the summary (and failing cases) to this JSON file")
    parser.add_argument("--force", action="store_true", help="replace an existing --json file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker_main(Path(args.dir), args.seed)
        return 0
    if args.json and Path(args.json).exists() and not args.force:
        parser.error(f"{args.json} exists; use --force to replace it")
    result = run_fuzz(args.cases, args.seed, args.start)
    summary = result["summary"]
    print(f"{result['cases']} cases in {result['wall_seconds']} s: " + ", ".join(
        f"{k} {v}" for k, v in sorted(summary["outcomes"].items())))
    for model, counts in summary["per_model"].items():
        print(f"  {model:28s} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print("failures: " + ", ".join(f"{f} {summary[f]}" for f in FAILURES))
    for failure in result["failures"][:20]:
        print("  ", json.dumps(failure))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({k: v for k, v in result.items() if k != "records"}, indent=1) + "\n")
    return 1 if any(summary[f] for f in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())
