"""Every registered segmenter keeps the segmenter contract: one (S, S) uint8 region map per face, ids
among the named regions, the face covered, and a `how` text; a new entry is tested by adding it here."""

import re

import numpy as np
import pytest

from annotator.face.regions import FACE_REGIONS, REGION_NAMES
from annotator.segment import SEGMENTERS
from annotator.segment.base import FaceItem
from annotator.shard import output_crop
from helpers import tiny_sam
from annotator.store.schema import QUALITY_COLUMNS

# Build arguments per segmenter where the default would need a downloaded file.
BUILD = {"sam": lambda: {"sam": tiny_sam(), "device": "cpu"}}


@pytest.mark.parametrize("name", SEGMENTERS.names())
def test_segmenter_contract(name, face_image, face_landmarks):
    seg = SEGMENTERS.create(name, **BUILD.get(name, dict)())
    items = []
    for size, attack_type in ((128, "print"), (64, "bonafide")):
        m = output_crop(face_landmarks, 1.3, size)
        lm = face_landmarks.copy()
        lm[:, :2] = face_landmarks[:, :2] @ m[:, :2].T + m[:, 2]
        lm[:, 2] *= m[0, 0]
        items.append(FaceItem(face_image, m, size, lm, attack_type))
    out = seg.segment(items)
    assert len(out) == len(items)
    for it, (region, how, *signals) in zip(items, out):
        assert len(signals) <= 1 and all(set(s) <= set(QUALITY_COLUMNS) for s in signals), signals
        assert region.shape == (it.size, it.size) and region.dtype == np.uint8
        assert int(region.max()) < len(REGION_NAMES)
        face = np.isin(region, FACE_REGIONS).mean()
        assert 0.2 < face < 0.9, face  # the face fills the crop's middle, not all of it
        assert re.fullmatch(r"[a-z]+(\+[a-z]+:\d+/\d+)?", how), how
    assert seg.segment([]) == []
