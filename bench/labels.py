"""Label quality on partial attacks, per segmenter, on composites with exact instrument masks
(annotator/composites.py: the sample data's and scikit-image's faces with paper strips, paper
glasses, a mouth patch and a cut photo drawn on them), and each segmenter's faces/s.

Inside the face mesh (the row's depth > 0): the share of the instrument labelled attack, the share
of it labelled live, the share of the uncovered face labelled attack, and the faces found, per kind.
`sam` runs on random weights unless --sam-checkpoint is given (its code path only: random masks
fall back to the priors), a tiny model on the CPU, the real shape with --device cuda.

    .venv/bin/python bench/labels.py [--segmenters geometry,grabcut,sam] [--sam-checkpoint P --sam-model vit_h]
    .venv/bin/python bench/labels.py --segmenters grabcut-randomwalker,grabcut-slic   (the CPU methods compared)
Targets (issue "Partial attacks labelled where the instrument is"): faces found >= 90 %, instrument
attack >= 85 %, instrument live <= 5 %, uncovered face attack <= 5 %, bona fide attack <= 2 %.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def models_for(name: str, args):
    from annotator.config import AnnotateConfig
    from annotator.label import Policy
    from annotator.shard import build_models

    import annotator.segment.grabcut as grabcut

    grabcut._grabcut = CPU_ALTERNATIVES.get(name, GRABCUT)  # the same prompts and selection, another cut
    name = "grabcut" if name in CPU_ALTERNATIVES else name
    if name != "sam":
        cfg = AnnotateConfig(dataset="folder", root="", policy=Policy.default().table, segmenter=name)
        return cfg, build_models(cfg)
    from annotator.segment.sam.segmenter import SamSegmenter

    cfg = AnnotateConfig(dataset="folder", root="", policy=Policy.default().table, segmenter="geometry")
    if args.sam_checkpoint:
        seg = SamSegmenter(checkpoint=args.sam_checkpoint, model=args.sam_model, device=args.device)
    else:  # random weights: the code path, not SAM's quality
        sys.path.insert(0, str(REPO / "tests"))
        from helpers import tiny_sam

        seg = SamSegmenter(sam=tiny_sam(), device=args.device or "cpu")
    return dataclasses.replace(cfg, segmenter="sam"), dataclasses.replace(build_models(cfg), segmenter=seg)


def random_walker_cut(crop, mask):
    """The same initial labels solved by scikit-image's random walker (128 px, beta 130)."""
    import cv2
    import numpy as np
    from skimage.segmentation import random_walker

    labels = np.zeros(mask.shape, np.int32)
    labels[(mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)] = 1
    labels[mask == cv2.GC_BGD] = 2
    small = cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA).astype(float) / 255
    out = random_walker(small, cv2.resize(labels, (128, 128), interpolation=cv2.INTER_NEAREST), beta=130,
                        mode="cg_j", channel_axis=-1)
    return cv2.resize((out == 1).astype(np.uint8), mask.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0


def superpixel_cut(crop, mask):
    """SLIC superpixels (250) each given to the nearer of the two seed regions' mean Lab colours."""
    import cv2
    import numpy as np
    from skimage.segmentation import slic

    seg = slic(crop, n_segments=250, compactness=10, start_label=0)
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(float)
    fg_mean = lab[((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).ravel()].mean(0)
    bg_mean = lab[(mask == cv2.GC_BGD).ravel()].mean(0)
    out = np.zeros(mask.shape, bool)
    for s in np.unique(seg):
        m = seg == s
        v = lab[m.ravel()].mean(0)
        out |= m if np.linalg.norm(v - fg_mean) < np.linalg.norm(v - bg_mean) else False
    return out


# --segmenters grabcut-randomwalker / grabcut-slic: the grabcut segmenter with its cut replaced
CPU_ALTERNATIVES = {"grabcut-randomwalker": random_walker_cut, "grabcut-slic": superpixel_cut}
GRABCUT = __import__("annotator.segment.grabcut", fromlist=["_grabcut"])._grabcut


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--segmenters", default="geometry,grabcut,sam")
    p.add_argument("--sam-checkpoint", default=None)
    p.add_argument("--sam-model", default="vit_h")
    p.add_argument("--device", default=None)
    p.add_argument("--json", default=None, help="also write the tables here")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    from annotator import composites
    from annotator.console import filter_native_stderr

    filter_native_stderr()  # MediaPipe's native log lines (from every worker) would bury the tables
    from annotator.shard import crop_faces

    items = composites.build(REPO / "annotator/datasets/sample_data") + composites.bona_fide(REPO / "annotator/datasets/sample_data")
    kinds = sorted({c.kind for c in items})
    print(f"{len(items)} composites: {', '.join(kinds)} ({len(items) // len(kinds)} faces each)")
    tables = {}
    for name in args.segmenters.split(","):
        cfg, models = models_for(name, args)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            results = composites.measure(items, cfg, models, tmp)
            total = time.perf_counter() - t
            # the segmenter's own time: the same faces cropped once, then segmented alone
            from annotator.core.samples import SampleRef

            refs = [SampleRef(c.name, f"{tmp}/{c.name}.png", c.name, c.name, c.kind != "bonafide", c.attack_type, "x")
                    for c in items]
            rows = crop_faces(refs, cfg, models)
            partial = [it for it in rows.items if it.attack_type != "bonafide"]
            t = time.perf_counter()
            models.segmenter.segment(partial)
            seg_s = time.perf_counter() - t
        table = composites.table(results)
        tables[name] = {"kinds": table, "faces_per_s_segmenter": len(partial) / seg_s,
                        "faces_per_s_pipeline": len(items) / total}
        print(f"\n{name}: segmenter {len(partial) / seg_s:.1f} faces/s on the attack rows "
              f"({seg_s / max(1, len(partial)) * 1000:.0f} ms/face); whole pipeline {len(items) / total:.1f} images/s")
        print(f"  {'kind':14s} {'n':>3s} {'found':>6s} {'inst.attack':>11s} {'inst.live':>9s} {'uncov.attack':>12s}")
        for kind, row in table.items():
            print(f"  {kind:14s} {row['n']:3d} {row['found']:6.0%} {row['instrument_attack']:11.1%} "
                  f"{row['instrument_live']:9.1%} {row['uncovered_attack']:12.1%}")
    if args.json:
        Path(args.json).write_text(json.dumps(tables, indent=2))


if __name__ == "__main__":
    main()
