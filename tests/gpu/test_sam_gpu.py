"""SAM on CUDA (skipped without a CUDA device): vit_b end to end, and the speed options agree."""

import numpy as np
import pytest
import torch

from annotator.segment.sam.segmenter import SamSegmenter

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def vit_b():
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    return sam_model_registry["vit_b"]().eval()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_vit_b_end_to_end_on_sample(vit_b, tmp_path, sample_root):
    import zarr

    import dataclasses

    from annotator.shard import build_models
    from helpers import sync_config, problems
    from pipelines.run import run

    cfg = sync_config(dataset="sample", root="")
    models = dataclasses.replace(build_models(cfg), segmenter=SamSegmenter(sam=vit_b, device="cuda", batch=8))
    out = str(tmp_path / "gpu.zarr")
    summary = run(cfg, out, cluster="none", progress=False, models=models)
    assert summary.failed_samples == [] and problems(out) == []
    root = zarr.open_group(out, mode="r")
    assert all(h == "geometry" or h.startswith("sam") for h in root["meta/segmenter"][:])


@pytest.mark.parametrize("option", ["batch", "sdpa", "compile"])
def test_speed_options_agree(vit_b, face_image, option):
    frames = [face_image, np.ascontiguousarray(face_image[:, ::-1]), face_image[30:, 10:].copy()]
    base = SamSegmenter(sam=vit_b, device="cuda", batch=1, sdpa=False)
    kwargs = {"batch": {"batch": 3, "sdpa": False}, "sdpa": {"batch": 1, "sdpa": True},
              "compile": {"batch": 3, "sdpa": True, "compile": True}}[option]
    other = SamSegmenter(sam=vit_b, device="cuda", **kwargs)
    a, scales = base.encode(frames)
    b, _ = other.encode(frames)
    # the same prompts through the same decoder on both embeddings: masks must agree (IoU > 0.98)
    pts = np.array([[[256.0, 200.0], [300.0, 240.0]]], np.float32) * scales[0]
    labels = np.array([[1, 1]])
    for i in range(len(frames)):
        la, _ = base.decode(a[i:i + 1], pts, labels)
        lb, _ = base.decode(b[i:i + 1], pts, labels)
        assert _iou((la > 0).cpu().numpy(), (lb > 0).cpu().numpy()) > 0.98


@pytest.mark.skipif(not __import__("os").environ.get("SAM_CHECKPOINT"),
                    reason="set SAM_CHECKPOINT (and SAM_MODEL, default vit_h) to a real segment-anything checkpoint")
def test_real_sam_on_the_partial_attack_composites(tmp_path):
    """The composites of bench/labels.py through a real SAM: prints the table beside the CPU
    segmenter's, so the first machine with a GPU and a checkpoint measures one against the other."""
    import dataclasses
    import os

    from annotator import composites
    from annotator.config import AnnotateConfig
    from annotator.label import Policy
    from annotator.shard import build_models
    from helpers import SAMPLE

    items = composites.build(SAMPLE) + composites.bona_fide(SAMPLE)
    tables = {}
    for name in ("grabcut", "sam"):
        cfg = AnnotateConfig(dataset="folder", root="", policy=Policy.default().table,
                             segmenter="grabcut" if name == "grabcut" else "geometry")
        models = build_models(cfg)
        if name == "sam":
            sam = SamSegmenter(checkpoint=os.environ["SAM_CHECKPOINT"], model=os.environ.get("SAM_MODEL", "vit_h"),
                               device="cuda")
            models = dataclasses.replace(models, segmenter=sam)
        tables[name] = composites.table(composites.measure(items, cfg, models, tmp_path / name))
    for kind in tables["sam"]:
        print(kind, {n: {k: round(v, 3) for k, v in t[kind].items()} for n, t in tables.items()})
    assert all(row["found"] >= 0.9 for row in tables["sam"].values())
    assert tables["sam"]["bonafide"]["uncovered_attack"] <= 0.02
