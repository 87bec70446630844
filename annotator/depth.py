"""Pseudo-depth: z-buffer rasterization of the FaceMesh triangle mesh (3DDFA_V2 style)."""

from __future__ import annotations

import numpy as np

from .face.mesh import triangles

N_MESH_VERTICES = 468  # the 10 iris points are not part of the mesh


def render_depth(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Rasterize the face mesh into a depth map.

    landmarks: (478, 3) float, x/y in the pixels of a size x size image, z in the same units with
    larger = nearer. Returns float32 (size, size): z normalized to [0, 1] over the mesh vertices
    (nearest vertex = 1), the nearest triangle winning at each pixel centre, 0 outside the mesh.
    """
    v = np.asarray(landmarks[:N_MESH_VERTICES], dtype=np.float64)
    z = v[:, 2]
    span = z.max() - z.min()
    zn = (z - z.min()) / span if span > 0 else np.ones_like(z)
    tri = triangles()
    p = v[tri, :2]  # (T, 3, 2)
    a, b, c = p[:, 0], p[:, 1], p[:, 2]
    denom = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    # Pixel centres at +0.5: a triangle covers pixel (x, y) if it contains (x + 0.5, y + 0.5).
    lo = np.clip(np.ceil(p.min(axis=1) - 0.5), 0, size).astype(np.int64)
    hi = np.clip(np.floor(p.max(axis=1) - 0.5), -1, size - 1).astype(np.int64)
    w = hi[:, 0] - lo[:, 0] + 1
    h = hi[:, 1] - lo[:, 1] + 1
    keep = (w > 0) & (h > 0) & (np.abs(denom) > 1e-9)
    idx = np.nonzero(keep)[0]
    counts = (w * h)[idx]
    out = np.zeros(size * size, dtype=np.float64)
    if counts.sum() == 0:
        return out.reshape(size, size).astype(np.float32)
    t = np.repeat(idx, counts)
    off = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    px = lo[t, 0] + off % w[t]
    py = lo[t, 1] + off // w[t]
    qx, qy = px + 0.5 - a[t, 0], py + 0.5 - a[t, 1]
    d = denom[t]
    wb = (qx * (c[t, 1] - a[t, 1]) - qy * (c[t, 0] - a[t, 0])) / d
    wc = ((b[t, 0] - a[t, 0]) * qy - (b[t, 1] - a[t, 1]) * qx) / d
    wa = 1.0 - wb - wc
    eps = -1e-9
    inside = (wa >= eps) & (wb >= eps) & (wc >= eps)
    zt = zn[tri[t]]
    depth = wa * zt[:, 0] + wb * zt[:, 1] + wc * zt[:, 2]
    np.maximum.at(out, (py * size + px)[inside], np.clip(depth[inside], 0.0, 1.0))
    return out.reshape(size, size).astype(np.float32)
