"""Faces: detectors, landmarkers and their layouts, the region taxonomy and priors, face following,
and the face behind an instrument."""

from .detect import DETECTORS, FaceBox
from .landmarks import LANDMARKERS, N_LANDMARKS

__all__ = ["DETECTORS", "LANDMARKERS", "FaceBox", "N_LANDMARKS"]
