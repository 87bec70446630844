"""Pseudo-depth: z-buffer rasterization of the landmarks' face mesh (3DDFA_V2 style): FaceMesh's
own triangles, or the ibug-68 layout's triangulation (annotator/face/layouts.py); and its stored uint8 form."""

from __future__ import annotations

import cv2
import numpy as np

from annotator.face.layouts import layout_of

_SUB = 4  # fractional bits of the vertex coordinates given to OpenCV


def render_depth(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Rasterize the face mesh into a depth map.

    landmarks: (P, 3) float of a layout (478 FaceMesh or 68 iBUG points), x/y in the pixels of a
    size x size image, z in the same units with larger = nearer. Returns float32 (size, size): z normalized to [0, 1] over the mesh vertices
    (nearest vertex = 1), 0 outside the mesh. Each pixel takes the plane of the nearest triangle
    covering it, evaluated at the pixel centre.

    Visibility: triangles are drawn far to near by their mean depth into a triangle-id buffer
    (OpenCV fills, about 10x faster than a per-pixel z test in numpy); for a face mesh the only
    overlaps are self-occlusions near the silhouette, where the mean-depth order is the z order.
    """
    v, tri = layout_of(landmarks).mesh(np.asarray(landmarks, dtype=np.float64))
    z = v[:, 2]
    span = z.max() - z.min()
    zn = (z - z.min()) / span if span > 0 else np.ones_like(z)
    p = v[tri, :2]  # (T, 3, 2) pixel coordinates; pixel (x, y) has its centre at (x + 0.5, y + 0.5)
    zt = zn[tri]  # (T, 3)
    # Plane of each triangle: depth = ax * x + ay * y + c at pixel centres.
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    dz1, dz2 = zt[:, 1] - zt[:, 0], zt[:, 2] - zt[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-9
    safe = np.where(ok, det, 1.0)
    ax = (dz1 * e2[:, 1] - dz2 * e1[:, 1]) / safe
    ay = (dz2 * e1[:, 0] - dz1 * e2[:, 0]) / safe
    c = zt[:, 0] - ax * (p[:, 0, 0] - 0.5) - ay * (p[:, 0, 1] - 0.5)
    ids = np.zeros((size, size), np.int32)
    pts = np.round((p - 0.5) * (1 << _SUB)).astype(np.int32)
    order = np.nonzero(ok)[0][np.argsort(zt[ok].mean(axis=1), kind="stable")]
    fill = cv2.fillConvexPoly
    for poly, colour in zip(pts[order], (order + 1).tolist()):  # the Python loop costs as much as OpenCV
        fill(ids, poly, colour, cv2.LINE_8, _SUB)
    out = np.zeros((size, size), np.float64)
    ys, xs = np.nonzero(ids)
    t = ids[ys, xs] - 1
    out[ys, xs] = ax[t] * xs + ay[t] * ys + c[t]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def depth_to_uint8(depth: np.ndarray) -> np.ndarray:
    """round(255 * clip(D, 0, 1)) as uint8: the stored form of depth and of the label channels."""
    return np.round(np.clip(depth, 0.0, 1.0).astype(np.float32) * 255).astype(np.uint8)
