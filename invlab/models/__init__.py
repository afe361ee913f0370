"""Compression models. Importing this package registers every model by name."""

import importlib as _importlib

from invlab.models.base import InvlabModel, count_parameters
from invlab.models.registry import create_model, get_spec, list_models, register_model

# Each module registers its models on import.
_MODEL_MODULES = ("tiny", "msinn", "invcompress", "anfic", "baselines")
for _name in _MODEL_MODULES:
    try:
        _importlib.import_module(f"invlab.models.{_name}")
    except ModuleNotFoundError as _err:  # a model family not built yet
        if _err.name != f"invlab.models.{_name}":
            raise

__all__ = ["InvlabModel", "count_parameters", "create_model", "get_spec", "list_models", "register_model"]
