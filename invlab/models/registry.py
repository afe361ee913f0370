"""A registry of named model configurations (``msinn-mini``, ``invcompress-mini``, ...).

Two layers, so that listing models costs nothing:

- :data:`DECLARED`, a plain table: every model invlab ships, with the module that defines it, its family, a
  one-line description and whether it is variable-rate. :func:`list_models` and :func:`get_spec` answer from it
  without importing torch or any model module.
- :func:`register_model`, the decorator in each model module, which attaches the factory. A model module is
  imported the first time one of its factories is needed (:func:`create_model`, ``spec.factory``).

A model registered by a module that the table does not name (e.g. a user's own) works as before: it is known
once its module is imported. ``tests/test_cli.py`` checks that the table and the decorators agree.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

from invlab.errors import UnknownModelError

if TYPE_CHECKING:
    from invlab.models.base import InvlabModel


class Declared(NamedTuple):
    module: str  # under invlab.models; importing it registers the model
    family: str
    variable_rate: bool  # one set of weights for a continuous rate range (else one weight file per rate index)
    description: str


#: every model invlab ships (``invlab models`` prints this table; descriptions in the repo's own words)
DECLARED: dict[str, Declared] = {
    "tiny-flow": Declared("tiny", "tiny", True, "2-level invertible flow + factorised prior (plumbing demo)"),
    "msinn": Declared("msinn", "msinn", True, "MSINN-VRLIC, paper size (≈12.3 M), continuous rate"),
    "msinn-mini": Declared("msinn", "msinn", True,
                           "MSINN-VRLIC mini (≈2.75 M; four depth-2 scales, small post-net), continuous rate"),
    "invcompress": Declared("invcompress", "invcompress", False,
                            "InvCompress, paper size (M=N=128 for λ<=0.0075, else 192; 5x5 AR context)"),
    "invcompress-mini": Declared("invcompress", "invcompress", False,
                                 "InvCompress-mini (3.8 M params, M=96; 5x5 AR context, serial)"),
    "invcompress-mini-cb": Declared("invcompress", "invcompress", False,
                                    "InvCompress-mini, checkerboard context (fast decode; not the paper's model)"),
    "anfic": Declared("anf.anfic", "anfic", False,
                      "ANFIC, paper size (22.7 M; F=128, M=320; GMM + 5x5 AR context, serial)"),
    "anfic-mini": Declared("anf.anfic", "anfic", False, "ANFIC-mini (3.0 M; F=64, M=96; GMM + 5x5 AR context, serial)"),
    "anfic-mini-noctx": Declared("anf.anfic", "anfic", False,
                                 "ANFIC-mini without context (≈2.5 M; hyperprior + GMM): the single-scale baseline"),
    "manfic-mini": Declared("anf.manfic", "manfic", False,
                            "M-ANFIC-mini (≈4.1 M; LSUnits in both steps, 2 levels, 32 px quadtree, RDO)"),
    "msanfic-mini": Declared("anf.manfic", "manfic", False,
                             "MS-ANFIC-mini (≈3.7 M; latent split network, 3 levels, 64 px quadtree, RDO)"),
    "bmshj2018-hyperprior-mini": Declared(
        "baselines", "baseline", False,
        "CompressAI scale hyperprior, N=96 M=128 (2.76 M), fixed-rate autoencoder baseline"),
    "mbt2018-mean-mini": Declared(
        "baselines", "baseline", False,
        "CompressAI mean-scale hyperprior, N=96 M=128 (3.55 M), fixed-rate autoencoder baseline"),
}


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about a model. ``factory`` imports the model's module on first use."""

    name: str
    family: str
    description: str
    module: str  # full module name
    variable_rate: bool | None = None  # None: not declared (known once the model is built)

    @property
    def factory(self) -> Callable[..., InvlabModel]:
        return _factory(self.name)


_FACTORIES: dict[str, Callable[..., InvlabModel]] = {}
_REGISTERED_FAMILY: dict[str, str] = {}  # what each decorator said (tests compare it with DECLARED)
_UNDECLARED: dict[str, ModelSpec] = {}  # registered by a module, absent from DECLARED


def register_model(name: str, family: str, description: str = ""):
    """Decorator: register ``factory(**overrides) -> InvlabModel`` under ``name``.

    For a model in :data:`DECLARED` the table's family and description are the ones shown.
    """

    def wrap(factory: Callable[..., InvlabModel]) -> Callable[..., InvlabModel]:
        if name in _FACTORIES:
            raise ValueError(f"model {name!r} registered twice")
        _FACTORIES[name] = factory
        _REGISTERED_FAMILY[name] = family
        if name not in DECLARED:
            _UNDECLARED[name] = ModelSpec(name, family, description or (factory.__doc__ or "").strip(),
                                          factory.__module__)
        return factory

    return wrap


@cache
def _module_exists(module: str) -> bool:
    """True when ``invlab.models.<module>`` is there (found without importing it)."""
    return importlib.util.find_spec(f"invlab.models.{module}") is not None


def _import(module: str) -> None:
    try:
        importlib.import_module(f"invlab.models.{module}")
    except ModuleNotFoundError as err:  # a model family not built yet
        if err.name != f"invlab.models.{module}":
            raise


def _ensure_loaded() -> None:
    """Import every declared model module (registers any model the table does not know)."""
    for module in sorted({d.module for d in DECLARED.values()}):
        _import(module)


def _declared(name: str) -> Declared | None:
    entry = DECLARED.get(name)
    return entry if entry is not None and _module_exists(entry.module) else None


def _unknown(name: str) -> UnknownModelError:
    return UnknownModelError(f"unknown model {name!r}; registered: {', '.join(list_models())}")


def _factory(name: str) -> Callable[..., InvlabModel]:
    if name not in _FACTORIES:
        entry = _declared(name)
        if entry is not None:
            _import(entry.module)
        else:
            _ensure_loaded()  # maybe a model module registers it without a DECLARED entry
    if name not in _FACTORIES:
        raise _unknown(name)
    return _FACTORIES[name]


def create_model(name: str, **overrides) -> InvlabModel:
    """Build a registered model (untrained, deterministic init; see :func:`invlab.weights.load_model`)."""
    model = _factory(name)(**overrides)
    model.registry_name = name
    return model


def get_spec(name: str) -> ModelSpec:
    """Name, family, description (and rate kind) of a model; imports no model module for a declared one."""
    entry = _declared(name)
    if entry is not None:
        return ModelSpec(name, entry.family, entry.description, f"invlab.models.{entry.module}", entry.variable_rate)
    if name not in _UNDECLARED:
        _ensure_loaded()
    if name not in _UNDECLARED:
        raise _unknown(name)
    return _UNDECLARED[name]


def list_models() -> list[str]:
    """Names of the declared models (whose module exists) and of any other registered one, sorted."""
    return sorted({n for n in DECLARED if _declared(n) is not None} | set(_UNDECLARED))


def is_model(name: str) -> bool:
    """True for a registered model name (cheap for declared models)."""
    return _declared(name) is not None or name in _UNDECLARED
