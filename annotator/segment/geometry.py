"""Segmenter `geometry`: the landmark polygon priors, rasterized on the CPU."""

from __future__ import annotations

import numpy as np

from annotator.face.priors import compose, region_priors
from .base import SEGMENTERS, FaceItem


@SEGMENTERS.register("geometry")
class GeometrySegmenter:
    name = "geometry"

    def segment(self, items: list[FaceItem]) -> list[tuple[np.ndarray, str]]:
        return [(compose(region_priors(it.landmarks, it.size), it.size), "geometry") for it in items]
