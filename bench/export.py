"""`annotate export` throughput per format, against the floor of the same run: reading the same
rows' chunks with plain zarr and encoding their images as PNG in one loop, no layout, no lists.

Writes a store of N synthetic 256 px rows (bench/loader.py's rows; default 2,000, shard 32), then
times each format with --workers threads (default 2, the CI machine's cores) into a fresh folder.

    .venv/bin/python bench/export.py [--rows 2000] [--workers 2] [--formats cdcn,ssdg,ssan,folder]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loader import make_store  # noqa: E402


def floor(url: str, out: Path) -> float:
    """Seconds to read every row's image chunk by chunk and write it as one PNG, single thread."""
    import zarr

    from annotator.export.base import save

    image = zarr.open_group(url, mode="r")["image"]
    t = time.perf_counter()
    step = image.chunks[0]
    for start in range(0, image.shape[0], step):
        for i, img in enumerate(image[start:start + step]):
            save(out / f"{start + i:06d}.png", img)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--formats", default="cdcn,ssdg,ssan,folder")
    args = ap.parse_args()
    from annotator.export import export_store

    with tempfile.TemporaryDirectory() as tmp:
        url = f"{tmp}/bench.zarr"
        make_store(url, args.rows)
        print(f"{args.rows} rows of 256x256, {args.workers} worker thread(s)")
        base = floor(url, Path(tmp) / "floor")
        print(f"  {'floor: plain zarr read + one PNG per row, 1 thread':52s} {args.rows / base:8.1f} samples/s")
        for fmt in args.formats.split(","):
            t = time.perf_counter()
            export_store(url, fmt, f"{tmp}/{fmt}", protocol="p", workers=args.workers, progress=False)
            sec = time.perf_counter() - t
            print(f"  {'export --format ' + fmt:52s} {args.rows / sec:8.1f} samples/s  "
                  f"({base / sec:.2f}x the floor's rate)")


if __name__ == "__main__":
    main()
