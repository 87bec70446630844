"""The 68-point (iBUG 300-W) layout in terms of FaceMesh's 478 points, and the normalised mean
error between two 68-point sets: how FAN's points are checked against MediaPipe's (docs/labels.md).

MESH_68[i] is the FaceMesh index closest to iBUG point i: jaw 0-16 (from the subject's right ear
to the left), brows 17-26, nose bridge 27-30, nostrils 31-35, eyes 36-47 (the subject's right eye
first, from its outer corner), mouth outline 48-59 and inner lips 60-67. Jaw and brow points have
no exact FaceMesh counterpart (the two models place the jaw line differently), so an NME of a few
per cent between correct detections is normal.
"""

from __future__ import annotations

import numpy as np

MESH_68 = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,  # jaw
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,  # brows
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # nose
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # eyes
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips
)
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 36, 45


def mesh_to_68(mesh: np.ndarray) -> np.ndarray:
    """(478, C) FaceMesh points -> (68, C) in the iBUG layout."""
    return np.asarray(mesh)[list(MESH_68)]


def to_68(points: np.ndarray) -> np.ndarray:
    """(68, C) iBUG points from either layout's (478 FaceMesh points through MESH_68, or 68 as they are)."""
    points = np.asarray(points)
    return mesh_to_68(points) if len(points) != len(MESH_68) else points


def nme(points: np.ndarray, reference: np.ndarray) -> float:
    """Mean 2-D distance between two (68, >=2) point sets over the reference's inter-ocular
    distance (outer eye corners 36 and 45), the usual normalisation of face alignment benchmarks."""
    p, r = np.asarray(points, np.float64)[:, :2], np.asarray(reference, np.float64)[:, :2]
    iod = float(np.linalg.norm(r[RIGHT_EYE_OUTER] - r[LEFT_EYE_OUTER]))
    if not iod > 0:
        raise ValueError("the reference's outer eye corners coincide: no inter-ocular distance")
    return float(np.linalg.norm(p - r, axis=1).mean() / iod)
