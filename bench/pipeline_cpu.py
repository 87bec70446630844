"""End-to-end CPU throughput of `annotate run` (decode -> committed write), with the share per stage.

Makes N videos of 10 s at 25 fps, 640x480 (H.264, a keyframe every second as phones and webcams
write them) from the sample face, samples 10 frames per video, and runs the pipeline on a Dask
LocalCluster with one worker per core (the cluster is started and its models loaded before the
clock starts; the start-up time is printed apart). Baselines in the same run: the same pipeline in
one process (no Dask), and decoding every frame of a video versus decoding only the sampled ones.

    .venv/bin/python bench/pipeline_cpu.py [--videos 32] [--workers 2]
Target: at least 40 sampled frames/s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def make_videos(root: Path, n: int) -> None:
    import av
    import cv2
    from PIL import Image

    face = np.asarray(Image.open(Path(__file__).resolve().parents[1] / "annotator/datasets/sample_data/bonafide/astronaut.jpg"))
    faces = [face, np.ascontiguousarray(face[:, ::-1])]
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    wall = np.clip(np.stack([200 - 0.05 * y, 205 - 0.05 * y, 195 - 0.04 * x], axis=2), 0, 255).astype(np.uint8)
    (root / "bonafide").mkdir(parents=True)
    for v in range(n):
        with av.open(str(root / "bonafide" / f"v{v:03d}.mp4"), "w") as c:
            s = c.add_stream("libx264", rate=25)
            s.width, s.height, s.pix_fmt = 640, 480, "yuv420p"
            s.options = {"g": "25", "crf": "26", "preset": "veryfast"}
            for t in range(250):
                side = 260 + t // 5
                f = wall.copy()
                x0 = 190 + int(40 * np.sin(t / 20 + v))
                f[100:100 + side, x0:x0 + side] = cv2.resize(faces[v % 2], (side, side))
                for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)


def decode_all(path: str) -> int:
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        return sum(1 for f in c.decode(s) if f.to_ndarray(format="rgb24") is not None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")
    from annotator.config import AnnotateConfig
    from annotator.media.decode import read_video_frames
    from annotator.label import Policy
    from pipelines.run import run

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        make_videos(tmp / "data", args.videos)
        print(f"made {args.videos} videos of 250 frames at 640x480 in {time.perf_counter() - t:.1f} s")
        first = str(tmp / "data" / "bonafide" / "v000.mp4")
        t = time.perf_counter()
        decode_all(first)
        t_all = time.perf_counter() - t
        t = time.perf_counter()
        read_video_frames(first, 10)
        t_seek = time.perf_counter() - t
        print(f"decode one video: every frame {t_all * 1000:.0f} ms, only the 10 sampled {t_seek * 1000:.0f} ms "
              f"({t_all / t_seek:.1f}x less)")
        from pipelines.cluster import local_client

        cfg = AnnotateConfig(dataset="folder", root=str(tmp / "data"), frames_per_video=10,
                             policy=Policy.default().table)  # shard size as users get it
        warm = AnnotateConfig(dataset="folder", root=str(tmp / "data"), frames_per_video=1, limit=4,
                              policy=Policy.default().table, shard_size=1)
        n = args.videos * 10
        results = {}
        t = time.perf_counter()
        with local_client(args.workers) as client:
            run(warm, str(tmp / "warm.zarr"), client=client, progress=False)  # loads the models on every worker
            print(f"cluster start and model load: {time.perf_counter() - t:.1f} s (not counted below)")
            run(warm, str(tmp / "warm1.zarr"), cluster="none", progress=False)
            for label, sched in (("one process, no Dask", "none"), (f"dask, {args.workers} workers", "local")):
                out = str(tmp / f"{sched}.zarr")
                t, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
                summary = run(cfg, out, cluster=sched, client=client if sched == "local" else None, progress=False)
                wall = time.perf_counter() - t
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                client_cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
                print(f"  {label}: this (client) process used {client_cpu:.1f} s of CPU in {wall:.1f} s")
                assert not summary.failed_shards, summary.report()
                results[label] = (wall, summary.stage_seconds)
                print(f"  {label}: {len(summary.failed_samples)} of {n} frames without a usable face")
        print(f"\n{n} sampled frames end to end (decode -> committed write):")
        for label, (wall, stages) in results.items():
            total = sum(stages.values())
            share = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in stages.items())
            print(f"  {label:18s} {n / wall:6.1f} frames/s  ({wall:.1f} s, {total:.1f} s in stages)   stages: {share}")
        base, ours = results["one process, no Dask"][0], list(results.values())[1][0]
        print(f"  speed-up of dask over one process: {base / ours:.2f}x; target >= 40 frames/s: "
              f"{'MET' if n / ours >= 40 else 'NOT MET'}")


if __name__ == "__main__":
    main()
