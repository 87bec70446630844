"""Small label stores with known contents for the trainer tests."""

import numpy as np
import pytest

from annotator import store


def make_store(url: str, n: int = 24, size: int = 32, shard: int = 8, protocols: dict | None = None,
               status=None, is_attack=None, attack_type=None, split=None, video_id=None, frame_index=None, seed: int = 0,
               drop: tuple[str, ...] = (), dataset=None, config: dict | None = None) -> str:
    """A small store with known contents: image[i] is filled with i (all pixels), label, depth,
    region and pyramid derived from it, so every row can be recognised after loading."""
    rng = np.random.default_rng(seed)
    protocols = protocols or {}
    store.create(url, n, size, shard, [], {"config": config or {}})
    is_attack = np.asarray(is_attack if is_attack is not None else (np.arange(n) // 2) % 2 == 1)  # per video of 2
    attack_type = attack_type if attack_type is not None else ["print" if a else "bonafide" for a in is_attack]
    meta_all = {
        "sample_id": [f"s{i}" for i in range(n)],
        "video_id": list(video_id) if video_id is not None else [f"v{i // 2}" for i in range(n)],
        "is_attack": [bool(a) for a in is_attack],
        "attack_type": list(attack_type),
        "split": list(split) if split is not None else [""] * n,
        "status": list(status) if status is not None else [0] * n,
        "dataset": list(dataset) if dataset is not None else ["synthetic"] * n,
    }
    if frame_index is not None:
        meta_all["frame_index"] = [int(f) for f in frame_index]
    for sh in store.plan_shards(n, shard):
        rows = range(sh.start, sh.stop)
        k = len(rows)
        ids = np.arange(sh.start, sh.stop)
        image = np.broadcast_to(ids[:, None, None, None], (k, size, size, 3)).astype(np.uint8).copy()
        image[:, :, : size // 2, 0] = 200  # left half red: flips are visible
        region = np.zeros((k, size, size), np.uint8)
        region[:, 8:24, 8:24] = 1
        region[:, 12:16, 10:22] = 3
        label = np.zeros((k, 3, size, size), np.uint8)
        for j, i in enumerate(rows):
            label[j, 0 if is_attack[i] else 1][region[j] > 0] = 100 + (i % 100)
        label[:, 2] = np.where((label[:, 0] == 0) & (label[:, 1] == 0), 255, 0)
        arrays = {"image": image, "label": label, "depth": (region * 60).astype(np.uint8), "region": region,
                  "landmarks": rng.random((k, 478, 3), dtype=np.float32) * size}
        from annotator.label import pyramid

        for s, level in pyramid(label).items():
            arrays[f"pyramid/{s}"] = level
        for name in drop:
            arrays.pop(name)
        meta = {c: [v[i] for i in rows] for c, v in meta_all.items()}
        store.write_shard(url, sh, arrays, meta)
    store.write_protocols(url, protocols)
    import shutil

    for name in drop:
        shutil.rmtree(f"{url}/{name}")
    store.finalize(url)
    return url




@pytest.fixture
def synthetic_store(tmp_path):
    # rows 0-11 train, 12-17 dev, 18-23 test in protocol "p1"; row 5 failed (status 2)
    groups = np.array([0] * 12 + [1] * 6 + [2] * 6)
    status = np.zeros(24, int)
    status[5] = 2
    return make_store(str(tmp_path / "syn.zarr"), protocols={"p1": groups, "p2": np.full(24, -1)}, status=status)
