"""Choosing among SAM's multimask outputs, and falling back to the geometry prior.

Per prompt SAM proposes three masks (sub-part, part, whole). For a face region the agreement of
a mask is its IoU with the region's geometric prior; for an instrument it is the share of the
region it must cover (the face oval for a paper/screen/mask surface; for an occluder the eyes, or
the mouth for a mouth patch or half mask).
The mask with the best agreement + 0.1 x the predicted IoU wins (agreement decides, SAM's own
quality estimate breaks near-ties). A region whose best agreement is below its threshold keeps
its prior (an instrument is then left out). Overlaps are resolved by painting in a fixed
priority: PAI surface first (under the face), then face/regions.PAINT_ORDER, occluder last (it
sits in front of the eyes).

All of it is torch, so masks stay on the device they were decoded on.
"""

from __future__ import annotations

import torch

from annotator.face.regions import PAINT_ORDER, Region
from annotator.core.tuning import TUNING

# An occluder covering more than TUNING.occluder_max_face_share of the face oval is not a partial
# instrument but a failed mask (the background, the whole head).


def _overlap(masks: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(intersection, union) pixel counts of each mask (..., S, S) with ref (S, S)."""
    inter = (masks & ref).flatten(-2).sum(-1).float()
    union = (masks | ref).flatten(-2).sum(-1).float()
    return inter, union


def select_regions(masks: torch.Tensor, iou_pred: torch.Tensor, region_ids: list[int],
                   priors: dict[int, torch.Tensor], min_agreement: float = 0.5,
                   min_cover: float = TUNING.sam_min_cover, occluder_site: int = Region.EYES
                   ) -> tuple[torch.Tensor, list[int], list[int], dict[int, float]]:
    """Compose one region-id map from a segmenter's proposals (SAM's, or the CPU segmenter's).

    masks: bool (R, M, S, S) proposals in crop pixels; iou_pred: (R, M) the segmenter's predicted
    IoU (zeros when it has none); region_ids: region id of each prompt; priors: {id: bool (S, S)}
    on the same device; occluder_site: the region an occluder must cover (eyes, or the mouth for a
    mouth patch or half mask: prompts.occluder_site).
    Returns (region map (S, S) uint8, ids taken from the proposals, ids that fell back to the prior,
    {id taken: the segmenter's predicted IoU of the mask chosen for it}).
    """
    size = masks.shape[-1]
    chosen: dict[int, torch.Tensor] = {}
    from_sam, fell_back, predicted = [], [], {}
    empty = torch.zeros((size, size), dtype=torch.bool, device=masks.device)
    for r, rid in enumerate(region_ids):
        m = masks[r]
        if rid == Region.PAI_SURFACE:
            ref = priors.get(Region.SKIN, empty)
            inter, _ = _overlap(m, ref)
            agree = inter / ref.sum().clamp(min=1)
            ok_shape = torch.ones_like(agree, dtype=torch.bool)
            threshold = min_cover
        elif rid == Region.OCCLUDER:
            ref = priors.get(occluder_site, empty)
            inter, _ = _overlap(m, ref)
            agree = inter / ref.sum().clamp(min=1)
            face = priors.get(Region.SKIN, empty)
            ok_shape = (m & face).flatten(-2).sum(-1) <= TUNING.occluder_max_face_share * face.sum()
            threshold = min_cover
        else:
            ref = priors.get(rid, empty)
            inter, union = _overlap(m, ref)
            agree = inter / union.clamp(min=1)
            ok_shape = torch.ones_like(agree, dtype=torch.bool)
            threshold = min_agreement
        score = torch.where(ok_shape, agree + 0.1 * iou_pred[r].float(), torch.full_like(agree, -1.0))
        best = int(torch.argmax(score))
        if bool(ok_shape[best]) and float(agree[best]) >= threshold:
            chosen[rid] = m[best]
            from_sam.append(rid)
            predicted[rid] = float(iou_pred[r, best])
        else:
            fell_back.append(rid)
            if rid in priors and rid not in (Region.PAI_SURFACE, Region.OCCLUDER):
                chosen[rid] = priors[rid]
    for rid, prior in priors.items():  # regions SAM was not asked about keep their prior
        if rid not in chosen and rid not in region_ids:
            chosen[rid] = prior
    out = torch.zeros((size, size), dtype=torch.uint8, device=masks.device)
    order = [Region.PAI_SURFACE, *PAINT_ORDER, Region.OCCLUDER]
    for rid in order:
        if rid in chosen:
            out[chosen[rid]] = rid
    return out, from_sam, fell_back, predicted


def describe(from_sam: list[int], fell_back: list[int], name: str = "sam") -> str:
    """meta/segmenter text: '<name>', 'geometry', or '<name>+geometry:<fallbacks>/<regions>'."""
    n = len(from_sam) + len(fell_back)
    if not fell_back:
        return name
    if not from_sam:
        return "geometry"
    return f"{name}+geometry:{len(fell_back)}/{n}"
