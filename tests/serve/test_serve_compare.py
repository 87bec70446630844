"""`annotate serve A --compare B` and `--audit audit.csv`: B's layer and the row's IoUs (checked against
plain numpy), a sample B lacks, a B of another crop size refused; the audit's columns sort (worst
first), filter by range and text, draw histograms, and a table of another store is refused."""

import csv
import io
import math
import shutil

import numpy as np
import pytest
import zarr
from helpers import assert_one_line_error, invoke, sync_config
from PIL import Image

from annotator import store
from annotator.core.errors import AnnotatorError
from annotator.serve import create_app


@pytest.fixture(scope="module")
def pair(sample_store, tmp_path_factory):
    """(A url, B url, row whose labels B changed, row whose sample B lacks): B a copy of the sample
    store with the attack channel of one row cut in half and another row's sample renamed."""
    a = sample_store[0]
    b = str(tmp_path_factory.mktemp("compare") / "b.zarr")
    shutil.copytree(a, b)
    root = zarr.open_group(a, mode="r")
    attacks = np.flatnonzero(root["meta/is_attack"][:])
    changed, gone = int(attacks[0]), int(attacks[1])
    with zarr.config.set(store.WRITE_CONFIG):
        w = zarr.open_group(b, mode="r+", use_consolidated=False)
        label = w["label"][changed]
        label[0, :, : label.shape[-1] // 2] = 0
        w["label"][changed] = label
        region = w["region"][changed]
        region[: region.shape[0] // 3] = 0
        w["region"][changed] = region
        w["meta/sample_id"][gone:gone + 1] = np.array(["elsewhere/other.jpg"], dtype=object)
    return a, b, changed, gone


def _iou(x: np.ndarray, y: np.ndarray) -> float | None:
    union = int((x | y).sum())
    return None if union == 0 else round(float((x & y).sum() / union), 6)


def test_compare_shows_b_layer_and_numpy_ious(pair):
    a, b, row, gone = pair
    c = create_app(a, compare=b).test_client()
    assert c.get("/api/info").get_json()["compare"] == b
    data = c.get(f"/api/compare/{row}").get_json()
    ra, rb = zarr.open_group(a, mode="r"), zarr.open_group(b, mode="r")
    assert data["b_row"] == row and data["sample_id"] == str(ra["meta/sample_id"][row])
    la, lb = ra["label"][row] > 0, rb["label"][row] > 0
    channels = list(ra.attrs.get("label_channels", ["attack", "live", "background"]))
    want = {name: _iou(la[k], lb[k]) for k, name in enumerate(channels)}
    assert data["channel_iou"] == pytest.approx(want)
    assert data["channel_iou"]["attack"] < 1  # B's change shows
    ga, gb = ra["region"][row], rb["region"][row]
    names = list(ra.attrs["region_names"])
    assert data["region_iou"] == pytest.approx({n: _iou(ga == i, gb == i) for i, n in enumerate(names)})
    kept = [v for v in want.values() if v is not None]
    assert data["mean_channel_iou"] == pytest.approx(sum(kept) / len(kept), abs=1e-6)

    r = c.get(f"/compare/{row}/attack.png")  # B's layer, not A's
    assert r.status_code == 200 and r.mimetype == "image/png"
    alpha = np.asarray(Image.open(io.BytesIO(r.data)))[..., 3]
    assert np.array_equal(alpha, rb["label"][row][0])
    assert not np.array_equal(alpha, ra["label"][row][0])

    missing = c.get(f"/api/compare/{gone}").get_json()
    assert missing["b_row"] is None and missing["channel_iou"] is None
    r = c.get(f"/compare/{gone}/image.png")
    assert r.status_code == 404 and "not in B" in r.get_json()["error"]
    assert c.get(f"/compare/{row}/nonsense.png").status_code == 400


def test_compare_routes_404_without_compare(sample_store):
    c = create_app(sample_store[0]).test_client()
    assert c.get("/api/info").get_json()["compare"] is None
    r = c.get("/api/compare/0")
    assert r.status_code == 404 and "--compare" in r.get_json()["error"]


def test_compare_of_another_crop_size_is_refused(sample_store, tmp_path):
    from pipelines.run import run

    small = str(tmp_path / "small.zarr")
    run(sync_config(dataset="sample", root="", size=64, limit=3), small, cluster="none", progress=False)
    with pytest.raises(AnnotatorError, match="crops of different sizes"):
        create_app(sample_store[0], compare=small)
    assert_one_line_error(invoke("serve", sample_store[0], "--compare", small), "--compare", "256", "64")


def _audit(path, store_id: str, scores: dict) -> str:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["store_id", "sample_id", "frame_index", "fold", "label_quality", "worst_region",
                    "worst_region_quality"])
        for sid, (lq, region, wq) in scores.items():
            w.writerow([store_id, sid, -1, 0, lq, region, wq])
    return str(path)


def test_audit_columns_sort_filter_and_histogram(sample_store, tmp_path):
    url = sample_store[0]
    root = zarr.open_group(url, mode="r")
    ids = [str(s) for s in root["meta/sample_id"][:]]
    scores = {ids[4]: (0.1, "nose", 0.05), ids[1]: (0.5, "left_eye", 0.3), ids[7]: (0.9, "mouth", 0.8)}
    path = _audit(tmp_path / "audit.csv", root.attrs["store_id"], scores)
    c = create_app(url, audit=path).test_client()
    info = c.get("/api/info").get_json()["choices"]
    assert {"label_quality", "worst_region_quality"} <= set(info["sort"])
    assert {"nose", "left_eye", "mouth"} <= set(info["worst_region"])
    rows = c.get("/api/rows?sort=worst_region_quality&per_page=500").get_json()["rows"]
    assert [r["row"] for r in rows[:3]] == [4, 1, 7]  # the known worst first, the rows it lacks (NaN) last
    assert len(rows) == len(ids)
    down = c.get("/api/rows?sort=label_quality&order=desc").get_json()["rows"]
    assert [r["row"] for r in down[:3]] == [7, 1, 4]
    kept = c.get("/api/rows?range=label_quality:0.2..0.95").get_json()
    assert sorted(r["row"] for r in kept["rows"]) == [1, 7]
    assert [r["row"] for r in c.get("/api/rows?worst_region=nose").get_json()["rows"]] == [4]
    nan = c.get("/api/rows?range=label_quality:nan").get_json()
    assert nan["total"] == len(ids) - 3
    hist = c.get("/api/histogram?column=label_quality").get_json()
    assert sum(hist["counts"]) == 3 and hist["nan"] == len(ids) - 3 and not hist["integer"]
    assert math.isclose(hist["edges"][0], 0.1) and math.isclose(hist["edges"][-1], 0.9)


def test_audit_of_another_store_is_refused(sample_store, tmp_path):
    url = sample_store[0]
    store_id = zarr.open_group(url, mode="r").attrs["store_id"]
    path = _audit(tmp_path / "audit.csv", "someone-else", {"x.jpg": (0.5, "nose", 0.5)})
    with pytest.raises(AnnotatorError) as e:
        create_app(url, audit=path)
    assert "someone-else" in str(e.value) and store_id in str(e.value)
    assert_one_line_error(invoke("serve", url, "--audit", path), "someone-else", store_id)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    assert_one_line_error(invoke("serve", url, "--audit", tmp_path / "bad.csv"), "lacks the column")
