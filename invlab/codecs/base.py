"""The one interface every codec offers, learned or classical.

A codec turns an 8-bit RGB image (H, W, 3) and a rate setting into bytes, and bytes back into an
image. The RD harness, the re-encoding study and the widgets use only this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass
class EncodeResult:
    data: bytes
    rate: float

    def bpp(self, height: int, width: int) -> float:
        return 8.0 * len(self.data) / (height * width)


class Codec(ABC):
    """Image + rate setting -> bytes; bytes -> image.

    ``rates`` lists the settings an RD sweep visits by default, ordered from low to high bitrate.
    ``rate_label`` names the knob (``"quality"``, ``"qp"``, ``"rate index"``, ...). A higher ``rate``
    value must mean more bits, except where ``higher_is_fewer_bits`` is set (QP-like knobs).
    """

    name: str = "codec"
    rate_label: str = "rate"
    rates: tuple[float, ...] = ()
    higher_is_fewer_bits: bool = False

    @abstractmethod
    def encode(self, rgb: np.ndarray, rate: float) -> bytes:
        """Compress an (H, W, 3) uint8 RGB image at ``rate``."""

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Decompress to an (H, W, 3) uint8 RGB image."""

    def roundtrip(self, rgb: np.ndarray, rate: float) -> tuple[bytes, np.ndarray]:
        data = self.encode(rgb, rate)
        return data, self.decode(data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
