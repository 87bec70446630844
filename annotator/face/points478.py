"""MediaPipe FaceMesh's 478 points: the index loops that outline each region (consecutive indices are
edges of MediaPipe's own connection sets, checked in tests/face/test_regions.py), and the mesh's
triangles.

mediapipe 0.10.21 ships FACEMESH_TESSELATION as edges only; the 3-cycles of its undirected
edge graph are the mesh triangles (854 of them over the 468 mesh vertices). The mesh has holes at
the eye openings and between the lips; those are closed with fans over their contours so that
eyes and mouth get depth (the partial-eye and partial-mouth labels live there).
"""

from __future__ import annotations

import functools

import numpy as np

FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
LIPS_OUTER = [0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146, 61, 185, 40, 39, 37]
LEFT_EYE = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]
RIGHT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
# Brows: the lower line, then the upper line reversed, closes the polygon.
LEFT_BROW = [276, 283, 282, 295, 285, 336, 296, 334, 293, 300]
RIGHT_BROW = [46, 53, 52, 65, 55, 107, 66, 105, 63, 70]
# The nose is the convex hull of FaceMesh's nose points (bridge from 168 down to the nostrils).
NOSE_POINTS = [168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 64, 294, 48, 278, 115, 344, 220, 440, 45, 275]
NOSE_TIP = 1
# Landmarks that anchor the outer regions.
FOREHEAD_TOP = 10
CHIN = 152
FACE_LEFT_EDGE = 234  # image-left side of the oval (the subject's right)
FACE_RIGHT_EDGE = 454
JAW_LEFT = 172
JAW_RIGHT = 397
EYE_CENTERS = (468, 473)  # iris centres (refined landmarks)

# Hole contours (FaceMesh indices, in order): the eye openings (the eye region's contours) and the
# inner lip line.
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
HOLES = (tuple(RIGHT_EYE), tuple(LEFT_EYE), LIPS_INNER)


@functools.lru_cache(maxsize=1)
def triangles() -> np.ndarray:
    """(T, 3) int32 vertex indices: the 854 FaceMesh triangles, then the hole fans."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    adj: dict[int, set[int]] = {}
    for a, b in FACEMESH_TESSELATION:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    tris = set()
    for a, nbrs in adj.items():
        for b in nbrs:
            if b <= a:
                continue
            for c in nbrs & adj[b]:
                if c > b:
                    tris.add((a, b, c))
    fans = [(loop[0], loop[i], loop[i + 1]) for loop in HOLES for i in range(1, len(loop) - 1)]
    return np.array(sorted(tris) + fans, dtype=np.int32)
