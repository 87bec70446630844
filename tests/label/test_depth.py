import numpy as np

from annotator.label import render_depth
from annotator.face.points478 import triangles


def test_plane_depth_matches_the_analytic_ramp(face_landmarks):
    size = 512
    lm = face_landmarks.astype(np.float64).copy()
    lm[:, 2] = 0.5 * lm[:, 0]  # a plane tilted along x: z grows with x
    d = render_depth(lm, size)
    v = lm[:468]
    inside = d > 0
    ys, xs = np.nonzero(inside)
    expected = (xs + 0.5 - v[:, 0].min()) / (v[:, 0].max() - v[:, 0].min())
    assert np.abs(d[inside] - expected).max() < 1e-3
    assert inside.sum() > 5000  # the face is about 100 px wide in the photo


def test_zbuffer_nearer_wins_and_outside_is_zero(face_landmarks):
    size = 512
    d = render_depth(face_landmarks, size)
    assert d.dtype == np.float32 and d.shape == (size, size)
    assert d.min() == 0 and d.max() <= 1
    tip = face_landmarks[1, :2].astype(int)
    assert d[tip[1], tip[0]] > 0.9  # the nose tip is the nearest point
    assert d[5, 5] == 0 and d[-5, -5] == 0
    # eyes and mouth (mesh holes) are filled
    for idx in (468, 473, 13):
        x, y = face_landmarks[idx, :2].astype(int)
        assert d[y, x] > 0


def test_zbuffer_takes_the_maximum_of_overlapping_triangles(face_landmarks):
    # Fold the face: mirror x about the nose so the two halves overlap; the nearer half must win.
    size = 512
    lm = face_landmarks.astype(np.float64).copy()
    cx = lm[1, 0]
    right = lm[:, 0] > cx
    lm[right, 0] = 2 * cx - lm[right, 0]
    lm[:, 2] = np.where(right, 1000.0, 0.0)  # the folded half is far nearer
    d = render_depth(lm, size)
    t = triangles()
    all_right = right[t].all(axis=1)
    # pixel centroids of fully-right triangles lie where both halves overlap: depth must be 1
    c = lm[t[all_right], :2].mean(axis=1).astype(int)
    assert (d[c[:, 1], c[:, 0]] > 0.999).mean() > 0.95
