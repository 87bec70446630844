"""FAN on CUDA (skipped without a CUDA device): the network is placed on the device, runs in bf16
batches, and finds the points the fp32 CPU run finds, up to bf16 rounding."""

import numpy as np
import pytest

from annotator.face.detect import BlazeFaceDetector

pytestmark = pytest.mark.gpu


def test_fan_on_cuda_in_bf16_matches_the_cpu(fan_weights, face_image):
    from annotator.face.fan import FanLandmarker

    path = fan_weights
    box = BlazeFaceDetector()(face_image)[0]
    gpu = FanLandmarker("2d", str(path), device="cuda", batch=64)
    assert next(gpu.fan.parameters()).device.type == "cuda"
    cpu = FanLandmarker("2d", str(path), device="cpu")
    a, b = gpu.landmarks([(face_image, box)] * 64), cpu(face_image, box)
    assert len(a) == 64 and all(np.allclose(p, a[0]) for p in a)
    side = max(box.box[2] - box.box[0], box.box[3] - box.box[1])
    assert np.median(np.linalg.norm(a[0][:, :2] - b[:, :2], axis=1)) < 0.05 * side  # heatmap argmax under bf16


def test_a_fan_store_runs_fan_on_cuda(fan_weights):
    """--landmarker fan with --device cuda: the store's landmarker is on the GPU, and a shard's rows
    (two batched calls) land where the CPU's do, up to bf16 rounding."""
    from helpers import sync_config

    from annotator.shard import build_landmarker, build_models, crop_faces
    from pipelines.prepare import enumerate_samples

    path = fan_weights
    cfg = sync_config(dataset="sample", root="", landmarker="fan", landmarker_options={"checkpoint": str(path)},
                      runtime={"device": "cuda"})
    gpu = build_landmarker(cfg)
    assert gpu.device.type == "cuda" and next(gpu.fan.parameters()).device.type == "cuda"
    refs = enumerate_samples(cfg)[0]
    models = build_models(cfg)
    a = crop_faces(refs, cfg, models)
    b = crop_faces(refs, sync_config(**{**cfg.to_dict(), "runtime": {"device": "cpu"}}), build_models(
        sync_config(**{**cfg.to_dict(), "runtime": {"device": "cpu"}})))
    both = [i for i in range(len(refs)) if a.meta["status"][i] == 0 and b.meta["status"][i] == 0]
    assert len(both) >= len(refs) // 2
    for i in both:
        la, lb = a.arrays["landmarks"][i], b.arrays["landmarks"][i]
        assert np.median(np.linalg.norm(la[:, :2] - lb[:, :2], axis=1)) < 0.05 * a.arrays["image"].shape[1]
