"""Test vectors: files of every model with exact entropy parameters, encoded once and committed, decoded by the
tests under other CPU kernels (``tests/test_cross_cpu.py``; the settings are :data:`scripts.cross_cpu.SETTINGS`).

    python -m scripts.test_vectors          # (re)write tests/fixtures/vectors/ from the shipped weights

Each vector is a 128x128 crop of kodim23 coded at a model's lowest and highest shipped rate: ``NAME-rR.invl``, the
encoder's reconstruction ``NAME-rR.png``, and ``manifest.json`` with the SHA-256 of both, the model, the rate and
the weights hash. Run it again when a model's shipped weights change (its vectors then no longer match them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

FOLDER = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "vectors"
CROP = (slice(150, 278), slice(250, 378))  # kodim23: a parrot's head, edges and flat background


def exact_models() -> list[str]:
    """Shipped models whose entropy parameters are exact (``exact_entropy``)."""
    from invlab.models.registry import model_class
    from invlab.weights import has_weights
    from invlab.widgets.sources import learned_models

    return [m for m in learned_models() if has_weights(m) and model_class(m).exact_entropy]


def write(folder: Path = FOLDER) -> dict:
    from invlab.codecs.learned import LearnedCodec
    from invlab.io.images import ImageData, load_image, save_image

    rgb = np.ascontiguousarray(load_image("data/kodak/kodim23.png").rgb[CROP])
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name in exact_models():
        codec = LearnedCodec(name)
        for rate in sorted({codec.rates[0], codec.rates[-1]}):
            data, recon = codec.encode_with_reconstruction(rgb, rate)
            stem = f"{name}-r{rate:g}"
            (folder / f"{stem}.invl").write_bytes(data)
            save_image(folder / f"{stem}.png", ImageData(recon), overwrite=True)
            manifest[stem] = {"model": name, "rate": rate, "weights_hash": codec.model(rate).weights_hash.hex(),
                              "file_sha256": hashlib.sha256(data).hexdigest(),
                              "pixels_sha256": hashlib.sha256(recon.tobytes()).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    for stem, entry in write().items():
        print(f"{stem}: {entry['file_sha256'][:16]}")


if __name__ == "__main__":
    main()
