"""docs/figures/partial_<kind>.png: for each kind of partial attack of the composite test set
(annotator/composites.py), a face as the default segmenter (grabcut) labels it: the crop, its
regions (the occluder in white), its label (attack red, live green), and the exact instrument.

    .venv/bin/python scripts/make_label_figures.py
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    warnings.simplefilter("ignore")
    from annotator import composites
    from annotator.config import AnnotateConfig
    from annotator.face.regions import REGION_COLOURS
    from annotator.label import Policy
    from annotator.core.samples import SampleRef
    from annotator.shard import build_models, crop_faces, segment_and_fuse

    wanted = {"astronaut-strip_narrow", "room-strip_wide", "astronaut-glasses_plain", "astronaut-warm-glasses_eyes",
              "room-mouth_patch", "room-half_mask", "astronaut-cut_photo"}
    items = [c for c in composites.build(REPO / "annotator/datasets/sample_data") if c.name in wanted]
    cfg = AnnotateConfig(dataset="folder", root="", policy=Policy.default().table, segmenter="grabcut")
    models = build_models(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        refs = []
        for c in items:
            Image.fromarray(c.image).save(f"{tmp}/{c.name}.png")
            refs.append(SampleRef(c.name, f"{tmp}/{c.name}.png", c.name, c.name, True, c.attack_type, "x"))
        rows = crop_faces(refs, cfg, models)
        segment_and_fuse(rows, cfg, models)
    out = REPO / "docs" / "figures"
    out.mkdir(exist_ok=True)
    for i, it in zip(rows.faced, rows.items):
        img, lab = rows.arrays["image"][i], rows.arrays["label"][i]
        regions = np.array(REGION_COLOURS, np.uint8)[rows.arrays["region"][i]]
        label = np.zeros_like(img)
        label[..., 0], label[..., 1] = lab[0], lab[1]
        inst = cv2.warpAffine(items[i].mask.astype(np.uint8), it.crop_matrix, (it.size, it.size),
                              flags=cv2.INTER_NEAREST) > 0
        truth = img.copy()
        truth[inst] = (0.4 * truth[inst] + [0, 0, 150]).astype(np.uint8)
        sheet = np.hstack([cv2.resize(a, (160, 160), interpolation=cv2.INTER_AREA) for a in (img, regions, label, truth)])
        Image.fromarray(sheet).save(out / f"partial_{items[i].kind}.png", optimize=True)
        print(out / f"partial_{items[i].kind}.png", rows.meta["segmenter"][i])


if __name__ == "__main__":
    main()
