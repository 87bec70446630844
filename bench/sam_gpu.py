"""SAM stage throughput on one GPU, side by side on the same frames with 9 region prompts each.

(a) the naive loop: SamPredictor.set_image, then one predict per region prompt, fp32;
(b) our SAM stage (annotator.segment.sam): batched bf16 encoder, fused attention, one decoder call
    per frame, masks selected and composed on the GPU; with and without --compile;
(c) pytorch-labs segment-anything-fast where importable (it is not on PyPI: PyPI's package of that
    name is FastSAM, a different model).
Random weights: the cost equals trained weights. Also prints the encoder's achieved TFLOP/s against
a bf16 matmul peak measured in the same run.

    python bench/sam_gpu.py [--model vit_h] [--frames 64] [--batch 16] [--compile]
Targets: vit_h >= 60 frames/s, vit_b >= 250 frames/s, and >= 8x the naive loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def matmul_peak(torch, n: int = 8192, reps: int = 20) -> float:
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e12


def encoder_flops(torch, model) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, model.image_encoder.img_size, model.image_encoder.img_size, device="cuda")
    with FlopCounterMode(display=False) as fc, torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        model.image_encoder(x)
    return float(fc.get_total_flops())


def face_items(n: int, size: int = 256):
    """FaceItems of n 640x480 frames made from the sample face (landmarks from the real face stack)."""
    import cv2
    from PIL import Image

    from annotator.face.detect import BlazeFaceDetector
    from annotator.face.landmarks import FaceMeshLandmarker
    from annotator.segment.base import FaceItem
    from annotator.shard import output_crop

    face = np.asarray(Image.open(Path(__file__).resolve().parents[1] / "annotator/datasets/sample_data/bonafide/astronaut.jpg"))
    det, mesh = BlazeFaceDetector(), FaceMeshLandmarker()
    items = []
    for i in range(n):
        frame = np.full((480, 640, 3), 190, np.uint8)
        side = 300 + (i % 5) * 20
        x0 = 100 + (i * 37) % 200
        frame[60:60 + side, x0:x0 + side] = cv2.resize(face, (side, side))
        lm = mesh(frame, det(frame)[0])
        m = output_crop(lm, 1.3, size)
        crop = lm.copy()
        crop[:, :2] = lm[:, :2] @ m[:, :2].T + m[:, 2]
        crop[:, 2] *= m[0, 0]
        items.append(FaceItem(frame, m, size, crop, "print"))
    return items


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="vit_h", choices=["vit_h", "vit_l", "vit_b"])
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--naive-frames", type=int, default=16)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--compile", action="store_true")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("bench/sam_gpu.py needs a CUDA device; none is visible here")
    os.environ.setdefault("GLOG_minloglevel", "2")
    from segment_anything import SamPredictor, sam_model_registry

    from annotator.face.priors import region_priors
    from annotator.segment.sam.prompts import build_prompts
    from annotator.segment.sam.segmenter import SamSegmenter

    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, model {args.model}, random weights")
    peak = matmul_peak(torch)
    torch.manual_seed(0)
    model = sam_model_registry[args.model]().cuda().eval()
    flops = encoder_flops(torch, model)
    print(f"bf16 matmul peak {peak:.0f} TFLOP/s; encoder {flops / 1e12:.2f} TFLOP per image "
          f"-> ceiling {peak * 1e12 / flops:.0f} images/s")
    items = face_items(max(args.frames, args.naive_frames))
    results = {}

    # (a) naive loop
    pred = SamPredictor(model)
    naive = items[:args.naive_frames]
    prompts = []
    for it in naive:
        pts, labels, _ = build_prompts(it.landmarks, region_priors(it.landmarks, it.size), it.attack_type)
        inv = np.linalg.inv(np.vstack([it.crop_matrix, [0, 0, 1]]))[:2]
        prompts.append((pts @ inv[:, :2].T + inv[:, 2], labels))
    torch.cuda.synchronize()
    t = time.perf_counter()
    with torch.no_grad():
        for it, (pts, labels) in zip(naive, prompts):
            pred.set_image(it.frame)
            for p, l in zip(pts, labels):
                keep = l >= 0
                pred.predict(point_coords=p[keep], point_labels=l[keep], multimask_output=True)
    torch.cuda.synchronize()
    results["(a) naive loop, fp32"] = len(naive) / (time.perf_counter() - t)

    # (b) our stage
    for compile_ in ([False, True] if args.compile else [False]):
        seg = SamSegmenter(sam=sam_model_registry[args.model]().cuda().eval(), device="cuda", batch=args.batch,
                           compile=compile_)
        seg.segment(items[:args.batch])  # warm-up (and compilation)
        torch.cuda.synchronize()
        t = time.perf_counter()
        seg.segment(items[:args.frames])
        torch.cuda.synchronize()
        wall = time.perf_counter() - t
        label = f"(b) ours, batch {args.batch}, bf16, sdpa{', compiled' if compile_ else ''}"
        results[label] = args.frames / wall
        t = time.perf_counter()
        seg.encode([it.frame for it in items[:args.frames]])
        torch.cuda.synchronize()
        enc = time.perf_counter() - t
        print(f"{label}: encoder alone {args.frames / enc:.1f} images/s = {flops * args.frames / enc / 1e12:.0f} "
              f"TFLOP/s ({100 * flops * args.frames / enc / 1e12 / peak:.0f}% of peak)")

    # (c) pytorch-labs segment-anything-fast
    try:
        import segment_anything_fast  # noqa: F401
        results["(c) segment-anything-fast"] = float("nan")
        print("(c) segment-anything-fast is importable: run its own benchmark on the same frames for comparison")
    except ImportError:
        print("(c) segment-anything-fast (pytorch-labs) is not installed here; it is not on PyPI")

    base = results["(a) naive loop, fp32"]
    for k, v in results.items():
        print(f"{k:48s} {v:7.1f} frames/s   {v / base:5.1f}x naive")
    target = {"vit_h": 60, "vit_b": 250}.get(args.model)
    best = max(v for k, v in results.items() if k.startswith("(b)"))
    if target:
        print(f"target {target} frames/s and 8x naive: {'MET' if best >= target and best >= 8 * base else 'NOT MET'}")


if __name__ == "__main__":
    main()
