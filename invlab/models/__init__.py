"""Compression models. Importing this package registers every model by name."""

from invlab.models import tiny  # noqa: F401
from invlab.models.base import InvlabModel, count_parameters
from invlab.models.registry import create_model, get_spec, list_models, register_model

__all__ = ["InvlabModel", "count_parameters", "create_model", "get_spec", "list_models", "register_model"]
