"""Segmenters by name: faces of a shard in, one region-id map per face out."""

from .base import SEGMENTERS, FaceItem, Segmenter
from . import geometry  # noqa: F401  (registers "geometry")
from . import grabcut  # noqa: F401  (registers "grabcut")
from .sam import registration  # noqa: F401  (registers "sam")

__all__ = ["SEGMENTERS", "FaceItem", "Segmenter"]
