"""Loading and saving images, with a clear policy for every input mode.

What invlab codes (the learned and classical codecs all work on 8-bit RGB):

| input                      | handling                                                              |
|----------------------------|-----------------------------------------------------------------------|
| 8-bit RGB                  | coded as is                                                           |
| 8-bit grayscale (L)        | replicated to RGB, decoded back to L (mean of the three channels)     |
| palette (P), CMYK, YCbCr   | converted to RGB by Pillow, decoded as RGB                            |
| RGBA / LA                  | colour coded lossily; alpha stored losslessly (zlib) beside it; fully |
|                            | opaque alpha is dropped and restored as 255                           |
| 16-bit (I;16, 16-bit RGB)  | reduced to 8 bits (round(v / 257)); decoded back to 16 bits (v * 257) |
| 1-bit, 32-bit int / float  | refused with :class:`UnsupportedImageError`                           |
| more than ``MAX_PIXELS``   | refused (memory); raise the limit explicitly for huge images          |

Any size from 1x1 up is accepted: models pad to their multiple and crop back (see :func:`pad_to_multiple`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from invlab.errors import InputNotFoundError, OutputExistsError, UnsupportedImageError
from invlab.io.container import MAX_PIXELS  # one limit for encoding and decoding


@dataclass
class ImageData:
    """An image as invlab codes it: 8-bit RGB plus what is needed to give the user back their mode."""

    rgb: np.ndarray  # (H, W, 3) uint8
    mode: str = "RGB"  # one of "RGB", "L", "RGBA", "LA"
    bitdepth: int = 8
    alpha: np.ndarray | None = None  # (H, W) uint8 where the input had a non-opaque alpha channel
    #: after decoding: is the RGB bit-identical to the encoder's reconstruction? (None: the file did not say)
    matches_encoder: bool | None = None
    #: after decoding, where not bit-identical: does it differ by float rounding only? (None: the file did not say)
    within_float_rounding: bool | None = None

    @property
    def height(self) -> int:
        return self.rgb.shape[0]

    @property
    def width(self) -> int:
        return self.rgb.shape[1]


def _check_size(h: int, w: int, max_pixels: int) -> None:
    if h < 1 or w < 1:
        raise UnsupportedImageError(f"image has no pixels ({w}x{h})")
    if h * w > max_pixels:
        raise UnsupportedImageError(
            f"image is {w}x{h} = {h * w / 1e6:.1f} MP, above the {max_pixels / 1e6:.0f} MP limit; "
            "pass max_pixels= (CLI: --max-pixels) to code it anyway, or tile it yourself"
        )


def from_pil(img: Image.Image, max_pixels: int = MAX_PIXELS) -> ImageData:
    """Convert a Pillow image into :class:`ImageData` following the policy in the module docstring."""
    _check_size(img.height, img.width, max_pixels)
    mode = img.mode
    if mode == "1" or mode in ("I", "F"):
        raise UnsupportedImageError(
            f"image mode {mode!r} ({'1-bit' if mode == '1' else '32-bit'}) is not supported; "
            "convert it to 8-bit RGB or grayscale first"
        )
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr16 = np.asarray(img, dtype=np.uint16)
        gray = np.round(arr16.astype(np.float64) / 257.0).astype(np.uint8)
        return ImageData(np.repeat(gray[..., None], 3, axis=2), "L", 16)
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode == "L":
        gray = np.asarray(img, dtype=np.uint8)
        return ImageData(np.repeat(gray[..., None], 3, axis=2), "L", 8)
    if mode in ("LA", "RGBA"):
        arr = np.asarray(img, dtype=np.uint8)
        alpha = arr[..., -1]
        rgb = np.repeat(arr[..., :1], 3, axis=2) if mode == "LA" else arr[..., :3]
        opaque = bool((alpha == 255).all())
        return ImageData(np.ascontiguousarray(rgb), "L" if (mode == "LA" and opaque) else
                         ("RGB" if opaque else mode), 8, None if opaque else alpha.copy())
    if mode != "RGB":
        img = img.convert("RGB")
    return ImageData(np.asarray(img, dtype=np.uint8).copy(), "RGB", 8)


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> ImageData:
    """Read an image file (PNG, JPEG, WebP, TIFF, ...; 16-bit PNG included)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path} is a directory, not an image" if path.is_dir() else f"no such image: {path}")
    if _is_16bit_png(path):  # Pillow would truncate 16-bit colour PNGs to 8 bits silently
        return _load_16bit_png(path, max_pixels)
    try:
        with Image.open(path) as img:
            _check_size(img.height, img.width, max_pixels)  # before decoding the pixels
            img.load()
            return from_pil(img, max_pixels)
    except UnsupportedImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UnsupportedImageError(f"{path}: cannot read image ({err})") from None


def _is_16bit_png(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(26)
    return head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 25 and head[24] == 16


def _load_16bit_png(path: Path, max_pixels: int) -> ImageData:
    import imagecodecs

    with open(path, "rb") as fh:
        head = fh.read(24)
    _check_size(int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big"), max_pixels)  # IHDR first
    try:
        arr = imagecodecs.png_decode(path.read_bytes())
    except Exception as err:  # imagecodecs raises its own PngError
        raise UnsupportedImageError(f"{path}: cannot read 16-bit PNG ({err})") from None
    _check_size(arr.shape[0], arr.shape[1], max_pixels)
    arr8 = np.round(arr.astype(np.float64) / 257.0).astype(np.uint8)
    if arr8.ndim == 2:
        return ImageData(np.repeat(arr8[..., None], 3, axis=2), "L", 16)
    channels = arr8.shape[2]
    alpha = arr8[..., -1] if channels in (2, 4) else None
    rgb = np.repeat(arr8[..., :1], 3, axis=2) if channels <= 2 else arr8[..., :3]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    if alpha is not None and (alpha == 255).all():
        alpha, mode = None, mode.rstrip("A") or "L"
    return ImageData(np.ascontiguousarray(rgb), mode, 16, alpha)


def to_array(data: ImageData) -> np.ndarray:
    """The decoded image in the user's mode: (H,W) for L, (H,W,2|3|4) otherwise; uint16 if 16-bit."""
    rgb = data.rgb
    if data.mode in ("L", "LA"):
        out = np.round(rgb.astype(np.float32).mean(axis=2)).astype(np.uint8)
        if data.mode == "LA":
            out = np.stack([out, _alpha(data)], axis=2)
    elif data.mode == "RGBA":
        out = np.concatenate([rgb, _alpha(data)[..., None]], axis=2)
    else:
        out = rgb
    if data.bitdepth == 16:
        return out.astype(np.uint16) * 257
    return out


def _alpha(data: ImageData) -> np.ndarray:
    return data.alpha if data.alpha is not None else np.full(data.rgb.shape[:2], 255, np.uint8)


def save_image(path: str | Path, data: ImageData, overwrite: bool = False) -> None:
    """Write a decoded image (PNG keeps 16 bits; other formats get 8 bits). Never overwrites unless asked."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; refusing to overwrite it (use --force / overwrite=True)")
    arr = np.ascontiguousarray(to_array(data))  # decoded arrays may be strided views (crop, permute)
    tmp = path.with_name(f".{path.name}.invlab-tmp{path.suffix}")
    if arr.dtype == np.uint16:
        if path.suffix.lower() != ".png":
            raise UnsupportedImageError("16-bit output needs a .png file name")
        import imagecodecs

        tmp.write_bytes(imagecodecs.png_encode(arr))
    else:
        Image.fromarray(arr).save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    tmp.replace(path)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H,W,3) uint8 -> (1,3,H,W) float32 in [0,1]."""
    arr = np.ascontiguousarray(rgb)
    if not arr.flags.writeable:  # e.g. np.asarray of a PIL image: torch warns about sharing read-only memory
        arr = arr.copy()
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1,3,H,W) float in [0,1] -> (H,W,3) uint8, rounding to nearest."""
    return x.detach().clamp(0, 1).mul(255.0).round().to(torch.uint8)[0].permute(1, 2, 0).cpu().numpy()


#: how a model pads an image to its multiple: "replicate" (the last row and column repeated, right and bottom;
#: invlab's models) or "zeros-centred" (zeros around the image, centred; the official evaluation code's)
PAD_MODES = ("replicate", "zeros-centred")


def _pads(height: int, width: int, multiple: int, mode: str) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding of a ``height`` x ``width`` image."""
    if mode not in PAD_MODES:
        raise ValueError(f"pad mode must be one of {PAD_MODES}, got {mode!r}")
    ph, pw = (-height) % multiple, (-width) % multiple
    if mode == "zeros-centred":
        return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2
    return 0, pw, 0, ph


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "replicate") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad so that H and W are multiples of ``multiple`` (``mode``: one of :data:`PAD_MODES`); return the pad."""
    h, w = x.shape[-2:]
    left, right, top, bottom = _pads(h, w, multiple, mode)
    if not (left or right or top or bottom):
        return x, (0, 0)
    # replicate (unlike reflect) works for any pad size, a 1x1 image included
    padded = F.pad(x, (left, right, top, bottom), mode="replicate") if mode == "replicate" else \
        F.pad(x, (left, right, top, bottom))
    return padded, (top + bottom, left + right)


def crop(x: torch.Tensor, height: int, width: int, multiple: int = 1, mode: str = "replicate") -> torch.Tensor:
    """The ``height`` x ``width`` image inside ``x``, as :func:`pad_to_multiple` padded it (``multiple``, ``mode``)."""
    left, _, top, _ = _pads(height, width, multiple, mode)
    return x[..., top : top + height, left : left + width]
