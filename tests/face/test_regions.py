import numpy as np
import pytest
from mediapipe.python.solutions import face_mesh_connections as fmc

from annotator.face import points478 as points
from annotator.face import priors
from annotator.face.points478 import HOLES, triangles


def _edges(conn):
    return {frozenset(e) for e in conn}


@pytest.mark.parametrize("loop,conn,closed", [
    (points.FACE_OVAL, fmc.FACEMESH_FACE_OVAL, True),
    (points.LIPS_OUTER, fmc.FACEMESH_LIPS, True),
    (points.LEFT_EYE, fmc.FACEMESH_LEFT_EYE, True),
    (points.RIGHT_EYE, fmc.FACEMESH_RIGHT_EYE, True),
    (HOLES[2], fmc.FACEMESH_LIPS, True),
])
def test_polygons_follow_mediapipe_edges(loop, conn, closed):
    edges = _edges(conn)
    pairs = list(zip(loop, loop[1:] + (loop[:1] if closed else [])))
    assert all(frozenset(p) in edges for p in pairs)


def test_brow_polygons_are_the_two_brow_lines():
    for brow, conn in ((points.LEFT_BROW, fmc.FACEMESH_LEFT_EYEBROW), (points.RIGHT_BROW, fmc.FACEMESH_RIGHT_EYEBROW)):
        edges = _edges(conn)
        lower, upper = brow[:5], brow[5:][::-1]
        for line in (lower, upper):
            assert all(frozenset(p) in edges for p in zip(line, line[1:]))


def test_mesh_triangles():
    t = triangles()
    assert len(t) == 854 + sum(len(h) - 2 for h in HOLES)
    assert t.max() == 467 and t.min() == 0


def test_region_map_on_a_real_face(face_landmarks):
    size = 512
    reg = priors.compose(priors.region_priors(face_landmarks, size), size)
    counts = np.bincount(reg.ravel(), minlength=11)
    assert all(counts[i] > 100 for i in (1, 2, 3, 4, 5, 6, 8)), counts
    assert counts[7] > 0 and counts[9] == 0 and counts[10] == 0
    # anatomy: brows above eyes above nose tip above mouth (image y grows downwards)
    ys = {rid: np.nonzero(reg == rid)[0].mean() for rid in (2, 3, 4, 5, 6, 8)}
    assert ys[6] < ys[2] < ys[3] < ys[4] < ys[5] < ys[8]
    # the eye region sits on the iris centres
    for c in points.EYE_CENTERS:
        x, y = face_landmarks[c, :2].astype(int)
        assert reg[y, x] == 3


def test_nose_line_splits_the_face(face_landmarks):
    below = priors.nose_line_side(face_landmarks, 512)
    tip_y = face_landmarks[points.NOSE_TIP, 1]
    assert below[int(tip_y) + 20, 256] and not below[int(tip_y) - 20, 256]
