"""Pyramid masks: area means of a label at 32, 16, 8, 4, 2 and 1 cells a side."""

from __future__ import annotations

import numpy as np

PYRAMID_SIZES = (32, 16, 8, 4, 2, 1)


def pyramid(label: np.ndarray, sizes=PYRAMID_SIZES) -> dict[int, np.ndarray]:
    """Area means of a (..., C, S, S) uint8 label at each k in sizes -> {k: (..., C, k, k) uint8}.

    S must be a multiple of every k, and each k a multiple of the next. Values are rounded to the
    nearest integer. The full-resolution label is read once: each level is the unrounded mean of
    the level above (equal blocks, so the mean of means is the area mean).
    """
    s = label.shape[-1]
    lead = label.shape[:-2]
    out = {}
    current, cs = label.astype(np.float32), s
    for k in sorted(sizes, reverse=True):
        if cs % k or s % k:
            raise ValueError(f"label size {s} is not a multiple of pyramid size {k}")
        f = cs // k
        current = current.reshape(*lead, k, f, k, f).mean(axis=(-3, -1))
        cs = k
        out[k] = np.round(current).astype(np.uint8)
    return {k: out[k] for k in sizes}
