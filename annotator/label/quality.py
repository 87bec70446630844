"""Quality signals of a row's labels (docs/store.md, "Quality signals"): what `annotate inspect` ranks
rows by, so that a team looks at the doubtful ones first. Plain numpy and OpenCV, computed in the run.

- channel shares: the share of the crop where each label channel is set.
- landmark confidence: the IoU of the face box the landmarks imply with the box they were fitted in
  (FaceMesh and FAN report no confidence of their own; a fit that drifted off the face disagrees with
  the detector's, or the followed, box).
- prior agreement: the least IoU, over the face's own regions, of the segmenter's region with the
  landmark polygons' prior of it, on pixels no instrument covers; and which region it is.
- temporal consistency: per video row, the least mean region IoU with its neighbouring sampled frames
  after aligning them by the landmarks (a similarity transform), so a moving face is not flicker.
"""

from __future__ import annotations

import cv2
import numpy as np

from annotator.face.priors import compose, region_priors
from annotator.face.regions import FACE_REGIONS, REGION_NAMES, Region

# Pixels of these regions are an instrument's: they say nothing of how well the face was cut.
_INSTRUMENT = (Region.OCCLUDER, Region.PAI_SURFACE)


def channel_shares(label: np.ndarray) -> np.ndarray:
    """(..., 3, S, S) uint8 labels -> (..., 3) float32: the share of pixels where attack, live,
    background > 0."""
    return (label > 0).reshape(*label.shape[:-2], -1).mean(axis=-1).astype(np.float32)


def box_iou(a, b) -> float:
    """IoU of two XYXY boxes (pixels)."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else np.nan


def prior_agreement(region: np.ndarray, landmarks: np.ndarray) -> tuple[float, str]:
    """(least IoU over the face regions present in the map or its prior, that region's name) of an
    (S, S) uint8 region map against the priors of its (P, 3) crop-pixel landmarks; (NaN, "") when no
    face region is present. Pixels of an instrument (occluder, PAI surface) are left out of both."""
    size = region.shape[0]
    prior = compose(region_priors(landmarks, size), size)
    seen = ~np.isin(region, _INSTRUMENT)
    worst, name = np.nan, ""
    for r in FACE_REGIONS:
        iou = _iou((region == r) & seen, (prior == r) & seen)
        if not np.isnan(iou) and not iou >= worst:
            worst, name = iou, REGION_NAMES[r]
    return float(worst), name


def _aligned(region: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """`region` moved from the frame of landmarks `src` to that of `dst` ((P, 2) crop pixels) by the
    similarity transform that fits them best; None when none fits."""
    m, _ = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.LMEDS)
    if m is None:
        return None
    size = region.shape[0]
    return cv2.warpAffine(region, m, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)


def _map_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean IoU over the non-background regions present in either map."""
    ious = [_iou(a == r, b == r) for r in np.union1d(np.unique(a), np.unique(b)) if r != Region.BACKGROUND]
    ious = [v for v in ious if not np.isnan(v)]
    return float(np.mean(ious)) if ious else np.nan


def temporal_consistency(regions: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(T, S, S) uint8 region maps and (T, P, 3) crop-pixel landmarks of one video's sampled frames in
    frame order -> (T,) float32: each frame's least agreement with its neighbours (the previous and
    the next), each neighbour's map aligned to it by the landmarks. NaN for a video of one frame."""
    t = len(regions)
    out = np.full(t, np.nan, np.float32)
    pairs = np.full(max(t - 1, 0), np.nan)
    for k in range(t - 1):
        moved = _aligned(regions[k], landmarks[k, :, :2], landmarks[k + 1, :, :2])
        pairs[k] = np.nan if moved is None else _map_agreement(moved, regions[k + 1])
    for k in range(t):
        near = [pairs[j] for j in (k - 1, k) if 0 <= j < t - 1 and not np.isnan(pairs[j])]
        if near:
            out[k] = min(near)
    return out
