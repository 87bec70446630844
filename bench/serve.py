"""`annotate serve` latency on a large store: page queries and thumbnails, cold and warm, and the
server's memory.

Writes a synthetic store of --rows samples (default 1,000,000) of --size px crops (default 32, so
that it fits a laptop disk: thumbnails cost one chunk decode each whatever the side), shard --shard
rows, with realistic meta columns (attack types, splits, statuses, face scores). Then, through the
application in-process (Flask's test client: no network in the figures):
- start-up: the catalog reads and codes the meta columns once (first start), then from its column
  cache (second start);
- page: GET /api/rows with one filter and sort and a random page, median and p95 over 200 requests,
  and with a new filter each time; baseline in the same run: one filter as a plain comparison on
  the text column (what every request would pay without the catalog's codes);
- quality: a page sorted by a quality signal (NaN last) under a new range filter each time, and the
  histograms a view asks for when a filter changes (GET /api/histogram for every numeric column);
- thumbnails: GET /thumb/<row>.png for rows never asked before (cold: a chunk decode each) and the
  same rows again (warm: the cache), median and p95;
- memory: the process's peak resident size before and after start-up.

    .venv/bin/python bench/serve.py [--rows 1000000] [--size 32] [--shard 256] [--store PATH]
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


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_store(url: str, n: int, size: int, shard: int) -> None:
    import zarr

    from annotator import store
    from annotator.label import ATTACK_TYPES

    rng = np.random.default_rng(0)
    store.create(url, n, size, shard, [], {"config": {"dataset": "synthetic"}})
    root = zarr.open_group(url, mode="r+")
    y, x = np.mgrid[0:size, 0:size]
    face = ((x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 3) ** 2)
    step = shard * 16
    with zarr.config.set(store.WRITE_CONFIG):
        for start in range(0, n, step):
            k = min(step, n - start)
            shade = (np.arange(start, start + k) % 200 + 30).astype(np.uint8)
            image = np.broadcast_to(shade[:, None, None, None], (k, size, size, 3)).copy()
            label = np.zeros((k, 3, size, size), np.uint8)
            label[:, 1][:, face] = 200
            label[:, 2] = np.where(face, 0, 255)
            sl = slice(start, start + k)
            root["image"][sl] = image
            root["label"][sl] = label
            root["depth"][sl] = np.where(face, 128, 0).astype(np.uint8)[None].repeat(k, 0)
            root["region"][sl] = face.astype(np.uint8)[None].repeat(k, 0)
            root["landmarks"][sl] = np.full((k, 478, 3), size / 2, np.float32)
            for lvl in (1, 2, 4, 8, 16, 32):
                root[f"pyramid/{lvl}"][sl] = np.full((k, 3, lvl, lvl), 100, np.uint8)
        types = np.array(ATTACK_TYPES, dtype=object)
        meta = root["meta"]
        attack = rng.integers(0, len(types), n)
        meta["attack_type"][:] = types[attack]
        meta["is_attack"][:] = types[attack] != "bonafide"
        meta["sample_id"][:] = np.array([f"synthetic/{i:07d}.png" for i in range(n)], dtype=object)
        meta["video_id"][:] = meta["sample_id"][:]
        meta["split"][:] = np.array(["train", "dev", "test"], dtype=object)[rng.integers(0, 3, n)]
        meta["segmenter"][:] = np.array(["sam", "geometry"], dtype=object)[rng.integers(0, 2, n)]
        meta["dataset"][:] = np.full(n, "synthetic", dtype=object)
        meta["face_score"][:] = rng.random(n).astype(np.float32)
        meta["frame_index"][:] = np.full(n, -1, np.int32)
        meta["status"][:] = np.where(rng.random(n) < 0.02, 2, 0).astype(np.int8)
        confidence = rng.random(n).astype(np.float32)
        confidence[rng.random(n) < 0.05] = np.nan  # rows without the signal
        meta["landmark_confidence"][:] = confidence
        meta["prior_agreement"][:] = rng.random(n).astype(np.float32)
    for sh in store.plan_shards(n, shard):
        store.commit(url, sh, {"failed": []})
    store.finalize(url)


def percentiles(ms: list[float]) -> str:
    return f"median {np.median(ms):7.2f} ms, p95 {np.percentile(ms, 95):7.2f} ms"


def quality(client, rng) -> None:
    """A page sorted by a quality signal under a new range filter each time; a view's histograms."""
    ms = []
    for k in range(100):
        lo = round(float(rng.random()) * 0.5, 3)
        t = time.perf_counter()
        r = client.get(f"/api/rows?class=attack&range=prior_agreement:{lo}..&sort=landmark_confidence&per_page=48")
        ms.append((time.perf_counter() - t) * 1e3)
        assert r.status_code == 200
    print(f"  new range + quality sort (first page)      {percentiles(ms)}")
    columns = [c["name"] for c in client.get("/api/info").get_json()["choices"]["numeric"]]
    for c in columns:  # read each column once: a first start pays that whatever asks
        client.get(f"/api/histogram?column={c}")
    ms, views = [], []
    for k in range(20):
        lo = round(float(rng.random()) * 0.5, 3)
        started = time.perf_counter()
        for c in columns:
            t = time.perf_counter()
            r = client.get(f"/api/histogram?column={c}&class=attack&range=prior_agreement:{lo}..")
            ms.append((time.perf_counter() - t) * 1e3)
            assert r.status_code == 200
        views.append((time.perf_counter() - started) * 1e3)
    print(f"  histogram, one column (new filter)         {percentiles(ms)}")
    print(f"  histograms of a view ({len(columns)} columns, one by one) {percentiles(views)}")


def thumbnails(client, rows) -> None:
    """Thumbnails of rows never asked before (a chunk decode each), then the same rows again."""
    for label in ("cold (chunk decode each)", "warm (cached)"):
        ms = []
        for row in rows:
            t = time.perf_counter()
            r = client.get(f"/thumb/{row}.png?overlay=label")
            ms.append((time.perf_counter() - t) * 1e3)
            assert r.status_code == 200
        print(f"  thumbnail {label:30s} {percentiles(ms)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--shard", type=int, default=256)
    ap.add_argument("--store", default=None, help="an existing store of this benchmark's to reuse (else a temporary one)")
    args = ap.parse_args()
    from annotator.serve import create_app

    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or f"{tmp}/big.zarr"
        t = time.perf_counter()
        if not Path(url).exists():
            make_store(url, args.rows, args.size, args.shard)
        import zarr

        n = zarr.open_group(url, mode="r")["image"].shape[0]
        print(f"store: {n} rows of {args.size}x{args.size}, shard {args.shard} (ready in {time.perf_counter() - t:.0f} s)")
        import os

        os.environ["ANNOTATOR_CACHE"] = f"{tmp}/cache"  # an empty column cache: the first start reads the store
        before = rss_mb()
        for label in ("first start (reads the meta columns)", "second start (column cache)"):
            t = time.perf_counter()
            client = create_app(url).test_client()
            print(f"  {label:42s} {time.perf_counter() - t:8.2f} s, peak resident {before:.0f} -> {rss_mb():.0f} MB")
        rng = np.random.default_rng(1)
        q = "/api/rows?class=attack&split=train&sort=face_score&order=desc&per_page=48"
        pages = client.get(q).get_json()["pages"]
        ms = []
        for _ in range(200):
            page = int(rng.integers(1, pages + 1))
            t = time.perf_counter()
            r = client.get(f"{q}&page={page}")
            ms.append((time.perf_counter() - t) * 1e3)
            assert r.status_code == 200
        print(f"  page (one filter + sort, random page of 48) {percentiles(ms)}")
        from annotator.label import ATTACK_TYPES

        ms = []
        for k in range(200):  # a new filter each time: no cached result to page through
            kind = ATTACK_TYPES[k % len(ATTACK_TYPES)]
            order = ("asc", "desc")[k // len(ATTACK_TYPES) % 2]
            split = ("train", "dev", "test")[k // (2 * len(ATTACK_TYPES)) % 3]
            t = time.perf_counter()
            r = client.get(f"/api/rows?attack_type={kind}&split={split}&sort=face_score&order={order}&per_page=48")
            ms.append((time.perf_counter() - t) * 1e3)
            assert r.status_code == 200
        print(f"  new filter each time (first page)          {percentiles(ms)}")
        split = zarr.open_group(url, mode="r")["meta/split"][:]
        base = []
        for _ in range(20):
            t = time.perf_counter()
            np.nonzero(split == "train")[0]
            base.append((time.perf_counter() - t) * 1e3)
        print(f"  baseline: one text-column comparison       {percentiles(base)} (per filter, per request)")
        quality(client, rng)
        thumbnails(client, rng.choice(n, 200, replace=False))
        print(f"  peak resident after the requests          {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
