"""The FaceMesh triangle list, recovered from MediaPipe's tesselation edges.

mediapipe 0.10.21 ships FACEMESH_TESSELATION as edges only; the 3-cycles of its undirected
edge graph are the mesh triangles (854 of them over the 468 mesh vertices). The mesh has holes at
the eye openings and between the lips; those are closed with fans over their contours so that
eyes and mouth get depth (the partial-eye and partial-mouth labels live there).
"""

from __future__ import annotations

import functools

import numpy as np

from .regions import LEFT_EYE, RIGHT_EYE

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
