"""The one interface every codec offers, learned or classical.

A codec turns an 8-bit RGB image (H, W, 3) and a rate setting into bytes, and bytes back into an
image. The RD harness, the re-encoding study and the widgets use only this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from invlab.rates import RateSpace


@dataclass
class EncodeResult:
    data: bytes
    rate: float

    def bpp(self, height: int, width: int) -> float:
        return 8.0 * len(self.data) / (height * width)


class Codec(ABC):
    """Image + rate setting -> bytes; bytes -> image.

    ``rate_space`` says what ``rate`` means (:class:`~invlab.rates.RateSpace`: label, valid settings, default,
    the settings an RD sweep visits, ordered from low to high bitrate). A higher ``rate`` value must mean more
    bits, except where ``higher_is_fewer_bits`` is set (QP-like knobs). ``encode`` trusts its ``rate``: the
    caller checks a user's value with ``rate_space.check`` first.
    """

    name: str = "codec"
    rate_space: RateSpace = RateSpace("rate", 0.0, 0.0, 0.0, sweep=(0.0,))
    higher_is_fewer_bits: bool = False

    @property
    def rates(self) -> tuple[float, ...]:
        """The settings an RD sweep visits by default."""
        return self.rate_space.sweep

    @property
    def rate_label(self) -> str:
        return self.rate_space.label

    @property
    def label(self) -> str:
        """The name this codec's results go under (a learned codec also says which weights)."""
        return self.name

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
