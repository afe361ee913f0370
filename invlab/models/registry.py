"""The registry of named models (``msinn-mini``, ``invcompress-mini``, ...): what each model *is*, declared.

Every subpackage of :mod:`invlab.models` is a model family. Its ``__init__.py`` is plain data — a ``MODELS``
tuple of :class:`ModelSpec`, no torch — and its other modules hold the networks. The registry discovers
the families (``pkgutil``, no list kept by hand) and answers every question a tool asks — rate kind and rate
points, λs, padding, published curve, context — from the specs, without building a model or importing torch.
A model is built only by :func:`create_model`, which imports the factory the spec names.

Adding a model means a spec in its family's ``MODELS`` (or a new family package) and its tests: the contract
test (``tests/test_model_contract.py``) builds every registered model and checks it against its spec.
A user's own model registers with :func:`register_model`.
"""

from __future__ import annotations

import importlib
import pkgutil
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from invlab.errors import UnknownModelError
from invlab.rates import RateSpace, anchor_space, weight_index_space

if TYPE_CHECKING:
    from invlab.models.base import InvlabModel

#: the λ of each weight file of a fixed-rate family trained with the common recipe (one λ trained, the others
#: fine-tuned from it)
FIXED_RATE_LAMBDAS = (0.0035, 0.0067, 0.0130, 0.0250, 0.0483)


@dataclass(frozen=True)
class ModelSpec:
    """What a registered model is, as the tools need it.

    ``lambdas``: the λ of each rate point — the anchors of a variable-rate model (rate ``i`` is λ_i, fractional
    rates interpolate), or the λ of each weight file ``NAME-q{i}.pt`` of a fixed-rate family.
    ``published``: the key of the paper's Kodak curve in :data:`invlab.eval.anchors.KODAK_ANCHORS`, with
    ``{anchors}`` replaced by the model's anchor count (MSINN-VRLIC published 8- and 12-anchor models).
    ``ablation_of``: the model this one ablates (a paper's ablation study, in direction), else None.
    """

    name: str
    family: str
    description: str
    factory: str  # "package.module:function", imported by create_model only
    variable_rate: bool
    lambdas: tuple[float, ...]
    pad_multiple: int  # the model pads H and W to a multiple of this
    published: str | None = None
    context: str | None = None  # the entropy-context path, said next to every number the model produces
    ablation_of: str | None = None  # an ablation: this model less one part (its results are not held to targets)

    @property
    def rate_kind(self) -> str:
        return "variable" if self.variable_rate else "fixed"

    def rate_space(self, weight_indices: list[int] | None = None) -> RateSpace:
        """What ``rate`` means: an anchor index in [0, A-1] (variable rate) or one of ``weight_indices``
        (a fixed-rate family's shipped weight files; None: one set of weights, index 0)."""
        if self.variable_rate:
            return anchor_space(len(self.lambdas))
        return weight_index_space(weight_indices or [0])

    def published_curve(self, anchors: int | None = None) -> str | None:
        if self.published is None:
            return None
        return self.published.format(anchors=anchors if anchors is not None else len(self.lambdas))


_USER_SPECS: dict[str, ModelSpec] = {}
_USER_FACTORIES: dict[str, Callable[..., InvlabModel]] = {}


@cache
def _discovered() -> dict[str, ModelSpec]:
    """Every ``MODELS`` spec of every family package under :mod:`invlab.models` (imports only the specs)."""
    import invlab.models as package

    specs: dict[str, ModelSpec] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.ispkg:
            continue
        family = importlib.import_module(f"{package.__name__}.{info.name}")
        for spec in getattr(family, "MODELS", ()):
            if spec.name in specs:
                raise ValueError(f"model {spec.name!r} declared twice")
            specs[spec.name] = spec
    return specs


def _specs() -> dict[str, ModelSpec]:
    return {**_discovered(), **_USER_SPECS}


def register_model(spec: ModelSpec, factory: Callable[..., InvlabModel]) -> None:
    """Register a model from outside invlab (``spec.factory`` is then informational)."""
    if spec.name in _specs():
        raise ValueError(f"model {spec.name!r} registered twice")
    _USER_SPECS[spec.name] = spec
    _USER_FACTORIES[spec.name] = factory


def _unknown(name: str) -> UnknownModelError:
    shown = name if len(name) <= 64 else f"{name[:60]}..."
    return UnknownModelError(f"unknown model {shown!r}; registered: {', '.join(list_models())}")


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model (imports no model module)."""
    try:
        return _specs()[name]
    except KeyError:
        raise _unknown(name) from None


def factory(name: str) -> Callable[..., InvlabModel]:
    """The function that builds ``name`` (imports its module, and torch)."""
    if name in _USER_FACTORIES:
        return _USER_FACTORIES[name]
    module, function = get_spec(name).factory.split(":")
    return getattr(importlib.import_module(module), function)


def model_class(name: str) -> type[InvlabModel]:
    """The class ``name``'s factory builds (its return annotation): a class fact without building the model."""
    cls = typing.get_type_hints(factory(name)).get("return")
    if not isinstance(cls, type):
        raise TypeError(f"the factory of {name!r} does not say which class it builds")
    return cls


def create_model(name: str, **overrides) -> InvlabModel:
    """Build a registered model (untrained, deterministic init; see :func:`invlab.weights.load_model`)."""
    model = factory(name)(**overrides)
    model.registry_name = name
    return model


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_specs())


def is_model(name: str) -> bool:
    return name in _specs()


def lazy_attribute(package: str, name: str, modules: tuple[str, ...]):
    """Module ``__getattr__`` of a family package: ``name`` from the first of its ``modules`` that has it.

    So ``from invlab.models.msinn import MSINNVRLIC`` works while importing the package stays cheap.
    """
    if not name.startswith("__"):
        for module in modules:
            loaded = importlib.import_module(f"{package}.{module}")
            if hasattr(loaded, name):
                return getattr(loaded, name)
    raise AttributeError(f"module {package!r} has no attribute {name!r}")
