"""Rate maps: where the bits go. One rate per 16x16 block of the image, for models that take one (``rate_maps``).

A variable-rate model turns one rate into per-channel gains; with a map, each block of the image gets the gains of
its own rate (MSINN: the gains are applied per position, at every latent scale). 16 pixels is the finest block
that every latent scale can follow (y4 and y5 have one position per 16x16 pixels; y1 8x8 positions).

- :meth:`RateMap.from_rois`: a base rate and rectangles with their own rates (``x,y,w,h:rate``, the CLI's ``--roi``);
- :meth:`RateMap.from_picture`: a grey picture, black = the lowest rate, white = the highest (``--rate-map``);
- :func:`forced_levels`: for the multi-scale ANF models (``forced_levels``), the same ROIs name a quadtree level
  (0 = the finest latent, the most bits) for the blocks they touch; the RD search chooses the others;
- in a file the map is a stream of its own: its size, then one byte per block (the rate in steps of
  :data:`STEP`), zlib-compressed; its bytes count in the file's bpp like every other. A uniform map is no map:
  the file is the one-rate file, byte for byte.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from invlab.errors import InvalidHeaderError, InvlabError
from invlab.rates import RateSpace

BLOCK = 16  # pixels per block side
STEP = 0.05  # map rates are multiples of this (the slider's step)
_ROI = re.compile(r"^\s*(\d+),(\d+),(\d+),(\d+):([0-9.]+)\s*$")


class RateMapError(InvlabError):
    """A rate map (or an ROI) that does not fit the image or the model."""


def parse_roi(text: str) -> tuple[int, int, int, int, float]:
    """``"x,y,w,h:rate"`` (pixels, top-left origin) -> (x, y, w, h, rate)."""
    match = _ROI.match(text)
    if not match:
        raise RateMapError(f"an ROI is x,y,w,h:rate (e.g. 100,50,200,120:6), got {text!r}")
    x, y, w, h = (int(v) for v in match.groups()[:4])
    if w <= 0 or h <= 0:
        raise RateMapError(f"an ROI needs a positive width and height, got {text!r}")
    return x, y, w, h, float(match.group(5))


@dataclass(frozen=True)
class RateMap:
    """``rates`` (rows, cols): one rate per ``BLOCK``-pixel block of the image padded to a multiple of ``BLOCK``."""

    rates: np.ndarray

    def __post_init__(self) -> None:
        rates = np.asarray(self.rates, dtype=np.float64)
        if rates.ndim != 2 or 0 in rates.shape or not np.isfinite(rates).all():
            raise RateMapError(f"a rate map is a 2-D array of finite rates, got shape {rates.shape}")
        object.__setattr__(self, "rates", np.round(rates / STEP) * STEP)

    # ------------------------------------------------------------------ making one
    @staticmethod
    def grid(height: int, width: int) -> tuple[int, int]:
        """(rows, cols) of blocks for an image of ``height`` x ``width``."""
        return -(-height // BLOCK), -(-width // BLOCK)

    @classmethod
    def uniform(cls, height: int, width: int, rate: float) -> RateMap:
        return cls(np.full(cls.grid(height, width), float(rate)))

    @classmethod
    def from_rois(cls, height: int, width: int, base: float,
                  rois: list[tuple[int, int, int, int, float]]) -> RateMap:
        """``base`` everywhere, then each ROI's rate on every block it touches (later ROIs win)."""
        return cls.uniform(height, width, base).with_rois(rois, height, width)

    def with_rois(self, rois: list[tuple[int, int, int, int, float]], height: int, width: int) -> RateMap:
        """This map with each ROI ``(x, y, w, h, rate)`` painted over the blocks it touches (later ROIs win)."""
        rates = self.rates.copy()
        for x, y, w, h, rate in rois:
            if x >= width or y >= height:
                raise RateMapError(f"the ROI {x},{y},{w},{h} lies outside the {width}x{height} image")
            rates[y // BLOCK: -(-min(y + h, height) // BLOCK), x // BLOCK: -(-min(x + w, width) // BLOCK)] = rate
        return RateMap(rates)

    @classmethod
    def from_picture(cls, grey: np.ndarray, height: int, width: int, low: float, high: float) -> RateMap:
        """A grey picture of the image's size (H, W) or (H, W, C): each block's mean level, 0 -> ``low``,
        255 -> ``high``."""
        grey = np.asarray(grey, dtype=np.float64)
        grey = grey.mean(axis=2) if grey.ndim == 3 else grey
        if grey.shape != (height, width):
            raise RateMapError(f"the rate-map picture is {grey.shape[1]}x{grey.shape[0]}, the image {width}x{height}")
        rows, cols = cls.grid(height, width)
        padded = np.pad(grey, ((0, rows * BLOCK - height), (0, cols * BLOCK - width)), mode="edge")
        means = padded.reshape(rows, BLOCK, cols, BLOCK).mean(axis=(1, 3))
        return cls(low + (high - low) * means / 255.0)

    # ------------------------------------------------------------------ reading it
    @property
    def uniform_rate(self) -> float | None:
        """The one rate of a uniform map, else None."""
        return float(self.rates.flat[0]) if (self.rates == self.rates.flat[0]).all() else None

    def check(self, space: RateSpace, height: int, width: int, who: str = "") -> None:
        """Refuse a map of another size than the image's grid, or with a rate the model does not take."""
        if self.rates.shape != self.grid(height, width):
            rows, cols = self.grid(height, width)
            raise RateMapError(f"{who}a {width}x{height} image needs a {cols}x{rows} rate map (one rate per "
                               f"{BLOCK}x{BLOCK} block), got {self.rates.shape[1]}x{self.rates.shape[0]}")
        for rate in np.unique(self.rates):
            space.check(float(rate), who.rstrip(": "))

    def summary(self) -> dict:
        """Blocks, the smallest, largest and mean rate, and the share of blocks at each rate (up to 8 rates)."""
        values, counts = np.unique(self.rates, return_counts=True)
        shares = {f"{v:g}": round(float(c) / self.rates.size, 4) for v, c in zip(values, counts, strict=True)}
        return {"blocks": list(self.rates.shape[::-1]), "block": BLOCK, "min": float(values[0]),
                "max": float(values[-1]), "mean": round(float(self.rates.mean()), 4),
                "shares": shares if len(shares) <= 8 else f"{len(shares)} rates"}

    # ------------------------------------------------------------------ in a file
    def to_bytes(self) -> bytes:
        codes = np.round(self.rates / STEP)
        if codes.min() < 0 or codes.max() > 255:
            raise RateMapError(f"map rates must lie in [0, {255 * STEP:g}]")
        rows, cols = self.rates.shape
        return struct.pack("<HH", rows, cols) + zlib.compress(codes.astype(np.uint8).tobytes(), 9)

    @classmethod
    def from_bytes(cls, data: bytes, rows: int, cols: int) -> RateMap:
        """The map stream of a file whose image has ``rows`` x ``cols`` blocks (a damaged one: an error)."""
        if len(data) < 4 or struct.unpack("<HH", data[:4]) != (rows, cols):
            raise InvalidHeaderError(f"the rate-map stream does not hold a {cols}x{rows} map")
        inflater = zlib.decompressobj()
        try:
            codes = inflater.decompress(data[4:], rows * cols + 1)
        except zlib.error as err:
            raise InvalidHeaderError(f"the rate-map stream is damaged: {err}") from None
        if len(codes) != rows * cols or not inflater.eof or inflater.unused_data:
            raise InvalidHeaderError("the rate-map stream does not hold exactly one map")
        return cls(np.frombuffer(codes, np.uint8).reshape(rows, cols).astype(np.float64) * STEP)


def forced_levels(rois: list[tuple[int, int, int, int, float]], height: int, width: int, granularity: int,
                  padded: tuple[int, int], levels: int) -> np.ndarray:
    """(Hb, Wb) quadtree levels for the blocks (``granularity`` px, over the ``padded`` image) the ROIs touch, -1
    elsewhere; an ROI's number is its level here (0 = the finest latent)."""
    grid = np.full((padded[0] // granularity, padded[1] // granularity), -1, dtype=np.int64)
    for x, y, w, h, level in rois:
        if x >= width or y >= height:
            raise RateMapError(f"the ROI {x},{y},{w},{h} lies outside the {width}x{height} image")
        if level != int(level) or not 0 <= level < levels:
            raise RateMapError(f"for this model an ROI's number is a quadtree level, 0 (finest) to {levels - 1}; "
                               f"got {level:g}")
        grid[y // granularity: -(-min(y + h, height) // granularity),
             x // granularity: -(-min(x + w, width) // granularity)] = int(level)
    return grid
