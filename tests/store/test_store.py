import numpy as np
import pytest
import xarray as xr
import zarr

from annotator import store
from annotator.label import pyramid
from annotator.store.schema import empty_rows
from helpers import problems


def _rows(n, size, seed):
    rng = np.random.default_rng(seed)
    arrays = empty_rows(n, size)
    label = np.zeros((n, 3, size, size), np.uint8)
    label[:, 0, : size // 2] = rng.integers(1, 255, (n, size // 2, size))
    label[:, 2] = np.where((label[:, 0] == 0) & (label[:, 1] == 0), 255, 0)
    arrays["label"] = label
    arrays["image"] = rng.integers(0, 255, (n, size, size, 3)).astype(np.uint8)
    arrays["landmarks"] = rng.normal(size=(n, 478, 3)).astype(np.float32)
    for k, v in pyramid(label).items():
        arrays[f"pyramid/{k}"] = v
    meta = {c: [f"{c}-{seed}-{i}" for i in range(n)] for c, t in store.META_COLUMNS.items() if t == "str"}
    meta.update(frame_index=list(range(n)), is_attack=[i % 2 == 0 for i in range(n)], status=[0] * n,
                n_faces=[1] * n, face_score=[0.9] * n, rotation=[0] * n, sample_id=[f"s{seed}-{i}-ü" for i in range(n)])
    return arrays, meta


@pytest.fixture
def written(tmp_path):
    url = str(tmp_path / "t.zarr")
    size, n = 32, 7
    store.create(url, n, size, 3, ["camera"], {"config": {"x": 1}})
    rows = {}
    for shard in store.plan_shards(n, 3):
        a, m = _rows(shard.stop - shard.start, size, shard.id)
        m["camera"] = ["cam"] * (shard.stop - shard.start)
        store.write_shard(url, shard, a, m)
        rows[shard.id] = (a, m)
    store.write_protocols(url, {"grandtest": [0, 0, 0, 1, 1, 1, 2]})
    store.finalize(url)
    return url, rows


def test_round_trip_plain_zarr(written):
    url, rows = written
    root = zarr.open_group(url, mode="r")
    assert root.attrs["schema_version"] == 2
    assert root["image"].shape == (7, 32, 32, 3) and root["image"].chunks[0] == 3
    assert (root["image"][3:6] == rows[1][0]["image"]).all()
    assert (root["landmarks"][6:7] == rows[2][0]["landmarks"]).all()
    assert list(root["meta/sample_id"][:3]) == rows[0][1]["sample_id"]
    assert root["meta/is_attack"].dtype == bool and root["meta/is_attack"][:].tolist()[:3] == [True, False, True]
    assert root["protocols/grandtest"][:].tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert root["meta/camera"][:].tolist() == ["cam"] * 7
    assert sorted(store.committed(url)) == [0, 1, 2]
    assert problems(url) == []


def test_xarray_reads_it(written):
    url, rows = written
    ds = xr.open_zarr(url)
    assert ds["label"].dims == ("sample", "channel", "y", "x")
    assert int(ds["label"].isel(sample=4).sum()) == int(rows[1][0]["label"][1].astype(np.int64).sum())
    meta = xr.open_zarr(url, group="meta")
    assert meta["sample_id"].values[0] == "s0-0-ü"
    assert meta["frame_index"].values.tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_verify_finds_broken_stores(written, tmp_path):
    url, rows = written
    root = zarr.open_group(url, mode="r+")
    lab = root["label"][0]
    lab[2] = 0  # background no longer the complement
    root["label"][0] = lab
    root["pyramid/4"][4] = 200
    import os

    os.remove(os.path.join(url, "_shards", "000002.json"))
    found = problems(url)
    assert any("complement" in p for p in found)
    assert any("pyramid/4" in p for p in found)
    assert any("not committed" in p for p in found)
    assert problems(str(tmp_path / "none.zarr"))[0].endswith("create one with `annotate run`")


def test_write_shard_checks_row_count(tmp_path):
    url = str(tmp_path / "t.zarr")
    store.create(url, 4, 32, 2, [], {})
    a, m = _rows(3, 32, 0)
    with pytest.raises(ValueError, match="expected 2 rows"):
        store.write_shard(url, store.plan_shards(4, 2)[0], a, m)
    assert store.committed(url) == {}
