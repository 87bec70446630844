"""Trainer models by name: `create("dccdn3", width=0.5)`; `MODELS.names()` lists them."""

from . import ccdd, cdcn, dccdn, lgsc, pyramid, segdec  # noqa: F401  (registers the models)
from .base import MODELS, FasModel, create

__all__ = ["MODELS", "FasModel", "create"]
