"""Orchestration scaling: frames/s with 1 and 2 local workers (parallel efficiency), and the client's
peak memory for a run over a synthetic 1,000,000-sample listing, both with a stub per-frame stage.

The stub replaces the per-frame work with a fixed amount of numpy work per sample (no media), so
the figures measure the pipeline itself: enumeration, the bounded task window, commits, resume.

    .venv/bin/python bench/scaling.py [--samples 2000] [--ms-per-frame 20] [--listing-videos 100000]
Targets: parallel efficiency >= 0.8 at 2 workers; client memory < 1 GB.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

WORK = {"ms": 20.0}


def stub_shard(url, store_id, shard, refs, cfg, models=None):
    """Per-frame stand-in: ~ms of numpy work per sample, then the real commit marker."""
    from annotator import store

    a = np.random.default_rng(shard.id).random((256, 256))
    for _ in refs:
        t = time.perf_counter()
        while (time.perf_counter() - t) * 1000 < WORK["ms"]:
            a = np.sqrt(a * a + 1e-3)
    store.commit(url, shard)
    return {"shard": shard.id, "n": len(refs), "failed": [], "seconds": {"stub": WORK["ms"] * len(refs) / 1000}}


def folder_listing(root: Path, n: int) -> None:
    (root / "bonafide").mkdir(parents=True)
    for i in range(n):
        open(root / "bonafide" / f"{i:07d}.png", "wb").close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--ms-per-frame", type=float, default=20.0)
    ap.add_argument("--listing-videos", type=int, default=100_000)
    args = ap.parse_args()
    WORK["ms"] = args.ms_per_frame
    import pipelines.run as pr
    from annotator.config import AnnotateConfig
    from annotator.label import Policy

    pr.run_shard = stub_shard  # pickled by value into the workers (defined in __main__)
    policy = Policy.default().table
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder_listing(tmp / "imgs", args.samples)
        cfg = AnnotateConfig(dataset="folder", root=str(tmp / "imgs"), size=32, shard_size=32, policy=policy)
        rates = {}
        for workers in (1, 2):
            from pipelines.cluster import local_client

            with local_client(workers) as client:
                pr.run(cfg, str(tmp / f"warm{workers}.zarr"), client=client, progress=False)  # workers warm
                t = time.perf_counter()
                s = pr.run(cfg, str(tmp / f"w{workers}.zarr"), client=client, progress=False)
                rates[workers] = args.samples / (time.perf_counter() - t)
                assert not s.failed_shards
            print(f"{workers} worker(s): {rates[workers]:.1f} frames/s with a {args.ms_per_frame:.0f} ms/frame stage "
                  f"(ideal {1000 / args.ms_per_frame * workers:.1f})")
        eff = rates[2] / (2 * rates[1])
        print(f"parallel efficiency at 2 workers: {eff:.2f} (target >= 0.8: {'MET' if eff >= 0.8 else 'NOT MET'})")

        from enumerate import make_tree

        make_tree(tmp / "OULU", args.listing_videos)
        n = args.listing_videos * 10
        WORK["ms"] = 0.0
        big = AnnotateConfig(dataset="oulu-npu", root=str(tmp / "OULU"), size=32, shard_size=256, policy=policy)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        t = time.perf_counter()
        s = pr.run(big, str(tmp / "big.zarr"), cluster="local", workers=2, progress=False)
        wall = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(f"{n:,}-sample listing, stub stage: {wall:.0f} s, {s.n_shards:,} shards; client peak resident "
              f"memory {peak / 2**20:.0f} MiB ({(peak - before) / 2**20:.0f} MiB for the run; target < 1 GB: "
              f"{'MET' if peak < 2**30 else 'NOT MET'})")


if __name__ == "__main__":
    main()
