"""Region priors drawn from landmarks of any layout (annotator/face/layouts.py), and their composition
into one region-id map."""

from __future__ import annotations

import cv2
import numpy as np

from annotator.core.tuning import TUNING as T

from .layouts import layout_of
from .regions import PAINT_ORDER, Region


def _poly(lm: np.ndarray, idx) -> np.ndarray:
    return lm[list(idx), :2].astype(np.float32)


def _layout(lm: np.ndarray):
    """(layout, its working points) of stored landmarks."""
    lay = layout_of(lm)
    return lay, lay.points(lm)


def _fill(size: int, polys: list[np.ndarray]) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    # Sub-pixel precision: 4 fractional bits keep small regions (eyes at low resolution) in place.
    pts = [np.round(p * 16).astype(np.int32) for p in polys]
    cv2.fillPoly(mask, pts, 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def _axes(lay, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    top, chin = p[lay.forehead_top, :2], p[lay.chin, :2]
    down = chin - top
    height = float(np.linalg.norm(down)) or 1.0
    width = float(np.linalg.norm(p[lay.right_edge, :2] - p[lay.left_edge, :2])) or 1.0
    return (top + chin) / 2, down / height, width, height


def nose_line_side(lm: np.ndarray, size: int) -> np.ndarray:
    """Boolean (size, size): True below the line through the nose tip, perpendicular to the face axis."""
    lay, p = _layout(lm)
    _, down, _, _ = _axes(lay, p)
    ys, xs = np.mgrid[0:size, 0:size]
    tip = p[lay.nose_tip, :2]
    return ((xs + 0.5 - tip[0]) * down[0] + (ys + 0.5 - tip[1]) * down[1]) > 0


def region_priors(lm: np.ndarray, size: int) -> dict[int, np.ndarray]:
    """Geometric prior of each region from landmarks, before overlaps are resolved.

    lm: (P, 3) float landmarks of a layout (478 FaceMesh or 68 iBUG points) in the pixels of a
    size x size image. Returns {region id: bool (size, size)}. Hair is a band above the upper oval,
    ears ellipses beside the oval at eye height, neck a quadrilateral below the jaw; all three are
    estimates the SAM segmenter refines.
    """
    lay, p = _layout(lm)
    oval = _poly(p, lay.oval)
    centre, down, width, height = _axes(lay, p)
    right = np.array([-down[1], down[0]])  # image-right when the face is upright
    priors = {
        Region.SKIN: _fill(size, [oval]),
        Region.BROWS: _fill(size, [_poly(p, b) for b in lay.brows]),
        Region.EYES: _fill(size, [_poly(p, e) for e in lay.eyes]),
        Region.NOSE: _fill(size, [cv2.convexHull(_poly(p, lay.nose))[:, 0, :]]),
        Region.MOUTH: _fill(size, [_poly(p, lay.lips_outer)]),
    }
    # Hair: the upper half of the oval pushed outwards and upwards.
    upper = np.array([p for p in oval if np.dot(p - centre, down) < T.hair_cut * height], dtype=np.float32)
    if len(upper) >= 3:
        outer = centre + (upper - centre) * T.hair_outset - down * T.hair_lift * height
        priors[Region.HAIR] = _fill(size, [np.concatenate([upper, outer[::-1]])]) & ~priors[Region.SKIN]
    else:
        priors[Region.HAIR] = np.zeros((size, size), bool)
    # Ears: ellipses centred just outside the oval's widest points.
    ears = np.zeros((size, size), np.uint8)
    angle = float(np.degrees(np.arctan2(down[1], down[0]))) - 90.0
    for idx, sign in ((lay.left_edge, -1.0), (lay.right_edge, 1.0)):
        c = p[idx, :2] + sign * right * T.ear_offset * width
        axes = (max(1, int(round(T.ear_half_width * width))), max(1, int(round(T.ear_half_height * height))))
        cv2.ellipse(ears, (int(round(c[0])), int(round(c[1]))), axes, angle, 0, 360, 1, -1)
    priors[Region.EARS] = ears.astype(bool) & ~priors[Region.SKIN]
    # Neck: from the jaw corners down, slightly narrower than the jaw.
    jl, jr = p[lay.jaw_left, :2], p[lay.jaw_right, :2]
    inset = (jr - jl) * T.neck_inset
    reach = down * T.neck_length * height
    neck = np.array([jl, jr, jr - inset + reach, jl + inset + reach], np.float32)
    priors[Region.NECK] = _fill(size, [neck]) & ~priors[Region.SKIN]
    return priors


def compose(priors: dict[int, np.ndarray], size: int) -> np.ndarray:
    """Resolve overlapping priors into one region-id map (size, size) uint8 using PAINT_ORDER.

    Ids not in PAINT_ORDER (OCCLUDER, PAI_SURFACE) are painted first, under the face.
    """
    out = np.zeros((size, size), np.uint8)
    for rid in sorted(set(priors) - set(PAINT_ORDER)) + [r for r in PAINT_ORDER if r in priors]:
        out[priors[rid]] = int(rid)
    return out
