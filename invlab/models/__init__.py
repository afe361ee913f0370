"""Compression models, registered by name.

Importing this package is cheap: the registry answers ``list_models`` / ``get_spec`` from its declared table
and imports a model's module (and torch) only when the model is built. ``InvlabModel``, ``count_parameters``
and the model modules (``invlab.models.msinn``, ...) are loaded on first access.
"""

import importlib as _importlib

from invlab.models.registry import create_model, get_spec, list_models, register_model

_LAZY = {"InvlabModel": "invlab.models.base", "count_parameters": "invlab.models.base"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name]), name)
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["InvlabModel", "count_parameters", "create_model", "get_spec", "list_models", "register_model"]
