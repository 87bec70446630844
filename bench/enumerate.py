"""Enumeration cost on a synthetic OULU-NPU listing of 1,000,000 frames (no media decoded).

Creates 100,000 empty .avi files in the OULU layout (10 frames sampled per video = 1,000,000
rows) with Protocol_1..4 lists, then times `list(adapter.samples())` and measures the growth of
the process's peak resident memory (ru_maxrss) while the rows are held. Baseline in the same run: listing the files alone (os.scandir).

    .venv/bin/python bench/enumerate.py [--videos 100000]
Target (issue 4): under 30 s and under 1 GB.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import resource
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_tree(root: Path, n_videos: int) -> None:
    folders = (("Train_files", range(1, 21)), ("Dev_files", range(21, 36)), ("Test_files", range(36, 56)))
    lists = {}
    per_folder = n_videos // 3 + 1
    made = 0
    for folder, users in folders:
        (root / folder).mkdir(parents=True)
        names = []
        i = 0
        while i < per_folder and made < n_videos:
            # phones 1..6, sessions 1..3, users of the folder, files 1..5; then extra 'takes' via more phones
            u = list(users)[i % len(users)]
            f = 1 + (i // len(users)) % 5
            s = 1 + (i // (5 * len(users))) % 3
            p = 1 + (i // (15 * len(users)))
            stem = f"{p}_{s}_{u:02d}_{f}"
            open(root / folder / f"{stem}.avi", "wb").close()
            names.append((stem, f))
            i += 1
            made += 1
        lists[folder] = names
    for n, (prot, sub) in enumerate((("Protocol_1", ""), ("Protocol_2", ""), ("Protocol_3", "_1"), ("Protocol_4", "_1"))):
        d = root / "Protocols" / prot
        d.mkdir(parents=True)
        for folder, part in (("Train_files", "Train"), ("Dev_files", "Dev"), ("Test_files", "Test")):
            lines = [f"{'+1' if f == 1 else '-1'},{stem}" for stem, f in lists[folder][n::2]]
            (d / f"{part}{sub}.txt").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=100_000)
    args = ap.parse_args()
    from annotator.datasets import DATASETS

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "OULU"
        t = time.perf_counter()
        make_tree(root, args.videos)
        print(f"made {args.videos} empty videos in the OULU layout in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        n_files = sum(1 for d in ("Train_files", "Dev_files", "Test_files") for _ in os.scandir(root / d))
        print(f"baseline: os.scandir lists {n_files} files in {time.perf_counter() - t:.2f} s")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        t = time.perf_counter()
        refs = list(DATASETS.create("oulu-npu", root=str(root), frames_per_video=10).samples())
        wall = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
        print(f"oulu-npu adapter: {len(refs):,} rows in {wall:.1f} s ({len(refs) / wall:,.0f} rows/s), "
              f"peak resident memory grew by {peak / 2**20:.0f} MiB")
        print(f"target < 30 s and < 1 GB: {'MET' if wall < 30 and peak < 2**30 else 'NOT MET'}")


if __name__ == "__main__":
    main()
