"""The "sam" segmenter's registration: how it is built, the run-time settings it takes and how its
checkpoint is found, loaded and hashed before any work. torch loads only when one is built or checked."""

from __future__ import annotations

import os

from annotator.core.errors import SettingError

from ..base import SEGMENTERS


def prepare_options(options: dict) -> dict:
    """{"checkpoint", "model"} -> {"checkpoint" (absolute), "model", "sha256"} after the checkpoint
    loads into the model type; a one-line error on a missing, unreadable or mismatched file."""
    from annotator.core.digest import sha256

    from .checkpoint import load_state_dict

    checkpoint = options.get("checkpoint")
    if not checkpoint:
        raise SettingError("segmenter", "sam needs --sam-checkpoint PATH (a segment-anything checkpoint)")
    model = options.get("model", "vit_h")
    load_state_dict(checkpoint, model)
    return {"checkpoint": os.path.abspath(checkpoint), "model": model, "sha256": sha256(checkpoint)}


@SEGMENTERS.register("sam", runtime=("device", "batch", "compile"), prepare=prepare_options)
def build(**options):
    """Landmark-prompted Segment Anything (annotator/segment/sam/segmenter.py)."""
    from .segmenter import SamSegmenter

    return SamSegmenter(**options)
