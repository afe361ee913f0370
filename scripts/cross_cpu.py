"""Files made here, decoded with other CPU kernels: are the symbols the same, and how far apart are the pixels?

    python -m scripts.cross_cpu                                  # every shipped model, the settings below
    python -m scripts.cross_cpu --models msinn-mini-12 --json results/cross-cpu/matrix.json

Each model codes a crop of a Kodak image here (one thread, this machine's kernels); each setting then decodes every
file in a fresh process whose CPU kernels are chosen by environment variables, as on another computer:
oneDNN's instruction set capped (``ONEDNN_MAX_CPU_ISA``: SSE41 as on an old CPU, AVX2), ATen's vectorised kernels
chosen (``ATEN_CPU_CAPABILITY``: default = portable, avx2), 1 or 2 threads, and two mixtures. A decode is
*exact* when every symbol is read back (the stream's symbol checksum holds) and the pixels are the encoder's; else
the table says how it failed, or the share of pixels that differ and the largest difference in 8-bit levels.
``--float`` codes with the float entropy parameters of the files made before, where a model has exact ones.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SETTINGS: dict[str, dict[str, str]] = {
    "here, 1 thread": {},
    "2 threads": {"OMP_NUM_THREADS": "2"},
    "oneDNN SSE4.1": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
    "oneDNN AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "ATen default": {"ATEN_CPU_CAPABILITY": "default"},
    "ATen AVX2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "SSE4.1 + ATen default": {"ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"},
    "AVX2 + ATen AVX2, 2 threads": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
                                    "OMP_NUM_THREADS": "2"},
}

_CHILD = r"""
import json, sys
import numpy as np
from invlab.codecs.learned import LearnedCodec
out = {}
for name, path, recon in json.loads(sys.argv[1]):
    try:
        rgb = LearnedCodec(name).decode(open(path, "rb").read())
    except Exception as err:  # noqa: BLE001 - reported
        out[path] = {"outcome": type(err).__name__, "detail": str(err)[:160]}
        continue
    if recon.endswith(".png"):
        from invlab.io.images import load_image
        reference = load_image(recon).rgb
    else:
        reference = np.load(recon)
    diff = np.abs(rgb.astype(np.int16) - reference.astype(np.int16))
    out[path] = {"outcome": "exact" if not diff.any() else "pixels differ",
                 "share": float((diff.max(axis=2) > 0).mean()), "max": int(diff.max())}
print(json.dumps(out))
"""


def encode_all(models: list[str], rgb: np.ndarray, rate: float | None, folder: Path,
               float_entropy: bool = False) -> list[tuple[str, str, str]]:
    """Each model's file of ``rgb`` and the encoder's reconstruction, written to ``folder``; ``float_entropy``: the
    float entropy parameters of the files made before, where a model has exact ones (the decoder reads which)."""
    from invlab.codecs.learned import LearnedCodec
    from invlab.models.registry import model_class

    jobs = []
    for name in models:
        old = float_entropy and model_class(name).exact_entropy
        codec = LearnedCodec(name, **({"entropy": "float"} if old else {}))
        at = codec.rate_space.default if rate is None else rate
        data, recon = codec.encode_with_reconstruction(rgb, at)
        path, recon_path = folder / f"{name}.invl", folder / f"{name}-recon.npy"
        path.write_bytes(data)
        np.save(recon_path, recon)
        jobs.append((name, str(path), str(recon_path)))
    return jobs


def decode_all(jobs: list[tuple[str, str, str]], env: dict[str, str]) -> dict:
    """Decode ``(model, file, reference picture)`` jobs in a process with ``env``: results by file."""
    run = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(jobs)], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1", **env}, timeout=1800)
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-2000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def cell(result: dict) -> str:
    if result["outcome"] == "exact":
        return "exact"
    if result["outcome"] == "pixels differ":
        return f"symbols ok, {100 * result['share']:.2f} % px differ (max {result['max']})"
    return result["outcome"]


def main(argv: list[str] | None = None) -> None:
    from invlab.io.images import load_image
    from invlab.weights import has_weights
    from invlab.widgets.sources import learned_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="default: every model with shipped weights")
    parser.add_argument("--image", default="data/kodak/kodim23.png")
    parser.add_argument("--crop", default="100:196,200:328", help="rows,cols to code (top:bottom,left:right)")
    parser.add_argument("--rate", type=float, help="default: each model's default rate")
    parser.add_argument("--float", action="store_true", help="code with the float entropy parameters (the files "
                        "made before) where a model has exact ones")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows, cols = (tuple(int(v) for v in part.split(":")) for part in args.crop.split(","))
    rgb = np.ascontiguousarray(load_image(args.image).rgb[rows[0]:rows[1], cols[0]:cols[1]])
    models = args.models or [m for m in learned_models() if has_weights(m)]
    with tempfile.TemporaryDirectory() as tmp:
        jobs = encode_all(models, rgb, args.rate, Path(tmp), args.float)
        results = {setting: decode_all(jobs, env) for setting, env in SETTINGS.items()}
    print("| model | " + " | ".join(SETTINGS) + " |")
    print("|---" * (len(SETTINGS) + 1) + "|")
    for name, path, _ in jobs:
        print(f"| {name} | " + " | ".join(cell(results[s][path]) for s in SETTINGS) + " |")
    results = {s: {name: results[s][path] for name, path, _ in jobs} for s in SETTINGS}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"image": args.image, "crop": args.crop, "rate": args.rate,
                                         "float_entropy": args.float, "settings": SETTINGS,
                                         "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
