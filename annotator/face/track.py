"""Following a face from one sampled video frame to the next with its landmarks, as FaceMesh's own
video graph does: the detector runs on a video's first sampled frame and again only when the
landmarks found in the followed box do not sit where the box said the face would be.
"""

from __future__ import annotations

import numpy as np

from annotator.core.tuning import TUNING
from .detect import FaceBox

# The tuning's track_extent_over_box was measured on the sample faces and the benchmark videos
# (0.98-1.19, mean 1.07). FaceMesh looks for a followed face in TRACK_CONTEXT box sides around the
# previous position (its own detector finds the face inside).
TRACK_CONTEXT = TUNING.track_context


def _extent(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    lo, hi = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
    return (lo + hi) / 2, float(max(hi - lo))


def box_from_landmarks(landmarks: np.ndarray, score: float) -> FaceBox:
    """The detector-like square XYXY box (frame pixels) of a face whose (P, 3) landmarks (any layout) are known."""
    (cx, cy), side = _extent(landmarks)
    half = side / TUNING.track_extent_over_box / 2
    return FaceBox((cx - half, cy - half, cx + half, cy + half), score)


def follows(landmarks: np.ndarray, box: FaceBox) -> bool:
    """Whether landmarks found around a followed box (TRACK_CONTEXT wide) are that face: wholly
    inside the square FaceMesh saw, not at its border where FaceMesh extrapolates, and of its size."""
    x0, y0, x1, y1 = box.box
    side = max(x1 - x0, y1 - y0)
    lo, hi = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
    reach = float(np.abs(np.concatenate([lo, hi]) - np.tile(((x0 + x1) / 2, (y0 + y1) / 2), 2)).max())
    ratio = float(max(hi - lo)) / (side * TUNING.track_extent_over_box)
    limit = TUNING.track_max_scale
    return reach <= (TRACK_CONTEXT / 2 - TUNING.track_inside) * side and 1 / limit <= ratio <= limit
