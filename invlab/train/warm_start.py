"""Warm starts across related architectures: a model that adds a part to another starts from its weights.

``anfic-mini`` is ``anfic-mini-noctx`` plus a causal context whose features enter the mixture head after the
hyper parameters (``head(cat([params, context]))``). :func:`load_partial` copies every tensor whose name and
shape match, and *widens* a weight whose input channels grew (all else equal; a convolution's dimension 1, a transposed
convolution's dimension 0): the old
weights fill the first input channels and the new ones start at zero, so the new inputs contribute nothing at
first and the warm ``anfic-mini`` computes what the source computed (``tests/test_warm_start.py``).
A layer whose *output* channels grew as well (the same model at a greater width, e.g. msinn-mini-12 with wider
conditioners and context networks) keeps its old filters in its first outputs and a fresh initialisation for the new
ones; as the next layer's new inputs start at zero, the wider network still computes what the narrow one computed
(the new features only start to count as training moves those zeros).
``msanfic-mini`` takes the ANF steps and the finest level's prior this way, but its split network, coarser levels
and prior activations differ, so it starts near the source, not equal to it. Everything else keeps its fresh
initialisation and is reported, so a run never starts from a silently half-loaded model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class WarmStartReport:
    """What :func:`load_partial` did, by tensor name."""

    copied: list[str] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)  # input channels grew: old weights first, zeros after
    grown: list[str] = field(default_factory=list)  # output channels grew (inputs too, maybe): old first, fresh after
    fresh: list[str] = field(default_factory=list)  # in the model, not usable from the source: initialised afresh
    unused: list[str] = field(default_factory=list)  # in the source, not in the model

    def summary(self) -> str:
        return (f"warm start: {len(self.copied)} tensors copied, {len(self.widened)} widened "
                f"({', '.join(self.widened) or 'none'}), {len(self.grown)} grown, {len(self.fresh)} fresh "
                f"({', '.join(self.fresh) or 'none'}), {len(self.unused)} unused")


def _input_dim(model: nn.Module, name: str) -> int:
    """The dimension of a weight that indexes its layer's input channels: 0 for a transposed convolution
    (weights in x out x k x k), 1 for a convolution or linear layer (out x in ...)."""
    owner = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    return 0 if isinstance(owner, nn.modules.conv._ConvTransposeNd) else 1


def _widens(old: torch.Tensor, new: torch.Tensor, dim: int) -> bool:
    """Whether ``new`` is ``old`` with more input channels (dimension ``dim``), every other dimension equal."""
    if old.dim() != new.dim() or old.dim() < 2 or old.shape[dim] >= new.shape[dim]:
        return False
    return all(a == b for i, (a, b) in enumerate(zip(old.shape, new.shape, strict=True)) if i != dim)


def _grows(old: torch.Tensor, new: torch.Tensor, dim: int) -> bool:
    """Whether ``new`` is ``old`` with more output channels (and perhaps more inputs, dimension ``dim``), else equal."""
    output = 1 - dim if new.dim() >= 2 else 0
    if old.dim() != new.dim() or old.shape[output] >= new.shape[output]:
        return False
    return all(a == b or (i in (dim, output) and a < b)
               for i, (a, b) in enumerate(zip(old.shape, new.shape, strict=True)))


def load_partial(model: nn.Module, state: dict[str, torch.Tensor], *,
                 rebuilt_buffers: tuple[str, ...] = ("_quantized_cdf", "_cdf_length", "_offset", "scale_table"),
                 ) -> WarmStartReport:
    """Load what fits of ``state`` into ``model`` (see the module docstring); returns what was done.

    Buffers named in ``rebuilt_buffers`` (entropy-coder tables, rebuilt by ``update()`` before export) are taken
    when their shapes match and otherwise left fresh without counting as fresh. Raises ``ValueError`` when
    nothing of the model's parameters could be taken (the wrong source file).
    """
    report = WarmStartReport()
    target = model.state_dict()
    merged = dict(target)
    for name, new in target.items():
        old = state.get(name)
        if old is None or not torch.is_tensor(old):
            report.fresh.append(name)
        elif old.shape == new.shape:
            merged[name] = old.to(new.dtype)
            report.copied.append(name)
        elif new.is_floating_point() and name.endswith("weight") and _widens(old, new, dim := _input_dim(model, name)):
            wide = torch.zeros_like(new)
            wide.narrow(dim, 0, old.shape[dim]).copy_(old.to(new.dtype))
            merged[name] = wide
            report.widened.append(name)
        elif new.is_floating_point() and _grows(old, new, dim := _input_dim(model, name)):
            grown = new.clone()  # the fresh initialisation for the new outputs
            if new.dim() >= 2 and old.shape[dim] < new.shape[dim]:
                grown.narrow(dim, old.shape[dim], new.shape[dim] - old.shape[dim]).zero_()  # new inputs: no effect
            corner = grown
            for i, size in enumerate(old.shape):
                corner = corner.narrow(i, 0, size)
            corner.copy_(old.to(new.dtype))
            merged[name] = grown
            report.grown.append(name)
        elif not name.endswith(rebuilt_buffers):
            report.fresh.append(name)
    report.unused = [name for name in state if name not in target]
    params = {name for name, _ in model.named_parameters()}
    if not params & (set(report.copied) | set(report.widened) | set(report.grown)):
        raise ValueError("the warm-start weights share no parameter with this model (another architecture?)")
    model.load_state_dict(merged)
    return report
