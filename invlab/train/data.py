"""Training data: image folders held in memory, per-step seeded random crops, fixed validation crops.

Every training batch is a pure function of ``(seed, step)``, so a resumed run draws exactly the batches
the uninterrupted run would have drawn; no data-loader state needs saving.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from invlab.datasets import list_images


def dataset_hash(folder: str | Path) -> str:
    """SHA-256 over the sorted file names and their bytes (identifies a training set)."""
    digest = hashlib.sha256()
    for path in list_images(folder):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def _at_least(img: np.ndarray, size: int) -> np.ndarray:
    """Edge-pad an image smaller than ``size`` in either dimension."""
    ph, pw = max(0, size - img.shape[0]), max(0, size - img.shape[1])
    return np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else img


def dihedral(img: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/90° rotations of an (H, W, C) image (k in 0..7)."""
    img = np.rot90(img, k % 4)
    return img[:, ::-1] if k >= 4 else img


class ImageFolder:
    """All images of a folder as uint8 arrays (the 421 training crops take about 80 MB)."""

    def __init__(self, folder: str | Path, crop: int):
        self.folder = Path(folder)
        self.crop = crop
        self.paths = list_images(folder)
        self.images = [_at_least(_read_rgb(p), crop) for p in self.paths]

    def __len__(self) -> int:
        return len(self.images)

    def train_batch(self, seed: int, step: int, batch_size: int) -> torch.Tensor:
        """Random images, random crop positions and random dihedral transforms, drawn from ``(seed, step)``."""
        rng = np.random.default_rng([seed, step])
        batch = []
        for i in rng.integers(0, len(self.images), batch_size):
            img = self.images[i]
            top = rng.integers(0, img.shape[0] - self.crop + 1)
            left = rng.integers(0, img.shape[1] - self.crop + 1)
            patch = img[top:top + self.crop, left:left + self.crop]
            batch.append(dihedral(patch, int(rng.integers(0, 8))))
        return _to_tensor(batch)

    def centre_crops(self) -> torch.Tensor:
        """The fixed validation batch: one centre crop per image."""
        crops = []
        for img in self.images:
            top, left = (img.shape[0] - self.crop) // 2, (img.shape[1] - self.crop) // 2
            crops.append(img[top:top + self.crop, left:left + self.crop])
        return _to_tensor(crops)


def _to_tensor(patches: list[np.ndarray]) -> torch.Tensor:
    """(B, 3, H, W) float32 in [0, 1]."""
    arr = np.stack([np.ascontiguousarray(p) for p in patches])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)
