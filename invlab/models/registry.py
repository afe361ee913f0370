"""A registry of named model configurations (``msinn-mini``, ``invcompress-mini``, ...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from invlab.errors import UnknownModelError
from invlab.models.base import InvlabModel


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Callable[..., InvlabModel]
    family: str
    description: str


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, family: str, description: str = ""):
    """Decorator: register ``factory(**overrides) -> InvlabModel`` under ``name``."""

    def wrap(factory: Callable[..., InvlabModel]) -> Callable[..., InvlabModel]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelSpec(name, factory, family, description or (factory.__doc__ or "").strip())
        return factory

    return wrap


def _ensure_loaded() -> None:
    import invlab.models  # noqa: F401  (imports every model module, which registers them)


def create_model(name: str, **overrides) -> InvlabModel:
    """Build a registered model (untrained, deterministic init; see :func:`invlab.weights.load_model`)."""
    _ensure_loaded()
    if name not in _REGISTRY:
        raise UnknownModelError(f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    model = _REGISTRY[name].factory(**overrides)
    model.registry_name = name
    return model


def get_spec(name: str) -> ModelSpec:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise UnknownModelError(f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def list_models() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)
