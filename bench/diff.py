"""`annotate diff` throughput and peak memory, against reading both stores whole.

1. Writes two synthetic stores of the same N samples (default 4,000) at S px (default 128): elliptic
   faces with skin, brows, eyes, nose, mouth and hair regions at random places, the label from them
   (live for bona fide rows, attack for the others). A has shards of 32; B shards of 50 (other chunk
   boundaries, same order), B lacks A's last 1 % of rows, and differs in every 7th row (the face moved
   by 2 % of the crop), every 11th (eyes relabelled skin) and every 97th (failed: no_face, zeroed).
   The same again at N/2 rows.
2. Each comparison in a fresh subprocess (peak resident memory: its VmHWM, imports included):
   (a) annotator.store.diff.diff_stores(A, B) and its summary: A one chunk at a time, B's chunks as
       its matched rows need them;
   (b) baseline: `label` and `region` of both stores read whole with zarr, rows matched by a dict
       of (sample_id, frame_index), the same IoU functions over the matched pairs.
   Both must give the same IoU sums. Each runs --repeats times plain (interleaved; the fastest run's
   time and the highest peak resident memory, VmHWM, count), and once under tracemalloc for the peak
   heap (Python objects and numpy buffers, exact where the resident figure moves with the
   allocator); for diff apart before and during the streaming step, since only the part before it
   (meta columns, matching, the table) grows with the rows.
3. Prints matched rows/s and peak MB of each at N/2 and N rows, and the peak extrapolated to
   1,000,000 rows: the resident peak at N plus the growth per row, between N/2 and N, of the heap
   that grows with the rows.

    .venv/bin/python bench/diff.py [--rows 4000] [--size 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ATTACK_TYPES = ("bonafide", "print", "replay", "partial_eye")
MILLION = 1_000_000


def synthetic_rows(rows: np.ndarray, centres: np.ndarray, size: int, variant: str) -> tuple[dict, dict]:
    """(arrays, meta) of samples `rows` (indices into centres, (N, 2) face centres in crop fractions);
    variant "b" moves, relabels and fails the rows that B changes."""
    from annotator import store
    from annotator.label import pyramid

    k = len(rows)
    cy, cx = (centres[rows, j][:, None, None] for j in (0, 1))
    if variant == "b":
        cy = cy + np.where(rows % 7 == 0, 0.02, 0.0)[:, None, None]
    yy, xx = (g[None] / size for g in np.mgrid[0:size, 0:size])
    inside = ((yy - cy) / 0.38) ** 2 + ((xx - cx) / 0.3) ** 2 < 1
    region = np.zeros((k, size, size), np.uint8)
    region[(yy < cy - 0.3) & (np.abs(xx - cx) < 0.3)] = 6  # hair
    region[inside] = 1  # skin
    region[inside & (np.abs(yy - cy + 0.18) < 0.025)] = 2  # brows
    eyes = inside & (np.abs(yy - cy + 0.1) < 0.035) & (np.abs(xx - cx) > 0.05)
    relabel = np.broadcast_to(((rows % 11 == 0) & (variant == "b"))[:, None, None], eyes.shape)
    region[eyes] = np.where(relabel, 1, 3)[eyes]
    region[inside & (np.abs(xx - cx) < 0.04) & (np.abs(yy - cy) < 0.08)] = 4  # nose
    region[inside & (np.abs(yy - cy - 0.18) < 0.03) & (np.abs(xx - cx) < 0.12)] = 5  # mouth
    attack = rows % len(ATTACK_TYPES) != 0
    face = np.where(region > 0, 255, 0).astype(np.uint8)
    label = np.zeros((k, 3, size, size), np.uint8)
    label[:, 0] = np.where(attack[:, None, None], face, 0)
    label[:, 1] = np.where(~attack[:, None, None], face, 0)
    label[:, 2] = np.where((label[:, 0] == 0) & (label[:, 1] == 0), 255, 0)
    status = np.where((rows % 97 == 0) & (variant == "b"), 2, 0)
    label[status != 0], region[status != 0] = 0, 0
    arrays = {"image": np.repeat(face[..., None], 3, axis=3), "label": label, "depth": face // 2, "region": region,
              "landmarks": np.zeros((k, 478, 3), np.float32), **{f"pyramid/{s}": v for s, v in pyramid(label).items()}}
    meta = {c: [""] * k if t == "str" else [0] * k for c, t in store.META_COLUMNS.items()}
    meta.update({"sample_id": [f"v{i // 10}.mp4#{i % 10}" for i in rows],
                 "frame_index": [int(i % 10 * 5) for i in rows],
                 "video_id": [f"v{i // 10}" for i in rows], "is_attack": attack.tolist(), "dataset": ["synthetic"] * k,
                 "attack_type": [ATTACK_TYPES[i % len(ATTACK_TYPES)] for i in rows], "status": status.tolist()})
    return arrays, meta


def make_store(url: str, n: int, size: int, shard: int, variant: str, centres: np.ndarray) -> None:
    from annotator import store

    store.create(url, n, size, shard, [], {"config": {"dataset": "synthetic"}})
    for sh in store.plan_shards(n, shard):
        arrays, meta = synthetic_rows(np.arange(sh.start, sh.stop), centres, size, variant)
        store.write_shard(url, sh, arrays, meta)
    store.finalize(url)


def make_pair(folder: str, n: int, size: int) -> tuple[str, str]:
    centres = 0.5 + np.random.default_rng(0).uniform(-0.05, 0.05, (n, 2))
    a, b = f"{folder}/a-{n}.zarr", f"{folder}/b-{n}.zarr"
    make_store(a, n, size, 32, "a", centres)
    make_store(b, n - n // 100, size, 50, "b", centres)
    return a, b


def peak_mb() -> float:
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024


def run_diff(a: str, b: str) -> tuple[int, float, float]:
    from annotator.store.diff import diff_stores

    table = diff_stores(a, b)
    table.summary()
    return table.matched, float(np.nansum(table.channel_iou)), float(np.nansum(table.region_iou))


def run_baseline(a: str, b: str) -> tuple[int, float, float]:
    """Both stores' label and region read whole; the same IoU functions over the matched pairs."""
    import zarr

    from annotator.store.diff import channel_iou, region_iou

    ga, gb = zarr.open_group(a, mode="r"), zarr.open_group(b, mode="r")
    where_b = {k: i for i, k in enumerate(zip(gb["meta/sample_id"][:].tolist(), gb["meta/frame_index"][:].tolist()))}
    pairs = [(i, where_b[k]) for i, k in enumerate(zip(ga["meta/sample_id"][:].tolist(),
                                                        ga["meta/frame_index"][:].tolist())) if k in where_b]
    ia, ib = (np.array(p, np.int64) for p in zip(*pairs))
    label_a, region_a, label_b, region_b = ga["label"][:], ga["region"][:], gb["label"][:], gb["region"][:]
    n_regions = len(ga.attrs["region_names"])
    sums = [0.0, 0.0]
    for s in range(0, len(ia), 256):
        x, y = ia[s:s + 256], ib[s:s + 256]
        sums[0] += float(np.nansum(channel_iou(label_a[x], label_b[y])))
        sums[1] += float(np.nansum(region_iou(region_a[x], region_b[y], n_regions)))
    return len(ia), sums[0], sums[1]


def child(kind: str, a: str, b: str, traced: bool) -> None:
    """One comparison in this process: seconds, peak resident MB (VmHWM) and, traced, the peak heap
    (tracemalloc: Python objects and numpy buffers, free of the allocator's and the OS's noise)."""
    import tracemalloc

    import annotator.store.diff  # noqa: F401  (both children import the same modules before the clock)
    import zarr  # noqa: F401

    phases = split_phases() if traced and kind == "diff" else {}
    if traced:
        tracemalloc.start()
    t = time.perf_counter()
    matched, ch, reg = (run_diff if kind == "diff" else run_baseline)(a, b)
    seconds = time.perf_counter() - t
    heap = max(tracemalloc.get_traced_memory()[1], phases.get("rows", 0)) / 2**20 if traced else None
    print(json.dumps({"seconds": seconds, "matched": matched, "channel_sum": ch, "region_sum": reg,
                      "peak_mb": peak_mb(), "heap_mb": heap, "rows_mb": phases.get("rows", 0) / 2**20,
                      "stream_mb": phases.get("stream", 0) / 2**20}))


def split_phases() -> dict:
    """Wrap diff's streaming step (annotator.store.diff._fill_iou) to record the heap peak before it
    (meta columns read, rows matched, the table made: what grows with the rows) and its own peak
    above the heap it starts from (the chunks: flat), into the returned dict."""
    import tracemalloc

    from annotator.store import diff as module

    original, phases = module._fill_iou, {}

    def fill(*args, **kw):
        phases["rows"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        original(*args, **kw)
        phases["stream"] = tracemalloc.get_traced_memory()[1] - start

    module._fill_iou = fill
    return phases


def run_child(kind: str, a: str, b: str, traced: bool) -> dict:
    flag = ("--traced",) if traced else ()
    out = subprocess.run([sys.executable, __file__, "--child", kind, a, b, *flag], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(a: str, b: str, repeats: int) -> dict[str, dict]:
    """Per kind: the fastest of `repeats` plain runs (interleaved: both kinds see the same machine),
    the highest VmHWM among them, the heap figures of one traced run; each run its own process."""
    plain: dict[str, list[dict]] = {"baseline": [], "diff": []}
    for _ in range(repeats):
        for kind in plain:
            plain[kind].append(run_child(kind, a, b, traced=False))
    out = {}
    for kind, runs in plain.items():
        traced = run_child(kind, a, b, traced=True)
        out[kind] = {**min(runs, key=lambda r: r["seconds"]), "peak_mb": max(r["peak_mb"] for r in runs),
                     **{k: traced[k] for k in ("heap_mb", "rows_mb", "stream_mb")}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each comparison (the fastest counts)")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "A", "B"), help=argparse.SUPPRESS)
    ap.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.traced)
        return
    sizes = (args.rows // 2, args.rows)
    results: dict[str, dict[int, dict]] = {"diff": {}, "baseline": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            t = time.perf_counter()
            a, b = make_pair(tmp, n, args.size)
            print(f"stores of {n} and {n - n // 100} rows at {args.size} px written in {time.perf_counter() - t:.1f} s")
            for kind, figures in measure(a, b, args.repeats).items():
                results[kind][n] = figures
            d, base = results["diff"][n], results["baseline"][n]
            assert d["matched"] == base["matched"], (d, base)
            assert np.isclose(d["channel_sum"], base["channel_sum"]) and np.isclose(d["region_sum"], base["region_sum"])
    report(results, sizes, args.size)


def report(results: dict, sizes: tuple[int, int], size: int) -> None:
    """Rows/s and peak resident MB at both sizes, and the peak extrapolated to 1M rows: the resident
    peak at N plus the growth per row, between N/2 and N, of the heap that grows with the rows (the
    baseline: its whole peak; diff: its peak before streaming, the chunks' part being flat)."""
    print(f"annotate diff of two {size}-px stores (label and region), one process each, the same IoUs in both:")
    kinds = (("baseline", "baseline, label and region read whole", "heap_mb"),
             ("diff", "annotator.store.diff, streamed", "rows_mb"))
    for kind, what, growing in kinds:
        r = results[kind]
        per_row = (r[sizes[1]][growing] - r[sizes[0]][growing]) / (sizes[1] - sizes[0])
        at_million = r[sizes[1]]["peak_mb"] + per_row * (MILLION - sizes[1])
        figures = "; ".join(f"{n} rows: {r[n]['matched'] / r[n]['seconds']:5.0f} rows/s, "
                            f"peak {r[n]['peak_mb']:4.0f} MB resident ({r[n]['heap_mb']:4.0f} MB heap)" for n in sizes)
        print(f"  {what:38s} {figures}")
        parts = ""
        if kind == "diff":
            parts = "; heap before streaming " + ", ".join(f"{r[n]['rows_mb']:.1f}" for n in sizes) + \
                    " MB, streaming's own " + ", ".join(f"{r[n]['stream_mb']:.1f}" for n in sizes) + " MB"
        print(f"  {'':38s} growth {per_row * 2**20:,.0f} bytes/row -> about {at_million / 1024:.1f} GB at 1M rows"
              + parts)
    print(f"  (a row of label and region is {4 * size * size / 1024:.0f} KB per store at {size} px; the DiffTable's "
          f"numeric columns {8 * 3 + 4 * 2 + 1 + 4 * (3 + 11)} bytes, besides its texts and the meta columns read "
          "to match)")


if __name__ == "__main__":
    main()
