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
