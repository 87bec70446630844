"""`annotate diff A B`: two stores of the same samples compared row by row (annotator/store/diff.py).

Every store here comes from the bundled sample (15 rows, shards of 10): copies whose label, region or
status of known rows were changed through zarr (the crc32c codec kept), a copy with its rows in
reverse order and shards of 4, a run with --limit, a run at another crop size."""

import csv
import json
import shutil

import numpy as np
import pytest
import zarr

from annotator import store
from annotator.store.diff import BOTH, ONLY_A, ONLY_B, diff_stores
from annotator.store.diff_report import report
from helpers import assert_one_line_error, invoke, sync_config

LABEL_ROWS = (3, 12)  # label changed in the copy (3: live, 12: attack)
REGION_ROW = 7  # eyes relabelled skin
FAILED_ROW = 5  # status ok -> no_face, zeroed as a failed row is
CHANGED = {*LABEL_ROWS, REGION_ROW, FAILED_ROW}


def _copy(src: str, dst) -> str:
    shutil.copytree(src, dst)
    return str(dst)


def _change_label(root: zarr.Group, row: int, channel: int) -> None:
    """Channel `channel` cleared in the upper half of the lines it covers; background kept the complement."""
    label = root["label"][row]
    lines = np.flatnonzero(label[channel].any(axis=1))
    assert len(lines) > 1, "the edit must change something"
    label[channel, lines[0]:lines[len(lines) // 2]] = 0
    label[2] = np.where((label[0] == 0) & (label[1] == 0), 255, 0)
    root["label"][row] = label


@pytest.fixture(scope="module")
def edited(sample_store, tmp_path_factory):
    """(A, B): the sample store and a copy with the rows of CHANGED changed."""
    a = sample_store[0]
    b = _copy(a, tmp_path_factory.mktemp("diff") / "edited.zarr")
    root = zarr.open_group(b, mode="r+")
    _change_label(root, LABEL_ROWS[0], 1)
    _change_label(root, LABEL_ROWS[1], 0)
    region = root["region"][REGION_ROW]
    eyes = root.attrs["region_names"].index("eyes")
    assert (region == eyes).any()
    region[region == eyes] = root.attrs["region_names"].index("skin")
    root["region"][REGION_ROW] = region
    root["label"][FAILED_ROW] = 0
    root["region"][FAILED_ROW] = 0
    root["meta/status"][FAILED_ROW] = 2
    return a, b


def _reordered(src: str, dst: str, order: np.ndarray, shard_size: int) -> str:
    """A store holding src's rows in `order` (row i of dst = row order[i] of src), shards of shard_size."""
    a = zarr.open_group(src, mode="r")
    attrs = {k: v for k, v in a.attrs.asdict().items() if k not in ("store_id", "shard_size", "schema_version")}
    extra = [c for c in a["meta"].array_keys() if c not in store.META_COLUMNS]
    n, size = a["image"].shape[:2]
    store.create(dst, n, size, shard_size, extra, attrs)
    names = [k for k, v in a.members(max_depth=None) if isinstance(v, zarr.Array)
             and not k.startswith(("meta/", "protocols/")) and k not in store.COORDINATES]
    arrays = {k: a[k][:][order] for k in names}
    meta = {c: a[f"meta/{c}"][:][order] for c in a["meta"].array_keys()}
    for sh in store.plan_shards(n, shard_size):
        rows = slice(sh.start, sh.stop)
        store.write_shard(dst, sh, {k: v[rows] for k, v in arrays.items()}, {c: list(v[rows]) for c, v in meta.items()})
    store.write_protocols(dst, {p: a[f"protocols/{p}"][:][order] for p in store.protocol_names(a)})
    store.finalize(dst)
    return dst


def _defined(values: np.ndarray) -> np.ndarray:
    return values[~np.isnan(values)]


def _iou(x: np.ndarray, y: np.ndarray) -> float:
    return float((x & y).sum() / (x | y).sum())


def test_diff_names_exactly_the_changed_rows(edited):
    a, b = edited
    table = diff_stores(a, b)
    assert table.matched == len(table) == 15 and table.committed == (15, 15)
    assert np.array_equal(table.row_a, table.row_b)  # a copy: the same order
    for i in range(len(table)):
        row, ch, reg = int(table.row_a[i]), table.channel_iou[i], table.region_iou[i]
        assert len(_defined(ch)) and len(_defined(reg))
        if row in LABEL_ROWS or row == FAILED_ROW:
            assert _defined(ch).min() < 1, row
        elif row == REGION_ROW:
            assert (_defined(ch) == 1).all() and _defined(reg).min() < 1
            assert reg[table.regions.index("eyes")] == 0
        else:
            assert (_defined(ch) == 1).all() and (_defined(reg) == 1).all(), row
    assert set(table.row_a[table.differing()].tolist()) == CHANGED
    assert table.chunk_reads == (2, 2)  # the same order: each chunk once
    total, groups = table.summary()
    assert total["status_changed"] == 1 and total["status_changes"] == {"ok -> no_face": 1}
    bonafide = next(g for g in groups if g["attack_type"] == "bonafide")
    assert bonafide["matched"] == 12 and bonafide["status_changes"] == {"ok -> no_face": 1}
    assert bonafide["channel_iou"]["attack"] is None  # empty in both rows of every bonafide pair: no IoU, not 1
    assert total["region_iou"]["occluder"] is None and total["region_iou"]["eyes"] < 1


def test_absent_in_both_is_nan_not_one(edited):
    table = diff_stores(*edited)
    live = table.channels.index("live")
    for i in np.flatnonzero(np.isin(table.attack_type, ["print", "replay"])):
        assert np.isnan(table.channel_iou[i, live])  # no live pixel in either store
    occluder = table.regions.index("occluder")
    assert np.isnan(table.region_iou[:, occluder]).all()


def test_rows_are_matched_by_sample_id_not_position(edited, tmp_path):
    a, b = edited
    order = np.arange(15)[::-1].copy()  # row i of the copy holds row 14 - i of the original
    reordered = _reordered(b, str(tmp_path / "reversed.zarr"), order, shard_size=4)
    ids = zarr.open_group(reordered)["meta/sample_id"][:]
    assert ids[0] == zarr.open_group(a)["meta/sample_id"][14]
    table = diff_stores(a, reordered)
    assert table.matched == 15 and not (table.where != BOTH).any()
    assert np.array_equal(table.row_b, 14 - table.row_a)  # each sample found where it is
    assert set(table.row_a[table.differing()].tolist()) == CHANGED  # the same rows as in the same order
    assert table.chunk_reads[1] == 4  # B's 4 chunks, each read once
    same = diff_stores(b, reordered)
    assert not same.differing().any() and same.matched == 15


def test_rows_in_one_store_only_are_listed(sample_store, tmp_path):
    from pipelines.run import run

    a = sample_store[0]
    short = str(tmp_path / "limit5.zarr")
    run(sync_config(dataset="sample", root="", limit=5), short, cluster="none", progress=False)

    def keys(url):
        g = zarr.open_group(url)
        return set(zip(g["meta/sample_id"][:].tolist(), g["meta/frame_index"][:].tolist()))

    common = keys(a) & keys(short)
    assert 0 < len(common) < 15
    table = diff_stores(a, short)
    assert table.matched == len(common)
    only = {(str(s), int(f)) for s, f, w in zip(table.sample_id, table.frame_index, table.where) if w == ONLY_A}
    assert only == keys(a) - keys(short) and not (table.where == ONLY_B).any()
    assert np.isnan(table.channel_iou[table.where != BOTH]).all()
    back = diff_stores(short, a)
    assert int((back.where == ONLY_B).sum()) == 15 - len(common) and (back.row_a[back.where == ONLY_B] == -1).all()
    text = report(back, worst=3)
    assert f"rows only in B ({15 - len(common)}):" in text and "more (--json or --out lists every row)" in text


def test_rows_of_uncommitted_shards_count_as_absent(sample_store, tmp_path):
    a = sample_store[0]
    b = _copy(a, tmp_path / "pending.zarr")
    (tmp_path / "pending.zarr" / "_shards" / "000001.json").unlink()  # rows 10-14 no longer committed
    table = diff_stores(a, b)
    assert table.committed == (15, 10) and table.stored == (15, 15) and table.matched == 10
    assert sorted(table.row_a[table.where == ONLY_A].tolist()) == [10, 11, 12, 13, 14]
    assert "B: " in report(table) and "(10 of 15 rows committed" in report(table)
    (tmp_path / "pending.zarr" / "_shards" / "000000.json").unlink()  # no row committed: nothing to match
    empty = diff_stores(a, b)
    assert empty.matched == 0 and int((empty.where == ONLY_A).sum()) == 15 and empty.chunk_reads == (0, 0)
    assert "no row matched" in report(empty)


def test_reads_label_and_region_one_chunk_at_a_time(edited, monkeypatch):
    reads = []
    original = zarr.Array.__getitem__

    def spy(self, selection):
        if self.path in ("label", "region"):
            reads.append((self.path, selection))
        return original(self, selection)

    monkeypatch.setattr(zarr.Array, "__getitem__", spy)
    diff_stores(*edited)
    assert reads
    for path, sel in reads:
        assert isinstance(sel, slice) and sel.stop - sel.start <= 10 and sel.start % 10 == 0, (path, sel)


def test_cli_report_json_and_csv(edited, tmp_path):
    a, b = edited
    r = invoke("diff", a, b, "--worst", 2)
    assert r.exit_code == 0, r.output  # differences are no error
    assert "15 rows matched by sample_id and frame_index, 0 only in A, 0 only in B; status changed in 1" in r.output
    assert "2 of the 4 matched rows that differ" in r.output and "ok -> no_face" in r.output
    ids = zarr.open_group(a)["meta/sample_id"][:]
    listed = [i for i in ids if i in r.output]
    assert 0 < len(listed) <= 2 and set(listed) <= {ids[k] for k in CHANGED}

    out = tmp_path / "rows.csv"
    r = invoke("diff", a, b, "--json", "--out", out)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert len(doc["rows"]) == 15 and doc["total"]["matched"] == 15
    row = next(x for x in doc["rows"] if x["row_a"] == LABEL_ROWS[0])
    la, lb = (zarr.open_group(u)["label"][row["row_a"] if u == a else row["row_b"]] > 0 for u in (a, b))
    assert row["channel_iou"]["live"] == pytest.approx(_iou(la[1], lb[1]), abs=1e-6) and row["channel_iou"]["live"] < 1
    assert row["channel_iou"]["attack"] is None
    failed = next(x for x in doc["rows"] if x["row_a"] == FAILED_ROW)
    ra, rb = (zarr.open_group(u)["region"][FAILED_ROW] for u in (a, b))
    skin = doc["regions"].index("skin")
    assert failed["region_iou"]["skin"] == pytest.approx(_iou(ra == skin, rb == skin), abs=1e-6) == 0
    bg = doc["regions"].index("background")
    assert failed["region_iou"]["background"] == pytest.approx(_iou(ra == bg, rb == bg), abs=1e-6)
    assert (failed["status_a"], failed["status_b"]) == ("ok", "no_face")
    with open(out, newline="") as f:
        lines = list(csv.DictReader(f))
    assert [x["sample_id"] for x in lines] == [x["sample_id"] for x in doc["rows"]]
    assert float(lines[LABEL_ROWS[0]]["channel_live"]) == row["channel_iou"]["live"]
    assert lines[LABEL_ROWS[0]]["channel_attack"] == ""


def test_different_datasets_sizes_and_non_stores_are_refused_in_one_line(sample_store, tmp_path):
    from pipelines.run import run

    a = sample_store[0]
    other = _copy(a, tmp_path / "other.zarr")
    root = zarr.open_group(other, mode="r+")
    root.attrs["config"] = {**root.attrs["config"], "dataset": "folder"}
    assert_one_line_error(invoke("diff", a, other), "different datasets", "'sample'", "'folder'")

    small = str(tmp_path / "small.zarr")
    run(sync_config(dataset="sample", root="", size=64, limit=3), small, cluster="none", progress=False)
    assert_one_line_error(invoke("diff", a, small), "crops of different sizes", "256", "64")

    assert_one_line_error(invoke("diff", a, tmp_path), "not a label store")
    assert_one_line_error(invoke("diff", tmp_path / "missing.zarr", a), "not a label store")
    assert_one_line_error(invoke("diff", a, a, "--out", tmp_path / "rows.txt"), ".csv or .json")
    assert_one_line_error(invoke("diff", a, other, "--out", f"{a}/rows.csv"), "lies inside store A")
