"""Enumeration and `check-dataset` cost on generated trees (file names only, no media decoded).

1. OULU-NPU: 100,000 empty .avi files (10 frames each = 1,000,000 rows) with Protocol_1..4 lists.
2. WMCA: a tree the size of the preprocessed release (1,941 RGB files + CDIT twins, grandtest CSV).
3. folder: 100,000 empty videos under bonafide/ and attack/<type>/ (1,000,000 rows).
4. celeba-spoof: the release's size, 625,537 empty images of 10,177 subjects under
   Data/{train,test}/<subject>/{live,spoof}/ with an empty <stem>_BB.txt beside each, and
   metas/intra_test/{train,test}_label.json naming every image with a 44-integer vector;
   --celeba-protocols adds metas/protocol1 and protocol2/test_on_{low,middle,high}_quality_device, each
   naming every image (more than the release's: the worst case). Its tree is made in this process
   and each measurement runs in a fresh one, so that its peak memory is its own.
For each: seconds for `list(adapter.samples())` and the growth of peak resident memory (VmHWM);
baseline in the same run: os.walk (os.scandir) of the same files. Then `check-dataset` without the
header probe on the OULU (and CelebA-Spoof) tree, and the header probe alone on real media (copies of
the sample clip): files/s with the thread pool against one thread, in the same run.

    .venv/bin/python bench/enumerate.py [--videos 100000] [--probe-files 400]
    .venv/bin/python bench/enumerate.py --case celeba-spoof [--images 625537] [--celeba-protocols]
Target: a million rows (625,537 CelebA-Spoof images) in under 30 s and under 1 GB of client memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
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


def make_celeba(root: Path, n_images: int, protocols: bool = False, n_subjects: int = 10_177) -> None:
    """The CelebA-Spoof release's layout with empty files: every tenth subject in test, a quarter of each
    subject's images live; every image named by metas/intra_test (and, with protocols, four more folders)."""
    live = "[" + ", ".join(["1", "0"] * 20 + ["0", "0", "0", "0"]) + "]"
    spoof = {k: "[" + ", ".join(["0"] * 40 + [str(1 + k % 10), str(1 + k % 4), str(1 + k % 2), "1"]) + "]"
             for k in range(40)}
    entries = {"train": [], "test": []}
    per, extra = divmod(n_images, n_subjects)
    i = 0
    for s in range(1, n_subjects + 1):
        split = "test" if s % 10 == 0 else "train"
        count = per + (1 if s <= extra else 0)
        for kind in ("live", "spoof"):
            (root / "Data" / split / str(s) / kind).mkdir(parents=True)
        for j in range(count):
            kind = "live" if j % 4 == 0 else "spoof"
            rel = f"Data/{split}/{s}/{kind}/{i:06d}"
            open(root / f"{rel}.jpg", "wb").close()
            open(root / f"{rel}_BB.txt", "wb").close()
            entries[split].append(f'"{rel}.jpg": {live if kind == "live" else spoof[i % 40]}')
            i += 1
    folders = ["intra_test"] + (["protocol1"] + [f"protocol2/test_on_{q}_quality_device"
                                                 for q in ("low", "middle", "high")] if protocols else [])
    for folder in folders:
        (root / "metas" / folder).mkdir(parents=True)
        for split, lines in entries.items():
            (root / "metas" / folder / f"{split}_label.json").write_text("{" + ", ".join(lines) + "}")


def peak_rss() -> int:
    """This process's peak resident memory in bytes: VmHWM where Linux has it (ru_maxrss would carry a
    parent's peak over fork and exec into a measuring child), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(label: str, fn):
    before = peak_rss()
    t = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t
    peak = peak_rss() - before
    n = len(out) if isinstance(out, list) else out.rows
    print(f"{label}: {n:,} rows in {wall:.2f} s ({n / max(wall, 1e-9):,.0f} rows/s), peak resident memory "
          f"grew by {peak / 2**20:.0f} MiB")
    return wall, peak


def scandir_baseline(root: Path) -> None:
    t = time.perf_counter()
    n = sum(len(files) for _, _, files in os.walk(root))
    print(f"  baseline: os.walk lists {n:,} files in {time.perf_counter() - t:.2f} s")


def celeba_case(images: int, protocols: bool) -> list[tuple[str, float, int]]:
    """Make the tree here, measure in fresh processes: the tree's making would hide their peak memory."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "CelebA_Spoof"
        t = time.perf_counter()
        make_celeba(root, images, protocols)
        label_mb = sum(f.stat().st_size for f in (root / "metas").rglob("*.json")) / 2**20
        print(f"made the CelebA-Spoof tree ({images:,} images + as many _BB.txt, {label_mb:.0f} MiB of label JSON"
              f"{' in 5 protocol folders' if protocols else ''}) in {time.perf_counter() - t:.1f} s")
        scandir_baseline(root / "Data")
        out = []
        for what in ("adapter", "check"):
            lines = subprocess.run([sys.executable, __file__, "--measure", what, "--root", str(root)], check=True,
                                   capture_output=True, text=True).stdout.strip().splitlines()
            print("\n".join(lines[:-1]))
            name, wall, peak = lines[-1].split("\t")
            out.append((name, float(wall), int(peak)))
        return out


def measure_celeba(what: str, root: str) -> None:
    """One measurement in this (fresh) process; prints the figures and a last line 'name<TAB>s<TAB>bytes'."""
    from annotator.datasets import DATASETS
    from annotator.datasets.check import check_dataset

    if what == "adapter":
        name = "celeba-spoof"
        wall, peak = timed("celeba-spoof adapter", lambda: list(DATASETS.create("celeba-spoof", root=root).samples()))
    else:
        name = "check-dataset celeba-spoof (no probe)"
        wall, peak = timed("check-dataset celeba-spoof without the header probe", lambda: check_dataset(
            DATASETS.create("celeba-spoof", root=root, strict=False), probe_media=False))
    print(f"{name}\t{wall}\t{peak}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=100_000)
    ap.add_argument("--probe-files", type=int, default=400)
    ap.add_argument("--case", choices=("all", "oulu-npu", "wmca", "folder", "celeba-spoof", "probe"), default="all",
                    help="run one case alone [all]")
    ap.add_argument("--images", type=int, default=625_537, help="CelebA-Spoof images [the release's 625,537]")
    ap.add_argument("--celeba-protocols", action="store_true",
                    help="CelebA-Spoof: protocol1 and protocol2's three folders too, each naming every image")
    ap.add_argument("--measure", choices=("adapter", "check"), help=argparse.SUPPRESS)  # celeba_case's children
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure_celeba(args.measure, args.root)
        return
    from annotator.datasets.check import check_dataset
    from annotator.datasets import DATASETS

    def rows(name, root, **kw):
        return lambda: list(DATASETS.create(name, root=str(root), frames_per_video=10, **kw).samples())

    def verdicts(results):
        for name, wall, peak in results:
            if name != "wmca":
                print(f"target for {name}: < 30 s and < 1 GB: {'MET' if wall < 30 and peak < 2**30 else 'NOT MET'}")

    if args.case == "celeba-spoof":
        verdicts(celeba_case(args.images, args.celeba_protocols))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = [c for c in ("oulu-npu", "wmca", "folder") if args.case in ("all", c)]
        t = time.perf_counter()
        if "oulu-npu" in cases:
            make_tree(tmp / "OULU", args.videos)
        if "wmca" in cases:
            make_wmca(tmp / "WMCA")
        if "folder" in cases:
            make_folder(tmp / "folder", args.videos)
        if cases:
            print(f"made the trees in {time.perf_counter() - t:.1f} s")
        results = []
        for name, root in (("oulu-npu", tmp / "OULU"), ("wmca", tmp / "WMCA"), ("folder", tmp / "folder")):
            if name in cases:
                scandir_baseline(root)
                results.append((name, *timed(f"{name} adapter", rows(name, root))))
        if "oulu-npu" in cases:
            results.append(("check-dataset oulu-npu (no probe)", *timed(
                "check-dataset oulu-npu without the header probe",
                lambda: check_dataset(DATASETS.create("oulu-npu", root=str(tmp / "OULU"), frames_per_video=10,
                                                      strict=False), probe_media=False))))
        verdicts(results)
        if args.case == "all":
            verdicts(celeba_case(args.images, args.celeba_protocols))
        if args.case not in ("all", "probe"):
            return

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
