"""What the notebooks can choose from: Kodak images or a user file, registered models, classical codecs.

Every chooser says plainly what is missing instead of failing: a model without shipped weights opens
untrained (with :data:`UNTRAINED_BANNER`), a codec that is not available yet gives its reason.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from invlab.codecs.base import Codec
from invlab.codecs.learned import LearnedCodec, learned_codec
from invlab.codecs.registry import split_weights
from invlab.errors import InvlabError
from invlab.io.images import from_pil, load_image
from invlab.models import get_spec, list_models
from invlab.models.registry import model_class
from invlab.weights import REPO_ROOT, budget_line, file_line, has_weights

KODAK_DIR = REPO_ROOT / "data" / "kodak"
PREFERRED_MODELS = ("msinn-mini-12", "msinn-mini", "tiny-flow")  # the flagship first
CLASSICAL_CODECS = ("jpeg", "webp", "avif", "hevc444", "jpeg2000")  # integer knobs, fast enough for a slider
UNTRAINED_BANNER = "untrained: no trained weights shipped yet — numbers are not results"


def kodak_images() -> list[str]:
    """Names of the Kodak images shipped in ``data/kodak`` (``kodim01`` ...)."""
    return sorted(p.stem for p in KODAK_DIR.glob("kodim*.png"))


def center_crop(rgb: np.ndarray, size: int | None) -> np.ndarray:
    """The central ``size`` x ``size`` square (the whole image when ``size`` is None or larger)."""
    if size is None:
        return rgb
    h, w = rgb.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return np.ascontiguousarray(rgb[top : top + size, left : left + size])


def load_rgb(choice: str | Path, crop: int | None = None) -> np.ndarray:
    """An 8-bit RGB image: a Kodak name (``"kodim23"``) or a path to any image file."""
    path = KODAK_DIR / f"{choice}.png" if str(choice) in kodak_images() else Path(choice)
    return center_crop(load_image(path).rgb, crop)


def decode_upload(content: bytes) -> np.ndarray:
    """RGB of an uploaded image file (``ipywidgets.FileUpload`` content)."""
    with Image.open(io.BytesIO(content)) as img:
        img.load()
        return from_pil(img).rgb


def learned_models(variable_rate_only: bool = False) -> list[str]:
    """Registered learned models, preferred ones first (:data:`PREFERRED_MODELS`: the 12-anchor MSINN mini)."""
    names = list_models()
    ordered = [n for n in PREFERRED_MODELS if n in names] + [n for n in names if n not in PREFERRED_MODELS]
    return [n for n in ordered if is_variable_rate(n)] if variable_rate_only else ordered


def is_variable_rate(name: str) -> bool:
    return get_spec(split_weights(name)[0]).variable_rate


def rate_maps(name: str) -> bool:
    """Whether ``name`` (or ``MODEL@FILE``) codes with a rate map (a class fact; nothing is built)."""
    return model_class(split_weights(name)[0]).rate_maps


def default_model() -> str:
    return learned_models()[0]


def open_learned(name: str, interactive: bool = False) -> LearnedCodec:
    """The learned codec for ``name``: trained weights when shipped, else the untrained deterministic init;
    ``MODEL@FILE``: the model with that weight file (e.g. converted official weights). ``interactive``: for pictures
    that stay in this process (the slider), the float entropy path of models with exact entropy parameters — about
    5x faster for MSINN; the same pictures within float rounding, files that decode exactly on this machine only."""
    if split_weights(name)[1] is not None:
        return learned_codec(name, float_entropy=interactive)
    return learned_codec(name, pretrained=has_weights(name), float_entropy=interactive)


def model_status(name: str) -> str:
    """One line for the notebook: trained weights (shipped, or the user's file), or :data:`UNTRAINED_BANNER`."""
    model, file = split_weights(name)
    if file is not None:
        return file_line(model, file)
    if has_weights(name):
        return budget_line(name)
    return f"{name} ({get_spec(model).family}): {UNTRAINED_BANNER}"


@functools.cache
def kodak_points(codec: str, image: str) -> pd.DataFrame | None:
    """The measured points of ``codec`` on the Kodak image ``image`` (``results/kodak/<codec>.csv``: bpp, psnr),
    sorted by bpp; None where there are none (another image, or no sweep of that codec). Read once per process
    (every slider update asks); do not modify the frame."""
    path = REPO_ROOT / "results" / "kodak" / f"{codec}.csv"
    if image not in kodak_images() or not path.is_file():
        return None
    rows = pd.read_csv(path)
    rows = rows[rows["image"] == image]
    if rows.empty:
        return None
    return rows.rename(columns={"psnr-rgb": "psnr"})[["rate", "bpp", "psnr"]].sort_values("bpp")


def classical_codec(name: str) -> tuple[Codec | None, str]:
    """``(codec, "")`` or ``(None, why it is not available)``."""
    from invlab.codecs.registry import get_codec

    try:
        return get_codec(name), ""
    except (InvlabError, ImportError, RuntimeError) as err:
        return None, f"{name} not available: {err}"


def classical_names() -> list[str]:
    """The classical codecs that open on this machine."""
    return [n for n in CLASSICAL_CODECS if classical_codec(n)[0] is not None]
