"""Full `annotate verify` throughput, and what the crc32c codec costs.

1. Writes a store of N rows at 256 px (default 10,000; bench/loader.py's synthetic rows: noisy face
   crops, elliptic regions, depth ramps, pyramids, every meta column), shard size 32.
2. Full verify (annotator.store.verify at level "full", --workers threads): samples/s, and MB/s of stored
   (compressed) and decoded bytes.
3. The floor in the same run: every array of the committed shards read with plain zarr, one chunk
   after the other in one loop, no checks.
4. crc32c cost: the same M rows (default 1,024) written and read back with and without the crc32c
   codec, on disk and in memory (the CPU cost alone), best of 5 interleaved; goal: under 5 %.

    .venv/bin/python bench/verify.py [--rows 10000] [--workers 4] [--crc-rows 1024]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loader import make_store, sample_photo, synthetic_shard  # noqa: E402


def stored_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def read_everything(url: str) -> int:
    """The floor: every shard-chunked array read chunk by chunk with plain zarr; returns decoded bytes."""
    import zarr

    from annotator import store

    root = zarr.open_group(url, mode="r")
    names = [k for k, v in root.members(max_depth=None) if isinstance(v, zarr.Array) and k not in store.COORDINATES]
    total = 0
    for name in names:
        arr = root[name]
        step = arr.chunks[0]
        for start in range(0, arr.shape[0], step):
            total += arr[start:start + step].nbytes
    return total


def write_rows(url: str, pool: list, n: int, shard: int) -> float:
    """Seconds to write n rows from a pool of pre-built shards (generation excluded)."""
    from annotator import store

    store.create(url, n, 256, shard, [], {"config": {}})
    t = time.perf_counter()
    for sh in store.plan_shards(n, shard):
        arrays, meta = pool[sh.id % len(pool)]
        k = sh.stop - sh.start
        store.write_shard(url, sh, {a: v[:k] for a, v in arrays.items()}, {c: v[:k] for c, v in meta.items()})
    return time.perf_counter() - t


class CodecClock:
    """Seconds spent inside zarr's crc32c codec (its encode and decode bodies never await, so the
    wall time around them is their compute): the cost free of this VM's run-to-run noise."""

    def __init__(self):
        from zarr.codecs import Crc32cCodec

        self.cls, self.seconds = Crc32cCodec, 0.0
        self.saved = (Crc32cCodec._encode_single, Crc32cCodec._decode_single)

    def __enter__(self):
        clock = self

        def timed(original):
            async def run(codec, *args):
                t = time.perf_counter()
                try:
                    return await original(codec, *args)
                finally:
                    clock.seconds += time.perf_counter() - t
            return run

        self.cls._encode_single, self.cls._decode_single = (timed(f) for f in self.saved)
        return self

    def __exit__(self, *exc):
        self.cls._encode_single, self.cls._decode_single = self.saved


def crc_cost(base: str, n: int, shard: int = 32, repeats: int = 5) -> dict:
    """Best-of-`repeats` write and read seconds of the same rows with and without crc32c under
    `base` (a folder, or "memory://" for the CPU cost alone), the variants interleaved so that both
    see the same machine; the page cache is flushed (os.sync) before each timing."""
    from annotator import store

    rng, photo = np.random.default_rng(1), sample_photo()
    pool = [synthetic_shard(rng, photo, i * shard, (i + 1) * shard) for i in range(8)]
    plain = store.compressors
    variants = {"crc32c": plain, "none": lambda name: plain(name)[:-1]}
    times = {k: ([], []) for k in variants}
    urls = {k: f"{base.rstrip('/')}/crc-{k}.zarr" for k in variants}
    inside = ([], [])  # seconds inside the codec per crc32c write and read
    for k in range(repeats):
        for label, compressors in sorted(variants.items(), reverse=k % 2 == 1):  # alternate who goes first
            store.compressors = compressors
            try:
                os.sync()
                with CodecClock() as clock:
                    times[label][0].append(write_rows(urls[label], pool, n, shard))
                if label == "crc32c":
                    inside[0].append(clock.seconds)
            finally:
                store.compressors = plain
        for label in sorted(variants, reverse=k % 2 == 1):
            os.sync()
            with CodecClock() as clock:
                t = time.perf_counter()
                read_everything(urls[label])
                times[label][1].append(time.perf_counter() - t)
            if label == "crc32c":
                inside[1].append(clock.seconds)
    for url in urls.values():
        store.remove(url)
    out = {k: (min(w), min(r)) for k, (w, r) in times.items()}
    out["inside"] = (float(np.median(inside[0])), float(np.median(inside[1])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--crc-rows", type=int, default=1024)
    args = ap.parse_args()

    from annotator.store.verify import verify

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        url = str(tmp / "bench.zarr")
        t = time.perf_counter()
        make_store(url, args.rows)
        print(f"store: {args.rows} rows at 256 px written in {time.perf_counter() - t:.1f} s "
              f"({stored_bytes(Path(url)) / 1e6:.0f} MB on disk)")
        disk = stored_bytes(Path(url))

        t = time.perf_counter()
        decoded = read_everything(url)
        floor = time.perf_counter() - t
        t = time.perf_counter()
        report = verify(url, "full", workers=args.workers)
        full = time.perf_counter() - t
        assert report.ok, [str(p) for p in report.problems[:3]]
        for name, s in (("plain zarr, one loop (floor)", floor), (f"annotate verify, {args.workers} threads", full)):
            print(f"{name:34s} {s:6.1f} s  {args.rows / s:7.0f} samples/s  {disk / 1e6 / s:6.0f} MB/s stored  "
                  f"{decoded / 1e6 / s:6.0f} MB/s decoded")
        print(f"verify / floor: {full / floor:.2f}x the floor's time")

        for where, base in (("on disk", d), ("in memory, CPU only", "memory://")):
            times = crc_cost(base, args.crc_rows)
            (wc, rc), (wn, rn), (wi, ri) = times["crc32c"], times["none"], times["inside"]
            print(f"crc32c, {args.crc_rows} rows {where} (best of 5): write {wc:.2f} s vs {wn:.2f} s without "
                  f"({100 * (wc / wn - 1):+.1f} %), read {rc:.2f} s vs {rn:.2f} s ({100 * (rc / rn - 1):+.1f} %); "
                  f"inside the codec: {wi:.3f} s of the write ({100 * wi / wc:.1f} %), {ri:.3f} s of the read "
                  f"({100 * ri / rc:.1f} %)")
        print("goal: under 5 % (the pipeline writes ~40 rows/s, so write costs weigh on nothing; training reads)")


if __name__ == "__main__":
    main()
