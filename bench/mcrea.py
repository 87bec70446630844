"""MCREA throughput: augmented samples/s for batches of 64 at 256x256 (gamma 0.5, rho 1).

Batches come from the bundled sample annotated in-process (15 real rows, repeated to 64). Prints
samples/s (all 64 samples of a batch count, as a trainer sees them) on the CPU and, when CUDA is
present, on the GPU; the baseline in the same run is a plain copy of the batch (the floor).

    .venv/bin/python bench/mcrea.py [--batches 20]
Target: at least 500 samples/s on the CPU here.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")
    import torch
    import zarr

    from annotator.augment import mcrea
    from annotator.config import AnnotateConfig
    from annotator.label import Policy
    from pipelines.run import run

    with tempfile.TemporaryDirectory() as tmp:
        url = str(Path(tmp) / "s.zarr")
        run(AnnotateConfig(dataset="sample", root="", policy=Policy.default().table), url, cluster="none",
            progress=False)
        g = zarr.open_group(url, mode="r")
        idx = [i % g["image"].shape[0] for i in range(64)]
        base = {k: torch.from_numpy(g[k][:][idx]) for k in ("image", "label", "depth", "region", "landmarks")}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        batch = {k: v.to(dev) for k, v in base.items()}
        gen = torch.Generator(device="cpu").manual_seed(0)
        mcrea(batch, 0.5, 1, "integrated", gen)  # warm-up
        t = time.perf_counter()
        for _ in range(args.batches):
            {k: v.clone() for k, v in batch.items()}
        floor = 64 * args.batches / (time.perf_counter() - t)
        t = time.perf_counter()
        n_ex = 0
        for _ in range(args.batches):
            _, log = mcrea(batch, 0.5, 1, "integrated", gen)
            n_ex += len(log)
        if dev == "cuda":
            torch.cuda.synchronize()
        rate = 64 * args.batches / (time.perf_counter() - t)
        print(f"{dev}: {rate:,.0f} samples/s with MCREA (gamma 0.5, rho 1; {n_ex / args.batches:.0f} exchanges per "
              f"batch of 64); plain batch copy {floor:,.0f} samples/s")
        if dev == "cpu":
            print(f"target >= 500 samples/s on the CPU: {'MET' if rate >= 500 else 'NOT MET'}")


if __name__ == "__main__":
    main()
