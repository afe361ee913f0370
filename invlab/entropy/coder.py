"""The coder protocol: a model's coding order is written once and walked in three modes.

A model's walk visits its latents in one fixed order (MSINN: y5 ... y1, anchors then non-anchors; the ANF
family: coarse level to fine, hyper-latent then latent). It does not know which mode it runs in: it calls
the coder it is given, and the three modes differ only in that coder.

- **likelihood** (training / estimation): each call gets the latent and returns its quantised value (in
  training as the entropy model quantises there, additive noise or straight-through rounding; rounding in
  eval); ``finish()`` returns the likelihoods by name (the rate term).
- **encode**: each call gets the latent, sends its rounded symbols to rANS and returns the rounded value;
  ``finish()`` returns the strings.
- **decode**: each call gets ``None`` in place of the latent and returns the symbols read back from the
  strings; ``finish()`` checks that the strings were used up exactly.

In eval and when coding, every call returns what the decoder has at that point, so whatever the walk computes
next (contexts, conditioning, synthesis) is the same in all three modes, and an eval-mode likelihood walk
reconstructs what the decoder will. The decoder must decode in the same calls as the encoder encoded
(:mod:`invlab.entropy.rans`).

What a call takes depends on the entropy model, so each family of coders adds its verbs to :class:`Coder`:

- :class:`~invlab.entropy.residual.ResidualCoder`, ``code(key, y, scale, mean, gain, positions)``: a gained
  residual under a scale-table Gaussian (MSINN-VRLIC's slices);
- :class:`~invlab.entropy.mixture.MixtureLevelCoder`, ``hyper`` / ``latent`` / ``skip``: a factorised
  hyper-latent, then a Gaussian-mixture latent, optionally masked or with a causal context (the ANF family).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


class CodingMode(enum.Enum):
    """The three modes of a coding walk."""

    LIKELIHOOD = "likelihood"  # training / estimation: no bits, likelihoods
    ENCODE = "encode"  # latents -> rANS strings
    DECODE = "decode"  # rANS strings -> latents


@runtime_checkable
class Coder(Protocol):
    """What every coder a walk plugs in has: its mode, and :meth:`finish`, called once after the walk."""

    mode: CodingMode

    def finish(self) -> dict[str, torch.Tensor] | list[bytes] | None:
        """Likelihoods by name (likelihood), the strings (encode), or ``None`` after checking that every
        string was consumed exactly (decode)."""
        ...
