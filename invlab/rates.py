"""What ``rate`` means for a codec, decided once: a :class:`RateSpace` parses and validates a user's rate.

``rate`` is a quality or QP for a classical codec, a weight-file index for a fixed-rate learned family and a
real number (an anchor index, fractional between anchors) for a variable-rate model. Each codec has one
:class:`RateSpace`; the edges (CLI, :class:`~invlab.codecs.learned.LearnedCodec`, ``invlab evaluate``, the
widgets) call :meth:`RateSpace.check` on what a user gives, and the layers inside trust the value they get.
The file header stores the checked rate. This module imports neither torch nor a codec library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from invlab.errors import InvlabError


class RateError(InvlabError, ValueError):
    """A rate that the codec does not offer (the message names the valid settings)."""


def _fmt(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class RateSpace:
    """The rate settings of one codec.

    ``sweep`` lists the settings an RD sweep visits by default, ordered from fewest to most bits. ``choices``,
    where set, are the only valid values (a fixed-rate family's shipped weight indices); otherwise every value
    in [``low``, ``high``] is valid (whole numbers only when ``integer``).
    """

    label: str  # what the number is to the user: "quality", "QP", "rate", "weight index", ...
    low: float
    high: float
    default: float
    integer: bool = False
    note: str = ""  # e.g. "higher = more bits"
    sweep: tuple[float, ...] = ()
    choices: tuple[float, ...] | None = None

    @property
    def continuous(self) -> bool:
        return not self.integer and self.choices is None

    def describe(self) -> str:
        """The valid settings in words, e.g. ``"a whole number from 1 to 100 (higher = more bits)"``."""
        if self.choices is not None:
            values = [_fmt(v) for v in self.choices]
            words = values[0] if len(values) == 1 else "one of " + ", ".join(values)
        else:
            kind = "a whole number" if self.integer else "a number"
            words = f"{kind} from {_fmt(self.low)} to {_fmt(self.high)}"
        return f"{words} ({self.note})" if self.note else words

    def contains(self, rate: float) -> bool:
        if not isinstance(rate, (int, float)) or not math.isfinite(rate):
            return False
        if self.choices is not None:
            return float(rate) in self.choices
        return self.low <= rate <= self.high and (not self.integer or float(rate).is_integer())

    def check(self, rate: float | None, codec: str = "") -> float:
        """``rate`` as a float (None -> :attr:`default`); :class:`RateError` naming the valid settings otherwise."""
        if rate is None:
            return float(self.default)
        try:
            value = float(rate)
        except (TypeError, ValueError):
            value = math.nan
        if not self.contains(value):
            who = f"{codec}: " if codec else ""
            raise RateError(f"{who}the rate is its {self.label}, {self.describe()}; got {rate!r}")
        return value

    def check_all(self, rates: Sequence[float], codec: str = "") -> list[float]:
        """Each rate checked, rounded to 6 decimals, in the order given, each once."""
        return list(dict.fromkeys(round(self.check(r, codec), 6) for r in rates))

    def with_midpoints(self, fractional: int = 1) -> list[float]:
        """:attr:`sweep` plus ``fractional`` evenly spaced rates between neighbours (continuous spaces only)."""
        points = list(self.sweep)
        if not self.continuous or fractional <= 0 or len(points) < 2:
            return points
        rates = [points[0]]
        for lo, hi in zip(points, points[1:], strict=False):
            rates += [lo + (hi - lo) * k / (fractional + 1) for k in range(1, fractional + 1)] + [hi]
        return [round(r, 6) for r in rates]


def anchor_space(anchors: int) -> RateSpace:
    """A variable-rate model with ``anchors`` trained λ: any real rate in [0, anchors - 1]."""
    top = float(anchors - 1)
    return RateSpace("rate", 0.0, top, top / 2, note="anchor index, continuous; higher = more bits",
                     sweep=tuple(float(i) for i in range(anchors)))


def weight_index_space(indices: Sequence[int]) -> RateSpace:
    """A fixed-rate family: the rate picks one of its weight files ``NAME-q{i}.pt`` (``indices``)."""
    values = tuple(float(i) for i in sorted(indices)) or (0.0,)
    where = "one set of weights" if len(values) == 1 else "one weight file per index, higher = more bits"
    return RateSpace("weight index", values[0], values[-1], values[0], integer=True, note=where,
                     sweep=values, choices=values)
