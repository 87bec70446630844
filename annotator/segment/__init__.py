"""Segmenters by name: faces of a shard in, one region-id map per face out."""

from .base import SEGMENTERS, FaceItem, Segmenter
from . import geometry  # noqa: F401  (registers "geometry")

__all__ = ["SEGMENTERS", "FaceItem", "Segmenter"]
