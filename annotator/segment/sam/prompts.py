"""The mapping F from landmarks to SAM point prompts (Fine-grained annotation, section 3.1; docs/papers.md).

Each region gets positive points on its own landmarks and negative points on landmarks of the
neighbouring regions; regions without landmarks inside them (hair, ears, neck) take positive
points at the most interior pixels of their geometric prior. Attack types whose instrument is
visible get one more prompt for the instrument surface: paper, screen or mask -> PAI_SURFACE,
glasses or a patch over the eyes, a patch over the mouth, a half mask -> OCCLUDER (prompted where
it sits: eyes, mouth, lower face).

All prompts of a frame have the same number of points (padding label -1, which SAM ignores) so
that they go through the decoder in one call.
"""

from __future__ import annotations

import cv2
import numpy as np

from annotator.face.layouts import layout_of
from annotator.face.regions import Region
from annotator.core.tuning import TUNING

# The positive and negative points of each region and instrument, per landmark layout: Layout.region_prompts
# ("prior" positives come from the region's geometric prior) and Layout.instrument_prompts.
INSTRUMENTS = {
    "print": "pai_surface", "cut_print": "pai_surface", "replay": "pai_surface", "paper_mask": "pai_surface", "rigid_mask": "pai_surface",
    "flexible_mask": "pai_surface", "transparent_mask": "pai_surface", "fake_head": "pai_surface",
    "glasses": "occluder", "partial_eye": "occluder", "partial_mouth": "mouth_occluder", "half_mask": "lower_occluder",
}
# The region an occluder must cover: what select_regions measures its agreement against.
OCCLUDER_SITE = {"occluder": Region.EYES, "mouth_occluder": Region.MOUTH, "lower_occluder": Region.MOUTH}


def occluder_site(attack_type: str) -> int:
    """The region the attack type's occluder covers (the eyes when it has none)."""
    return int(OCCLUDER_SITE.get(INSTRUMENTS.get(attack_type, ""), Region.EYES))
N_PRIOR_POINTS = TUNING.sam_prior_points
POINTS_PER_PROMPT = 9


def interior_points(mask: np.ndarray, k: int) -> np.ndarray:
    """k pixel centres (x, y) deep inside a bool mask: the distance-transform maximum, then the
    maxima of what is left after blanking a disc around each pick. (0, 2) if the mask is empty."""
    if not mask.any():
        return np.zeros((0, 2), np.float32)
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    pts = []
    for _ in range(k):
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        if dist[y, x] <= 0:
            break
        pts.append((x + 0.5, y + 0.5))
        cv2.circle(dist, (int(x), int(y)), max(2, int(dist[y, x])), 0, -1)
    return np.array(pts, np.float32)


def build_prompts(landmarks: np.ndarray, priors: dict[int, np.ndarray], attack_type: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point prompts for one face, in the landmarks' pixel frame (crop pixels).

    landmarks: (P, 3) float of a layout (478 FaceMesh or 68 iBUG points); priors: {region id: bool
    (S, S)} geometric priors.
    Returns (points (R, P, 2) float32 XY, labels (R, P) int64 with 1 positive, 0 negative,
    -1 padding, region ids (R,) int64). Regions whose prior is empty are left out.
    """
    layout = layout_of(landmarks)
    landmarks = layout.points(landmarks)
    prompts = []
    for rid, (pos, neg) in layout.region_prompts.items():
        if pos == "prior":
            p = interior_points(priors.get(rid, np.zeros((1, 1), bool)), N_PRIOR_POINTS)
        else:
            p = landmarks[list(pos), :2]
        if len(p):
            prompts.append((rid, p, landmarks[list(neg), :2]))
    inst = INSTRUMENTS.get(attack_type)
    if inst:
        rid, pos, neg = layout.instrument_prompts[inst]
        prompts.append((rid, landmarks[list(pos), :2], landmarks[list(neg), :2].reshape(-1, 2)))
    r = len(prompts)
    points = np.zeros((r, POINTS_PER_PROMPT, 2), np.float32)
    labels = np.full((r, POINTS_PER_PROMPT), -1, np.int64)
    for i, (_, pos, neg) in enumerate(prompts):
        both = np.concatenate([pos, neg])[:POINTS_PER_PROMPT]
        points[i, :len(both)] = both
        labels[i, :len(both)] = (np.arange(len(both)) < len(pos)).astype(np.int64)
    return points, labels, np.array([rid for rid, _, _ in prompts], np.int64)
