"""`annotate serve` finds the bad rows first: sorting by every numeric meta column (the quality signals
among them, NaN last either way), range filters against numpy, the histogram route against
numpy.histogram, the text column prior_worst_region as a filter, the legend's colours from the code
that draws them, and a store written before the quality signals. Source frames of failed rows:
test_serve_source.py; the page itself: test_serve_browser.py."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from annotator import store
from annotator.serve import create_app

SCHEMA_1 = Path(__file__).resolve().parents[1] / "data" / "schema1.zarr"
# known values for a copy of the sample store: the lowest at row 11, the highest at row 4, NaN at 2 and 7
CONFIDENCE = np.array([0.5, 0.7, np.nan, 0.3, 0.99, 0.45, 0.62, np.nan, 0.2, 0.8, 0.55, 0.01, 0.9, 0.35, 0.5],
                      np.float32)
FACE = np.array([0.9, 0.8, 0.95, 0.6, 0.85, 0.7, 0.75, 0.88, 0.65, 0.92, 0.81, 0.77, 0.9, 0.86, 0.69], np.float32)


def _write(url, column: str, values) -> None:
    with zarr.config.set(store.WRITE_CONFIG):
        zarr.open_group(url, mode="r+", use_consolidated=False)[f"meta/{column}"][:] = values


@pytest.fixture(scope="module")
def planted(sample_store, tmp_path_factory):
    """A copy of the sample store with known quality values: (test client, url)."""
    url = str(tmp_path_factory.mktemp("quality") / "qa.zarr")
    shutil.copytree(sample_store[0], url)
    _write(url, "landmark_confidence", CONFIDENCE)
    _write(url, "face_score", FACE)
    _write(url, "segmenter_iou", np.full(15, np.nan, np.float32))  # a signal no row has
    _write(url, "n_faces", np.array([1, 1, 2, 3, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1], np.int16))
    _write(url, "prior_worst_region", np.array(["eyes"] * 5 + ["skin"] * 8 + ["mouth"] * 2, dtype=object))
    return create_app(url).test_client(), url


def _rows(c, query: str) -> list[int]:
    got = c.get("/api/rows?per_page=500&" + query)
    assert got.status_code == 200, got.get_data(as_text=True)
    return [r["row"] for r in got.get_json()["rows"]]


def _meta(url, column: str) -> np.ndarray:
    return zarr.open_group(url, mode="r")[f"meta/{column}"][:].astype(np.float64)


def test_sorting_by_a_quality_signal_puts_the_lowest_first_and_nan_last(planted):
    c, url = planted
    up = _rows(c, "sort=landmark_confidence")
    down = _rows(c, "sort=landmark_confidence&order=desc")
    assert up[0] == 11 and up[-2:] == [2, 7]  # the lowest row first, the rows without a value last
    assert down[0] == 4 and down[-2:] == [2, 7]  # descending too: NaN is never "the highest"
    finite = np.argsort(CONFIDENCE, kind="stable")[:13]
    assert up == [*finite.tolist(), 2, 7] and down == [*finite[::-1].tolist(), 2, 7]
    tc = _meta(url, "temporal_consistency")  # the pipeline's own NaN rows: images have no neighbours
    order = _rows(c, "sort=temporal_consistency&order=desc")
    have = int(np.isfinite(tc).sum())
    assert np.isnan(tc[order[have:]]).all() and (np.diff(tc[order[:have]]) <= 0).all()
    sortable = c.get("/api/info").get_json()["choices"]["sort"]
    assert {"share_attack", "share_live", "share_background", "face_score", "landmark_confidence", "prior_agreement",
            "segmenter_iou", "temporal_consistency", "landmark_nme"} <= set(sortable)


@pytest.mark.parametrize("ranges, other", [
    (["landmark_confidence:0.3..0.62"], ""),
    (["landmark_confidence:..0.5"], ""),
    (["landmark_confidence:0.5.."], ""),
    (["landmark_confidence:.."], ""),
    (["landmark_confidence:nan"], ""),
    (["landmark_confidence:0.2..0.9", "face_score:0.88.."], "class=bonafide"),
    (["landmark_confidence:0.2..0.9", "landmark_confidence:0.5..1"], ""),
    (["n_faces:2..3"], ""),
    (["share_attack:0.01.."], "sort=temporal_consistency&order=desc"),
])
def test_a_range_filter_keeps_exactly_the_rows_numpy_selects(planted, ranges, other):
    c, url = planted
    keep = np.ones(15, bool)
    for text in ranges:
        column, spec = text.split(":")
        values = _meta(url, column)
        if spec == "nan":
            keep &= np.isnan(values)
        else:
            lo, hi = spec.split("..")
            keep &= (values >= (float(lo) if lo else -np.inf)) & (values <= (float(hi) if hi else np.inf))
    if "class=bonafide" in other:
        keep &= ~zarr.open_group(url, mode="r")["meta/is_attack"][:]
    query = "&".join(f"range={r}" for r in ranges) + (f"&{other}" if other else "")
    got = _rows(c, query)
    assert sorted(got) == np.nonzero(keep)[0].tolist() and keep.any()
    assert c.get("/api/rows?" + query).get_json()["total"] == int(keep.sum())


@pytest.mark.parametrize("query, text", [
    ("range=sample_id:0..1", "cannot filter a range of 'sample_id'"),
    ("range=face_score:abc..1", "the bounds must be numbers"),
    ("range=face_score:1..0", "LO must be a number at most HI"),
    ("range=face_score:nan..1", "LO must be a number at most HI"),
    ("range=face_score:0.5", "is not COLUMN:LO..HI"),
    ("range=nothing", "cannot filter a range of 'nothing'"),
    ("sort=prior_worst_region", "cannot sort by 'prior_worst_region'"),
    ("prior_worst_region=ears", "prior_worst_region 'ears' is not in the store"),
])
def test_bad_ranges_are_400_with_a_message(planted, query, text):
    c, _ = planted
    r = c.get("/api/rows?" + query)
    assert r.status_code == 400 and text in r.get_json()["error"], r.get_data(as_text=True)
    if not query.startswith("sort="):  # a histogram has no order
        r = c.get("/api/histogram?column=face_score&" + query)
        assert r.status_code == 400 and text in r.get_json()["error"]


def test_the_histogram_counts_are_numpy_histogram_s_over_the_same_rows(planted):
    c, url = planted
    lc, fs = _meta(url, "landmark_confidence"), _meta(url, "face_score")
    bonafide = ~zarr.open_group(url, mode="r")["meta/is_attack"][:]
    rows = bonafide & (fs >= 0.7)  # the filters' rows
    got = c.get("/api/histogram?column=landmark_confidence&bins=7&class=bonafide&range=face_score:0.7..").get_json()
    assert len(got["counts"]) == 7 and len(got["edges"]) == 8
    assert got["edges"][0] == np.nanmin(lc) and got["edges"][-1] == np.nanmax(lc)  # bins over every committed row
    chosen = lc[rows]
    assert got["counts"] == np.histogram(chosen[np.isfinite(chosen)], bins=np.array(got["edges"]))[0].tolist()
    assert got["nan"] == int(np.isnan(chosen).sum()) == 2 and got["total"] == int(rows.sum())
    # a column's own range is left out of its histogram (its brush can widen); the others' apply
    again = c.get("/api/histogram?column=landmark_confidence&bins=7&class=bonafide&range=face_score:0.7..&"
                  "range=landmark_confidence:0.4..0.5").get_json()
    assert again["counts"] == got["counts"]
    narrowed = c.get("/api/histogram?column=face_score&bins=7&range=landmark_confidence:0.4..0.5").get_json()
    keep = (lc >= 0.4) & (lc <= 0.5)
    assert sum(narrowed["counts"]) == int(keep.sum()) and narrowed["total"] == int(keep.sum())
    assert narrowed["counts"] == np.histogram(fs[keep], bins=np.array(narrowed["edges"]))[0].tolist()


def test_integer_columns_get_a_bin_per_value_and_a_signal_no_row_has_none(planted):
    c, _ = planted
    faces = c.get("/api/histogram?column=n_faces").get_json()
    assert faces["integer"] is True and faces["edges"] == [0.5, 1.5, 2.5, 3.5] and faces["counts"] == [12, 2, 1]
    assert _rows(c, "range=n_faces:2..2") == [2, 9]
    empty = c.get("/api/histogram?column=segmenter_iou").get_json()
    assert empty["edges"] == [] and empty["counts"] == [] and empty["nan"] == empty["total"] == 15
    for query, text in [("column=sample_id", "no histogram of 'sample_id'"), ("column=row", "no histogram of 'row'"),
                        ("column=face_score&bins=0", "bins must be 1 .. 200"),
                        ("column=face_score&bins=x", "bins take")]:
        r = c.get("/api/histogram?" + query)
        assert r.status_code == 400 and text in r.get_json()["error"], query


def test_prior_worst_region_filters_like_the_other_text_columns(planted):
    c, _ = planted
    choices = c.get("/api/info").get_json()["choices"]
    assert choices["prior_worst_region"] == ["eyes", "mouth", "skin"]
    assert _rows(c, "prior_worst_region=eyes") == [0, 1, 2, 3, 4]
    assert _rows(c, "prior_worst_region=mouth&sort=landmark_confidence") == [13, 14]


def test_the_legend_comes_from_the_colours_the_pictures_use(planted):
    from annotator.face.regions import REGION_COLOURS, REGION_NAMES
    from annotator.serve.render import COLOURS

    c, _ = planted
    legend = c.get("/api/info").get_json()["legend"]
    assert [(r["id"], r["name"], tuple(r["colour"])) for r in legend["regions"]] == \
        [(i, n, REGION_COLOURS[i]) for i, n in enumerate(REGION_NAMES)]
    assert [(ch["name"], tuple(ch["colour"])) for ch in legend["channels"]] == list(COLOURS.items())
    assert legend["depth"][0] == [0, 0, 255] and legend["depth"][-1] == [255, 0, 0]  # far blue, near red
    static = Path(create_app.__code__.co_filename).parent / "static"
    page = "".join(p.read_text() for p in static.iterdir())
    assert not any(f"{r}, {g}, {b}" in page or f"{r},{g},{b}" in page for r, g, b in REGION_COLOURS[1:])


def test_a_store_written_before_the_quality_signals_serves_without_them(tmp_path):
    url = tmp_path / "old.zarr"
    shutil.copytree(SCHEMA_1, url)
    c = create_app(str(url)).test_client()
    info = c.get("/api/info").get_json()
    names = [n["name"] for n in info["choices"]["numeric"]]
    assert "face_score" in names and "landmark_confidence" not in names and "prior_worst_region" not in info["choices"]
    r = c.get("/api/rows?sort=landmark_confidence")
    assert r.status_code == 400 and "cannot sort by 'landmark_confidence'" in r.get_json()["error"]
    assert c.get("/api/histogram?column=landmark_confidence").status_code == 400
    scores = zarr.open_group(str(url), mode="r")["meta/face_score"][:]
    assert _rows(c, "range=face_score:0.5..") == np.nonzero(scores >= 0.5)[0].tolist()
