"""ANFIC (Ho et al., IEEE OJCAS 2021): the official checkpoints (dororojames/ANFIC) as ``anfic`` weights.

The released models are one configuration of the official code, ``-UC -C GaussianMixtureModel -NF 320 -VNFL 128
-QE -DM`` (5x5 context, 3-Gaussian mixture, M = 320, F = 128, QE, additive steps); it is invlab's ``anfic`` at paper
size with ``hyper_filters=(3, 3, 3)``. Other configurations are refused.

=================================================  ===========================================================
official                                           invlab
=================================================  ===========================================================
``analysis{i}.{j}`` (Conv, GDN: j odd)             ``steps.{i}.analysis.{j}``
``synthesis{i}.{j}`` (TConv, IGDN: j even)         ``steps.{i}.synthesis.{j - 1}``
GDN ``weight`` / ``bias``                          GDN ``gamma`` / ``beta``
``hyper_analysis.{j}``                             ``priors.0.h_a.{j}``
``hyper_synthesis.{0,2}`` / ``.4``                 ``priors.0.h_s.{0,2}`` / ``priors.0.h_s_last``
``entropy_bottleneck.factorizer.l{i}.weight``,     ``priors.0.entropy_bottleneck.matrices.{i}``, ``biases.{i}``,
``.bias``, ``._factor``                            ``factors.{i}``
``entropy_bottleneck.quantiles``                   ``priors.0.entropy_bottleneck.quantiles``
``conditional_bottleneck.mask``                    ``priors.0.context``
``conditional_bottleneck.reparam.{j}``             ``priors.0.head.net.{j}``
``QE.conv1``, ``QE.resblock.{i}.{j}``,             ``qe.head``, ``qe.blocks.{i}.body.{j}``, ``qe.mid``, ``qe.tail``
``QE.conv2``, ``QE.conv3``
=================================================  ===========================================================

What else differs, and how it is folded into the weights (exactly, up to float rounding):

- every official convolution outside the context model and the mixture head is a "signal" convolution: its
  kernel is stored in the real-DFT domain, ``(out, in, k·k)`` (transposed: ``(in, out, k·k)``), and the spatial
  kernel is ``Aᵀ P A`` with ``P`` the stored k x k block and ``A`` the orthonormal real DFT of length k (rows: DC,
  then the cosine and sine of each frequency, FFTPACK's order; :func:`rdft_matrix`), computed as the official
  code computes it (one float32 product with ``A ⊗ A``: the 2-D matrix its layers build when constructed and
  then reuse by tap count); the layouts are PyTorch's own, so no flip;
- GDN: the official effective β is ``max(b, 2⁻¹⁸)² - 2⁻³⁶ + 1e-5`` (its eps); CompressAI's is
  ``max(s, √(1e-6 + 2⁻³⁶))² - 2⁻³⁶``, so ``s = √(max(b, 2⁻¹⁸)² + 1e-5)``. γ has the same parametrisation on both
  sides (``max(w, 2⁻¹⁸)² - 2⁻³⁶``) and is copied;
- the mixture head reads ``cat(context, hyper parameters)`` there, ``cat(hyper parameters, context)`` here (the
  first 1x1 convolution's input halves swapped), and writes (means, scales, logits) there, (scales, means,
  logits) here (the last convolution's output blocks reordered; within a block both are component-major);
- the hyper-latent's factorised density: the official quantiles are (3, C), CompressAI's (C, 1, 3). Its aux-loss
  target stays CompressAI's (tail mass 1e-9; the official 2⁻⁸), which changes no likelihood, only ``update()``'s
  CDF range (values outside it are still coded, by CompressAI's escape);
- the context's (5, 5) type-A mask is checked and dropped (invlab's is built in); CompressAI's constants (GDN
  pedestals and bounds, the likelihood and scale bounds, 1e-9 and 0.11 as the official code's) stay invlab's.

The official evaluation pads as invlab's ``anfic`` does (the last row and column replicated, right and bottom,
to a multiple of 64), so no padding option is needed.
"""

from __future__ import annotations

import math
import re

import torch

from invlab.errors import WeightFileError
from invlab.models import create_model
from invlab.official.checkpoint import Converted, take_all

#: the configuration of the released checkpoints (ANFIC_codec.py's flags)
RELEASED_FLAGS = "-UC -C GaussianMixtureModel -NF 320 -VNFL 128 -QE -DM"
#: what the released configuration's tensors say about it: official name -> (shape, what a difference means)
RELEASED_SHAPES = {
    "analysis0.0.weight": ((128, 3, 25), "128 filters (-VNFL 128), 5x5 kernels"),
    "analysis0.6.weight": ((320, 128, 25), "320 latent channels (-NF 320), additive steps (-DM)"),
    "synthesis0.7.weight": ((128, 3, 25), "additive steps (-DM)"),
    "hyper_analysis.4.weight": ((192, 192, 25), "192 hyper-latent channels"),
    "conditional_bottleneck.mask.weight": ((640, 320, 5, 5), "the 5x5 context (-UC)"),
    "conditional_bottleneck.reparam.4.weight": ((2880, 640, 1, 1), "a 3-Gaussian mixture (-C GaussianMixtureModel)"),
    "QE.conv1.weight": ((64, 3, 9), "the QE post-filter (-QE)"),
    "entropy_bottleneck.factorizer.l3.weight": ((192, 1, 3), "a factorised density with filters (3, 3, 3)"),
}
#: flow steps of the released models (``-L 2``): a third step's tensors are refused
STEPS = 2
#: the official GDN's parametrisation: reparametrisation offset and the eps added to β
GDN_OFFSET = 2.0**-18
GDN_EPS = 1e-5
#: invlab constants with no official tensor of their own
_OWN = ("_reparam.pedestal", "_reparam.lower_bound.bound", "likelihood_lower_bound.bound", "lower_bound_scale.bound",
        "gaussian_mixture.scale_bound", "context.mask", "entropy_bottleneck.target")
_EB = {"weight": "matrices", "bias": "biases", "_factor": "factors"}
_QE = {"conv1": "head", "conv2": "mid", "conv3": "tail"}
#: official prefix -> invlab prefix of the hyperprior, the context model and the mixture head (first match wins)
_PREFIXES = {"hyper_analysis.": "priors.0.h_a.", "hyper_synthesis.4.": "priors.0.h_s_last.",
             "hyper_synthesis.": "priors.0.h_s.", "conditional_bottleneck.mask.": "priors.0.context.",
             "conditional_bottleneck.reparam.": "priors.0.head.net.",
             "entropy_bottleneck.": "priors.0.entropy_bottleneck."}
_CONTEXT_MASK = "conditional_bottleneck.mask._mask"
_HEAD_IN, _HEAD_OUT = "conditional_bottleneck.reparam.0.weight", "conditional_bottleneck.reparam.4."


def _gdn_name(parameter: str) -> str:
    return {"weight": "gamma", "bias": "beta"}[parameter]


def invlab_name(key: str) -> str | None:
    """The invlab name of an official ANFIC tensor (None: not part of the released layout)."""
    if m := re.fullmatch(r"(analysis|synthesis)(\d+)\.(\d+)\.(weight|bias)", key):
        kind, step, index, parameter = m[1], int(m[2]), int(m[3]), m[4]
        if step >= STEPS:
            return None
        gdn = index % 2 == (1 if kind == "analysis" else 0)
        index -= kind == "synthesis"
        return f"steps.{step}.{kind}.{index}.{_gdn_name(parameter) if gdn else parameter}"
    if m := re.fullmatch(r"entropy_bottleneck\.factorizer\.l(\d+)\.(weight|bias|_factor)", key):
        return f"priors.0.entropy_bottleneck.{_EB[m[2]]}.{m[1]}"
    if m := re.fullmatch(r"QE\.(?:(conv\d)|resblock\.(\d+)\.(\d+))\.(weight|bias)", key):
        return f"qe.{_QE.get(m[1], m[1])}.{m[4]}" if m[1] else f"qe.blocks.{m[2]}.body.{m[3]}.{m[4]}"
    old = next((p for p in _PREFIXES if key.startswith(p)), None)
    return None if old is None else _PREFIXES[old] + key.removeprefix(old)


def rdft_matrix(n: int) -> torch.Tensor:
    """The orthonormal real DFT of length ``n`` (float64, n x n): the DC row, then per frequency its cosine and
    (negated) sine rows, the Nyquist cosine last for even ``n`` (FFTPACK's ``rfft`` order, rows scaled to norm 1)."""
    k = torch.arange(n, dtype=torch.float64)
    rows = [torch.full((n,), n**-0.5, dtype=torch.float64)]
    for j in range(1, n // 2 + 1):
        angle = 2 * math.pi * j * k / n
        if 2 * j == n:
            rows.append(torch.cos(angle) * n**-0.5)
        else:
            rows += [torch.cos(angle) * (2 / n) ** 0.5, -torch.sin(angle) * (2 / n) ** 0.5]
    return torch.stack(rows)


def spatial_kernel(fourier: torch.Tensor) -> torch.Tensor:
    """A signal convolution's stored ``(a, b, k·k)`` real-DFT parameter as the ``(a, b, k, k)`` spatial kernel
    ``Aᵀ P A`` (A = :func:`rdft_matrix`): one float32 product with ``A ⊗ A``, as the official code computes it."""
    size = math.isqrt(fourier.shape[-1])
    if size * size != fourier.shape[-1]:
        raise WeightFileError(f"a signal convolution's kernel of {fourier.shape[-1]} taps is not square")
    a = rdft_matrix(size)
    return (fourier.float() @ torch.kron(a, a).float()).reshape(*fourier.shape[:-1], size, size)


def gdn_beta(official_bias: torch.Tensor) -> torch.Tensor:
    """CompressAI's stored β giving the official effective β (its eps included): ``√(max(b, 2⁻¹⁸)² + 1e-5)``."""
    return (official_bias.double().clamp_min(GDN_OFFSET).pow(2) + GDN_EPS).sqrt().float()


def _check_configuration(official: dict[str, torch.Tensor], source: str) -> None:
    """Refuse anything but the released configuration, saying what differs."""
    if "analysis0.0.weight" not in official or "hyper_analysis.0.weight" not in official:
        raise WeightFileError(f"{source}: not an official ANFIC checkpoint (no analysis0 / hyper_analysis)")
    for key, (shape, meaning) in RELEASED_SHAPES.items():
        found = tuple(official[key].shape) if key in official else None
        if found != shape:
            raise WeightFileError(f"{source}: not the released ANFIC configuration ({RELEASED_FLAGS}): {key} is "
                                  f"{'missing' if found is None else found}, the released models have {shape} "
                                  f"({meaning})")
    if any(k.startswith(f"analysis{STEPS}.") for k in official):
        raise WeightFileError(f"{source}: more than {STEPS} flow steps; the released ANFIC has {STEPS} (-L {STEPS})")


def _drop_context_mask(official: dict[str, torch.Tensor], pattern: torch.Tensor, source: str) -> None:
    mask = official.pop(_CONTEXT_MASK, None)
    if mask is None or not torch.equal(mask.float(), pattern.float()):
        raise WeightFileError(f"{source}: {_CONTEXT_MASK} is missing or not the 5x5 type-A (raster-causal) mask")


def _fold(key: str, value: torch.Tensor, template: dict[str, torch.Tensor]) -> torch.Tensor:
    """One official tensor in invlab's parametrisation and layout (see the module docstring)."""
    name = invlab_name(key)
    target = template.get(name) if name else None
    if target is None:
        return value
    if target.dim() == 4 and value.dim() == 3:
        return spatial_kernel(value)
    if name.endswith(".beta"):
        return gdn_beta(value)
    if key == _HEAD_IN:
        context, params = value.chunk(2, dim=1)
        return torch.cat([params, context], dim=1)
    if key.startswith(_HEAD_OUT):
        means, scales, logits = value.chunk(3, dim=0)
        return torch.cat([scales, means, logits], dim=0)
    if key == "entropy_bottleneck.quantiles":
        return value.t().unsqueeze(1).contiguous()
    return value


def convert_anfic(official: dict[str, torch.Tensor], source: str = "checkpoint") -> Converted:
    """An official ANFIC state dict of the released configuration as ``anfic`` weights."""
    _check_configuration(official, source)
    config = {"hyper_filters": [3, 3, 3]}
    template = create_model("anfic", **config).state_dict()
    official = dict(official)
    _drop_context_mask(official, template["priors.0.context.mask"][0, 0], source)
    folded = {k: _fold(k, v, template) for k, v in official.items()}
    state = take_all(folded, {k: v for k, v in template.items() if not k.endswith(_OWN)}, invlab_name, source)
    state.update({k: v for k, v in template.items() if k.endswith(_OWN)})
    notes = [f"the released configuration ({RELEASED_FLAGS}); hyper-latent density with filters (3, 3, 3)",
             "signal convolutions' real-DFT kernels turned into spatial kernels",
             "GDN β: the official eps 1e-5 folded into CompressAI's parametrisation; γ copied",
             "mixture head: input halves (context, hyper) -> (hyper, context); output blocks (means, scales, "
             "logits) -> (scales, means, logits)",
             "images padded as the official evaluation: the last row and column replicated to a multiple of 64 "
             "(invlab's own padding)"]
    return Converted("anfic", config, state, notes)
