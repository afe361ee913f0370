"""Evaluation image sets: a short name ("kodak") or any folder of images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from invlab.io.images import ImageData, load_image

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
NAMED = {"kodak": DATA_DIR / "kodak"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def dataset_dir(dataset_or_folder: str | Path) -> Path:
    """The folder behind a data set name, or the folder itself."""
    return NAMED.get(str(dataset_or_folder), Path(dataset_or_folder))


def list_images(dataset_or_folder: str | Path) -> list[Path]:
    """Image files (png, jpg, webp, tif) of a named data set or folder, not recursive, sorted by name."""
    folder = dataset_dir(dataset_or_folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such data set or folder: {dataset_or_folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def load_dataset(dataset_or_folder: str | Path) -> Iterator[tuple[str, ImageData]]:
    """Yield ``(name, image)`` per file, ``name`` being the file stem (``"kodim01"``)."""
    for path in list_images(dataset_or_folder):
        yield path.stem, load_image(path)
