"""DataLoader throughput of the trainer from a label store at 256x256.

Writes a store of N rows (face crops cut from the sample photo at random offsets with sensor
noise, elliptic face regions with a depth ramp, the pyramid: about as compressible as real stores), then reads the
train group with 2 DataLoader workers, the fields dccdn3 trains on (image, label), batch 64:
  (a) fas_train.data.StoreLoader: whole chunks per read, batches assembled in the workers straight
      into shared-memory slots allocated once (only slot numbers cross the process boundary);
  (b) baseline in the same run: a map-style Dataset reading one row per __getitem__ (zarr slice)
      with the default collate.
Prints samples/s of each (one warm-up epoch first). Target: (a) >= 1,500 samples/s here.

    .venv/bin/python bench/loader.py [--rows 3000] [--workers 2] [--batch 64]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic_shard(rng, photo: np.ndarray, start: int, stop: int, size: int = 256) -> tuple[dict, dict]:
    """(arrays, meta) of rows [start, stop) of a synthetic store that keeps the store contract."""
    from annotator import store
    from annotator.label import pyramid

    k = stop - start
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.empty((k, size, size, 3), np.uint8)
    region = np.zeros((k, size, size), np.uint8)
    depth = np.zeros((k, size, size), np.uint8)
    for j in range(k):
        y0, x0 = rng.integers(0, photo.shape[0] - size, 2)
        # sensor noise as in video frames: no two rows share long byte runs (zstd would find them)
        noisy = photo[y0:y0 + size, x0:x0 + size] + rng.normal(0, 2.0, (size, size, 3))
        image[j] = noisy.clip(0, 255).astype(np.uint8)
        cy, cx, ry, rx = 128 + rng.integers(-10, 10), 128 + rng.integers(-10, 10), 100, 80
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        region[j][inside] = 1
        region[j][inside & (np.abs(yy - cy + 20) < 8)] = 3
        depth[j] = np.where(inside, 255 - np.hypot(yy - cy, xx - cx), 0).clip(0, 255).astype(np.uint8)
    attack = (np.arange(start, stop) % 2 == 1)
    label = np.zeros((k, 3, size, size), np.uint8)
    label[:, 0] = np.where(attack[:, None, None], depth, 0)
    label[:, 1] = np.where(~attack[:, None, None], depth, 0)
    label[:, 2] = np.where((label[:, 0] == 0) & (label[:, 1] == 0), 255, 0)
    arrays = {"image": image, "label": label, "depth": depth, "region": region,
              "landmarks": rng.random((k, 478, 3), dtype=np.float32) * size,
              **{f"pyramid/{s}": v for s, v in pyramid(label).items()}}
    meta = {c: [""] * k if t == "str" else [0] * k for c, t in store.META_COLUMNS.items()}
    meta.update({"sample_id": [f"s{i}" for i in range(start, stop)], "is_attack": attack.tolist(),
                 "attack_type": ["print" if a else "bonafide" for a in attack], "face_score": [0.9] * k,
                 "video_id": [f"v{i // 10}" for i in range(start, stop)], "source": [f"v{i // 10}.mp4" for i in range(start, stop)]})
    return arrays, meta


def sample_photo() -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(Path(__file__).resolve().parents[1] / "annotator/datasets/sample_data/bonafide/astronaut.jpg"))


def make_store(url: str, n: int, size: int = 256, shard: int = 32) -> None:
    from annotator import store

    photo, rng = sample_photo(), np.random.default_rng(0)
    store.create(url, n, size, shard, [], {"config": {}})
    for sh in store.plan_shards(n, shard):
        arrays, meta = synthetic_shard(rng, photo, sh.start, sh.stop, size)
        store.write_shard(url, sh, arrays, meta)
    store.write_protocols(url, {"p": np.zeros(n, np.int8)})
    store.finalize(url)


class RowDataset:
    """The baseline: one zarr read per row per array."""

    def __init__(self, url: str, rows: np.ndarray, fields: tuple[str, ...]):
        self.url, self.rows, self.fields, self.arrays = url, rows, fields, None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        import zarr

        if self.arrays is None:
            g = zarr.open_group(self.url, mode="r")
            self.arrays = {f: g[f] for f in self.fields}
        return {f: a[int(self.rows[i])] for f, a in self.arrays.items()}


def rate(loader, epochs: int = 2) -> float:
    for _ in loader:  # warm-up: worker start, first opens
        pass
    n, t = 0, time.perf_counter()
    for _ in range(epochs - 1):
        for b in loader:
            n += len(b["image"])
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    from torch.utils.data import DataLoader

    from fas_train.data import StoreLoader, StoreStream
    from fas_train.selection import select

    fields = ("image", "label")  # what dccdn3 training reads (fas_train.models: train_needs)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"{tmp}/bench.zarr"
        t = time.perf_counter()
        make_store(url, args.rows)
        print(f"wrote {args.rows} rows at 256x256 in {time.perf_counter() - t:.1f} s")
        sel = select([url], "p", "train")
        stream = StoreStream(sel, fields, args.batch, shuffle=True)
        ours = rate(StoreLoader(stream, args.workers), epochs=3)
        base_ds = RowDataset(url, sel.parts[0].rows, fields)
        base = rate(DataLoader(base_ds, batch_size=args.batch, shuffle=True, num_workers=args.workers), epochs=2)
    print(f"DataLoader, {args.workers} workers, batch {args.batch}, fields {', '.join(fields)}:")
    print(f"  baseline, one zarr read per row:     {base:8.0f} samples/s")
    print(f"  fas_train.data.StoreLoader (chunks):   {ours:8.0f} samples/s  ({ours / base:.1f}x)")
    print(f"  target >= 1500 samples/s: {'MET' if ours >= 1500 else 'NOT MET'}")


if __name__ == "__main__":
    main()
