"""Face detection, dense landmarks and the landmark -> region tables."""

from .detect import DETECTORS, FaceBox
from .landmarks import LANDMARKERS, N_LANDMARKS

__all__ = ["DETECTORS", "LANDMARKERS", "FaceBox", "N_LANDMARKS"]
