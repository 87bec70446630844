"""`fas-train infer` throughput: frames/s of the whole path (decode, detect, landmarks, crop, model)
against its parts in the same run: the crop alone (annotator.shard.crop_faces, as `annotate run`
crops) and the model alone on those crops.

Annotates the bundled sample, trains --model for one epoch on it (a checkpoint to load; its
accuracy does not matter here), then infers over the sample's 50-frame video --copies times with
`--sampling` of the store (even:10 by default: 10 frames per video) and over its images.

    .venv/bin/python bench/infer.py [--model cdcn] [--width 0.5] [--copies 4] [--device cuda]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cdcn")
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    import torch

    from annotator.shard import crop_faces
    from annotator.media.plan import sampled
    from annotator.datasets.base import refs_for_file
    from helpers import SAMPLE, sync_config
    from pipelines.run import run
    from fas_train.evaluate import evaluate_run
    from fas_train.infer import Inference, media_inputs
    from fas_train.config import TrainConfig
    from fas_train.train import train

    with tempfile.TemporaryDirectory() as tmp:
        url = f"{tmp}/sample.zarr"
        run(sync_config(dataset="sample", root=""), url, cluster="none", progress=False)
        folder = f"{tmp}/run"
        train(TrainConfig(model=args.model, train=[url], protocol="all", epochs=1, batch=8, width=args.width,
                          workers=0, augment=False), folder, device=args.device, progress=False)
        evaluate_run(folder, [url], "all", device=args.device, workers=0)
        inputs = Path(tmp) / "inputs"
        shutil.copytree(SAMPLE, inputs)
        for k in range(1, args.copies):
            shutil.copy(SAMPLE / "bonafide" / "astronaut_pan.mp4", inputs / f"copy{k}.mp4")
        files = media_inputs([str(inputs)])
        job = Inference(folder, device=args.device)
        job(files[0])  # warm-up: model and face models loaded, first calls done
        t = time.perf_counter()
        results = [job(p) for p in files]
        whole = time.perf_counter() - t
        n = sum(len(r.get("frames", [None])) for r in results)
        t = time.perf_counter()
        crops = []
        for p in files:
            refs = list(sampled(refs_for_file(p, p.parent, job.acfg.frames_per_video, is_attack=False,
                                              attack_type="bonafide", dataset="infer"), job.rule))
            crops.append(crop_faces(refs, job.acfg, job.models))
        crop = time.perf_counter() - t
        t = time.perf_counter()
        for rows in crops:
            ok = [i for i, s in enumerate(rows.meta["status"]) if s == 0]
            job._scores(rows.arrays, ok)
        if job.device.type == "cuda":
            torch.cuda.synchronize()
        model = time.perf_counter() - t
        where = torch.cuda.get_device_name(job.device) if job.device.type == "cuda" else \
            f"CPU, {torch.get_num_threads()} threads"
        print(f"infer {args.model} width {args.width}, {len(files)} inputs, {n} frames, "
              f"{job.acfg.size}x{job.acfg.size} crops, {where}")
        print(f"  {'whole: decode + detect + landmarks + crop + model':52s} {n / whole:8.1f} frames/s")
        print(f"  {'crop only (annotator.shard.crop_faces)':52s} {n / crop:8.1f} frames/s  "
              f"({crop / whole:.0%} of the whole)")
        print(f"  {'model only, on those crops':52s} {n / model:8.1f} frames/s  ({model / whole:.0%} of the whole)")


if __name__ == "__main__":
    main()
