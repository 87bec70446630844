"""Segmenter `grabcut`: the attack instrument segmented on the CPU from the landmark prompts.

The same prompts SAM gets for the instrument of an attack type (prompts.build_prompts: positive
points where the instrument sits, negative points on face parts it leaves free) seed OpenCV's
GrabCut on the face crop: the positives and the instrument's site (eyes and brows, the mouth, the
lower face) are foreground, the negatives and the face away from the site background, and GrabCut's
colour models settle the rest. Paper, a screen or a printed patch rarely has the colours of the
skin around it, which is what GrabCut separates well (docs/labels.md, "The CPU segmenter", has the
measurements that chose it over random walker and SLIC superpixels). Three proposals (the cut, the
cut with its holes filled, the cut within the site's reach) go through the selection that SAM's
masks go through (sam/select.py: agreement with the site, the same fallback and `meta/segmenter`
text). Face regions keep their geometric priors; a type without an instrument costs nothing beyond
`geometry`.
"""

from __future__ import annotations

import cv2
import numpy as np

from annotator.face.landmarks import warp_crop
from annotator.face.layouts import layout_of
from annotator.face.regions import Region
from annotator.face.priors import compose, nose_line_side, region_priors
from .base import SEGMENTERS, FaceItem
from .sam.prompts import INSTRUMENTS, OCCLUDER_SITE

ITERATIONS = 4
REACH = 0.7  # how far (inter-ocular distances) beyond its site an instrument may reach
WORK_SIDE = 256  # pixels of the longer side GrabCut works at (a larger crop is cut at this size)


def _iod(lm: np.ndarray) -> float:
    lay = layout_of(lm)
    p = lay.points(lm)[:, :2]
    a, b = lay.eye_centers
    return float(np.linalg.norm(p[a] - p[b]))


def _discs(shape, points: np.ndarray, radius: float) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    for x, y in points:
        cv2.circle(out, (int(round(x)), int(round(y))), max(1, int(round(radius))), 1, -1)
    return out.astype(bool)


def _dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    r = max(1, int(round(radius)))
    return cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0


def site_mask(priors: dict[int, np.ndarray], instrument: str, lm: np.ndarray, size: int) -> np.ndarray:
    """Where the instrument of this prompt sits, from the priors: eyes and brows, the mouth, or the
    face below the nose line."""
    if instrument == "lower_occluder":
        return priors[Region.SKIN] & nose_line_side(lm, size)
    site = OCCLUDER_SITE.get(instrument, Region.EYES)
    out = priors[site].copy()
    if site == Region.EYES:
        out |= priors[Region.BROWS]
    return out


def core_mask(priors: dict[int, np.ndarray], instrument: str, lm: np.ndarray, size: int) -> np.ndarray:
    """Where the instrument surely lies: its site without the brows."""
    if instrument == "lower_occluder":
        return priors[Region.MOUTH] | (priors[Region.NOSE] & nose_line_side(lm, size))
    return priors[OCCLUDER_SITE.get(instrument, Region.EYES)].copy()


def proposals(crop: np.ndarray, lm: np.ndarray, priors: dict[int, np.ndarray], instrument: str) -> np.ndarray:
    """(3, S, S) bool instrument proposals on a crop (S, S, 3 uint8 RGB) with its landmarks (crop px)."""
    size = crop.shape[0]
    lay = layout_of(lm)
    pts = lay.points(lm)[:, :2]
    _, pos, neg = lay.instrument_prompts[instrument]
    iod = _iod(lm)
    site = site_mask(priors, instrument, lm, size)
    reach = _dilate(site, REACH * iod)
    face = priors[Region.SKIN]
    mask = np.full((size, size), cv2.GC_BGD, np.uint8)
    mask[_dilate(face, 0.5 * iod)] = cv2.GC_PR_BGD  # around and on the face: up to the colours
    # The foreground's colours are first learnt where the instrument surely is (the eyes, the mouth),
    # not on the brows, whose colours are the hair's: the band around stays open to either side.
    mask[_dilate(core_mask(priors, instrument, lm, size), 0.1 * iod)] = cv2.GC_PR_FGD
    mask[face & ~reach] = cv2.GC_BGD if instrument != "lower_occluder" else cv2.GC_PR_BGD
    mask[priors[Region.HAIR] & ~reach] = cv2.GC_BGD  # hair's colours belong to the background model
    mask[_discs(mask.shape, pts[list(neg)], 0.12 * iod)] = cv2.GC_BGD
    seeds = _discs(mask.shape, pts[list(pos)], 0.06 * iod)
    mask[seeds] = cv2.GC_FGD
    cut = _touching(_grabcut(crop, mask), seeds)
    filled = _fill_holes(cut)
    return np.stack([cut, filled, filled & reach])


def _grabcut(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """GrabCut's foreground (S, S) bool from an initial GC_* mask, cut within the box of what is not
    definite background and at WORK_SIDE pixels at most (smaller sides lost the edges of thin paper:
    bench/labels.py measured 112 and 160 px against 256), back in crop pixels by a linear resample."""
    ys, xs = np.nonzero(mask != cv2.GC_BGD)
    if not len(ys):  # the site lies outside the crop: no cut, the priors stand (selection falls back)
        return np.zeros(mask.shape, bool)
    y0, y1, x0, x1 = max(0, ys.min() - 4), ys.max() + 5, max(0, xs.min() - 4), xs.max() + 5
    box_img, box_mask = crop[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    f = min(1.0, WORK_SIDE / max(box_mask.shape))
    small = (max(1, round(box_mask.shape[1] * f)), max(1, round(box_mask.shape[0] * f)))
    img = cv2.resize(cv2.cvtColor(box_img, cv2.COLOR_RGB2BGR), small, interpolation=cv2.INTER_AREA)
    m = cv2.resize(box_mask, small, interpolation=cv2.INTER_NEAREST)
    fg = (m == cv2.GC_FGD) | (m == cv2.GC_PR_FGD)
    if fg.all() or not fg.any():  # GrabCut learns two colour models: it needs pixels of both sides
        return np.zeros(mask.shape, bool)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut seeds its colour models with k-means on OpenCV's global RNG: same face, same cut
    cv2.grabCut(img, m, None, bgd, fgd, ITERATIONS, cv2.GC_INIT_WITH_MASK)
    fg = ((m == cv2.GC_FGD) | (m == cv2.GC_PR_FGD)).astype(np.float32)
    out = np.zeros(mask.shape, bool)
    out[y0:y1, x0:x1] = cv2.resize(fg, box_mask.shape[::-1], interpolation=cv2.INTER_LINEAR) >= 0.5
    return out


def _touching(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The connected parts of mask that hold a seed pixel."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    keep = np.unique(labels[seeds & mask])
    return np.isin(labels, keep[keep > 0])


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """mask with the holes it encloses filled (what is not reachable from the border)."""
    inv = (~mask).astype(np.uint8)
    n, labels = cv2.connectedComponents(inv, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return mask | ~np.isin(labels, border)


@SEGMENTERS.register("grabcut")
class GrabCutSegmenter:
    """Landmark-prompted GrabCut for the instrument of partial attacks (glasses, partial_eye,
    partial_mouth, half_mask: an occluder); every other region and type: the geometric priors."""

    name = "grabcut"

    def segment(self, items: list[FaceItem]) -> list[tuple[np.ndarray, str]]:
        import torch

        from .sam.prompts import occluder_site
        from .sam.select import describe, select_regions

        out = []
        for it in items:
            priors = region_priors(it.landmarks, it.size)
            instrument = INSTRUMENTS.get(it.attack_type)
            if instrument not in OCCLUDER_SITE:
                out.append((compose(priors, it.size), "geometry"))
                continue
            crop = warp_crop(it.frame, it.crop_matrix, it.size)
            masks = torch.from_numpy(proposals(crop, it.landmarks, priors, instrument))[None]
            priors_t = {k: torch.from_numpy(v) for k, v in priors.items()}
            # ties in agreement go to the cut with its holes filled, then to it within the site's reach
            region, taken, fell, _ = select_regions(masks, torch.tensor([[0.0, 0.2, 0.1]]), [int(Region.OCCLUDER)],
                                                 priors_t, occluder_site=occluder_site(it.attack_type))
            out.append((region.numpy(), describe(taken, fell, self.name)))
        return out
