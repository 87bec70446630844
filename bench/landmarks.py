"""Landmark throughput: MediaPipe FaceMesh on the CPU (one process, then two), against FAN
(face-alignment's 2DFAN4, annotator/face/fan.py) on the CPU and, when CUDA is present, on the GPU
in bf16 batches of --batch. FAN runs with random weights of the official shapes: the time does not
depend on the values, and no weights can be downloaded here.

Faces: the bundled sample photo's face, --faces times (with its detector box).

Then what a store's landmarks cost after the landmarker, on the CPU in either layout: regions
(geometry segmenter), pseudo-depth and the label of one 256 px crop, from FaceMesh's 478 points and
from the same face's 68 (ibug-68, with its derived points), faces/s.

    .venv/bin/python bench/landmarks.py [--faces 64] [--batch 64] [--fan-faces 8]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
SAMPLE = Path(__file__).resolve().parents[1] / "annotator/datasets/sample_data" / "bonafide" / "astronaut.jpg"


def face():
    import numpy as np
    from PIL import Image

    from annotator.face.detect import BlazeFaceDetector

    image = np.asarray(Image.open(SAMPLE).convert("RGB"))
    return image, BlazeFaceDetector()(image)[0]


def mediapipe_rate(n: int) -> float:
    """Faces/s of FaceMesh in this process over n calls (after one warm-up)."""
    from annotator.face.landmarks import FaceMeshLandmarker

    image, box = face()
    m = FaceMeshLandmarker()
    m(image, box)
    t = time.perf_counter()
    for _ in range(n):
        m(image, box)
    return n / (time.perf_counter() - t)


def geometry_rate(landmarks, n: int, size: int = 256) -> float:
    """Faces/s of regions + depth + label fusion for one face's crop-pixel landmarks (any layout)."""
    import numpy as np

    from annotator.label import render_depth
    from annotator.face.priors import compose, region_priors
    from annotator.label import Policy, depth_to_uint8

    policy = Policy.default()

    def once():
        region = compose(region_priors(landmarks, size), size)
        policy.fuse(region, depth_to_uint8(render_depth(landmarks, size)), "print", landmarks)

    once()
    t = time.perf_counter()
    for _ in range(n):
        once()
    return n / (time.perf_counter() - t) if n else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--fan-faces", type=int, default=8, help="faces for FAN on the CPU (slow)")
    args = ap.parse_args()
    import torch
    from face_alignment.models import FAN

    from annotator.face.fan import FanLandmarker

    one = mediapipe_rate(args.faces)
    print(f"  {'MediaPipe FaceMesh, CPU, 1 process':44s} {one:8.1f} faces/s")
    with mp.get_context("spawn").Pool(2) as pool:  # each process times its own calls, side by side
        both = sum(pool.map(mediapipe_rate, [4 * args.faces, 4 * args.faces]))
    print(f"  {'MediaPipe FaceMesh, CPU, 2 processes':44s} {both:8.1f} faces/s (sum of the two)")
    image, box = face()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "2DFAN4-11f355bf06.pth.tar"
        torch.manual_seed(0)
        torch.save(FAN(4).state_dict(), path)
        runs = [("cpu", args.fan_faces, min(args.batch, args.fan_faces))]
        if torch.cuda.is_available():
            runs.append(("cuda", 4 * args.batch, args.batch))
        for device, n, batch in runs:
            m = FanLandmarker("2d", str(path), device=device, batch=batch)
            m.landmarks([(image, box)] * min(n, batch))  # warm-up
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            m.landmarks([(image, box)] * n)
            if device == "cuda":
                torch.cuda.synchronize()
            rate = n / (time.perf_counter() - t)
            where = torch.cuda.get_device_name() + ", bf16" if device == "cuda" else f"CPU {torch.get_num_threads()} threads"
            print(f"  {f'FAN 2DFAN4, {where}, batch {batch}':44s} {rate:8.1f} faces/s ({rate / one:.2f}x MediaPipe, 1 process)")
    from annotator.face.landmarks import FaceMeshLandmarker
    from annotator.face.layouts import fit_canonical_depth
    from annotator.face.points68 import mesh_to_68
    from annotator.shard import output_crop

    mesh = FaceMeshLandmarker()(image, box)
    m = output_crop(mesh, 1.3, 256)
    crop = mesh.copy()
    crop[:, :2] = mesh[:, :2] @ m[:, :2].T + m[:, 2]
    crop[:, 2] *= m[0, 0]
    p68 = mesh_to_68(crop).copy()
    p68[:, 2] = fit_canonical_depth(p68)
    base = geometry_rate(crop, args.faces)
    print(f"  {'regions + depth + label, 478 points, CPU':44s} {base:8.1f} faces/s")
    rate = geometry_rate(p68, args.faces)
    print(f"  {'regions + depth + label, 68 points, CPU':44s} {rate:8.1f} faces/s ({rate / base:.2f}x the 478)")


if __name__ == "__main__":
    main()
