"""Segmenters by name: faces of a shard in, one region-id map per face out."""

import os

from ..errors import AnnotatorError, SettingError
from .base import SEGMENTERS, FaceItem, Segmenter
from . import geometry  # noqa: F401  (registers "geometry")
from . import grabcut  # noqa: F401  (registers "grabcut")


@SEGMENTERS.register("sam")
def _sam(**options):
    """Landmark-prompted Segment Anything (annotator/segment/sam); torch loads only when one is built."""
    from .sam.segmenter import SamSegmenter

    return SamSegmenter(**options)

__all__ = ["SEGMENTERS", "FaceItem", "Segmenter", "prepare_options"]


def prepare_options(name: str, options: dict) -> dict:
    """Check a segmenter's build options before any work; returns them resolved (e.g. + sha256).

    Raises AnnotatorError with one line on a missing, unreadable or mismatched SAM checkpoint.
    """
    SEGMENTERS.get(name)
    if name != "sam":
        if options:
            raise AnnotatorError(f"options {', '.join(sorted(options))} only apply to --segmenter sam")
        return {}
    from .sam.checkpoint import load_state_dict, sha256

    checkpoint = options.get("checkpoint")
    if not checkpoint:
        raise SettingError("segmenter", "sam needs --sam-checkpoint PATH (a segment-anything checkpoint)")
    model = options.get("model", "vit_h")
    load_state_dict(checkpoint, model)
    return {"checkpoint": os.path.abspath(checkpoint), "model": model, "sha256": sha256(checkpoint)}
