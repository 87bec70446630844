"""The segmenter interface.

A segmenter receives all faces of a shard at once (so a GPU segmenter can batch them) and returns
for each an (S, S) uint8 region-id map in crop pixels (ids of face/regions.py) and a short text
for `meta/segmenter` saying what produced it (e.g. "geometry", "sam", "sam+geometry:3/9"),
optionally followed by a dict of its own quality signals for the row ({"segmenter_iou": the least
predicted IoU of the masks it chose}: meta/segmenter_iou).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from annotator.core.registry import Registry


@dataclass(frozen=True)
class FaceItem:
    """One face to segment.

    frame: HWC uint8 RGB full frame (segmenters that look beyond the face crop use it).
    crop_matrix: 2x3 float affine, frame pixels -> crop pixels of the size x size output crop.
    landmarks: (P, 3) float32 in crop pixels (z larger = nearer), P of the store's landmark layout
        (478 FaceMesh, 68 iBUG; annotator/face/layouts.py).
    attack_type: canonical attack type of the sample (instrument prompts depend on it).
    """

    frame: np.ndarray
    crop_matrix: np.ndarray
    size: int
    landmarks: np.ndarray
    attack_type: str


class Segmenter(Protocol):
    name: str

    def segment(self, items: list[FaceItem]) -> list[tuple]:
        """Per item (region map, how) or (region map, how, signals dict); module doc."""


SEGMENTERS: Registry[Segmenter] = Registry("segmenter")
