"""Enumeration and `check-dataset` cost on generated trees (file names only, no media decoded).

1. OULU-NPU: 100,000 empty .avi files (10 frames each = 1,000,000 rows) with Protocol_1..4 lists.
2. WMCA: a tree the size of the preprocessed release (1,941 RGB files + CDIT twins, grandtest CSV).
3. folder: 100,000 empty videos under bonafide/ and attack/<type>/ (1,000,000 rows).
For each: seconds for `list(adapter.samples())` and the growth of peak resident memory (ru_maxrss);
baseline in the same run: os.scandir of the same files. Then `check-dataset` without the header
probe on the OULU tree, and the header probe alone on real media (copies of the sample clip):
files/s with the thread pool against one thread, in the same run.

    .venv/bin/python bench/enumerate.py [--videos 100000] [--probe-files 400]
Target: a million rows in under 30 s and under 1 GB of client memory.
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


def make_wmca(root: Path, n: int = 1941) -> None:
    for i in range(n):
        typ = i % 5
        stem = f"{i % 72 + 1:03d}_{1 + i % 7:02d}_{i % 72 + 1:03d}_{typ}_{(i % 9) + 1 if typ else 0:02d}"
        for top in ("WMCA_preprocessed_RGB", "WMCA_preprocessed_CDIT"):
            d = root / top / "WMCA" / "face-station" / f"{1 + i % 28:02d}.02.18"
            d.mkdir(parents=True, exist_ok=True)
            open(d / f"{stem}.hdf5", "wb").close()
    csv = root / "WMCA" / "wmca-protocols-csv"
    csv.mkdir(parents=True)
    lines = [f"face-station/{1 + i % 28:02d}.02.18/x,{i % 2},{('train', 'dev', 'eval')[i % 3]}" for i in range(n)]
    (csv / "PROTOCOL-grandtest.csv").write_text("\n".join(lines) + "\n")


def make_folder(root: Path, n_videos: int) -> None:
    types = ("bonafide", "print", "replay", "paper_mask")
    for t in types:
        (root / ("bonafide" if t == "bonafide" else f"attack/{t}")).mkdir(parents=True)
    for i in range(n_videos):
        t = types[i % 4]
        open(root / ("bonafide" if t == "bonafide" else f"attack/{t}") / f"v{i:06d}.mp4", "wb").close()


def timed(label: str, fn):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    n = len(out) if isinstance(out, list) else out.rows
    print(f"{label}: {n:,} rows in {wall:.2f} s ({n / max(wall, 1e-9):,.0f} rows/s), peak resident memory "
          f"grew by {peak / 2**20:.0f} MiB")
    return wall, peak


def scandir_baseline(root: Path) -> None:
    t = time.perf_counter()
    n = sum(len(files) for _, _, files in os.walk(root))
    print(f"  baseline: os.walk lists {n:,} files in {time.perf_counter() - t:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=100_000)
    ap.add_argument("--probe-files", type=int, default=400)
    args = ap.parse_args()
    from annotator.datasets.check import check_dataset
    from annotator.datasets import DATASETS

    def rows(name, root, **kw):
        return lambda: list(DATASETS.create(name, root=str(root), frames_per_video=10, **kw).samples())

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        make_tree(tmp / "OULU", args.videos)
        make_wmca(tmp / "WMCA")
        make_folder(tmp / "folder", args.videos)
        print(f"made the trees in {time.perf_counter() - t:.1f} s")
        results = {}
        for name, root in (("oulu-npu", tmp / "OULU"), ("wmca", tmp / "WMCA"), ("folder", tmp / "folder")):
            scandir_baseline(root)
            results[name] = timed(f"{name} adapter", rows(name, root))
        results["check-dataset oulu-npu (no probe)"] = timed(
            "check-dataset oulu-npu without the header probe",
            lambda: check_dataset(DATASETS.create("oulu-npu", root=str(tmp / "OULU"), frames_per_video=10,
                                                  strict=False), probe_media=False))
        for name, (wall, peak) in results.items():
            if name != "wmca":
                print(f"target for {name}: < 30 s and < 1 GB: {'MET' if wall < 30 and peak < 2**30 else 'NOT MET'}")

        clip = (Path(__file__).resolve().parents[1] / "annotator/datasets/sample_data/bonafide/astronaut_pan.mp4").read_bytes()
        media = tmp / "probe" / "bonafide"
        media.mkdir(parents=True)
        for i in range(args.probe_files):
            (media / f"c{i:05d}.mp4").write_bytes(clip)
        adapter = lambda: DATASETS.create("folder", root=str(tmp / "probe"), frames_per_video=1, strict=False)  # noqa: E731
        for workers in (1, None):
            t = time.perf_counter()
            report = check_dataset(adapter(), workers=workers)
            wall = time.perf_counter() - t
            assert report.problems == 0 and report.files == args.probe_files
            print(f"check-dataset with the header probe, {workers or 'default'} thread(s), {os.cpu_count()} cores: "
                  f"{report.files / wall:,.0f} files/s ({wall:.2f} s for {report.files})")


if __name__ == "__main__":
    main()
