"""`annotate serve`: every route, bad ids and queries, traversal attempts, flags and a read-only store."""

import io
import shutil

import numpy as np
import pytest
import zarr
from helpers import read_only
from PIL import Image

from annotator import qa
from annotator.errors import AnnotatorError
from annotator.serve import create_app


@pytest.fixture
def store_copy(sample_store, tmp_path):
    url, _ = sample_store
    copy = tmp_path / "qa.zarr"
    shutil.copytree(url, copy)
    return str(copy)


@pytest.fixture
def client(sample_store):
    url, _ = sample_store
    return create_app(url).test_client(), url


def _png(response) -> np.ndarray:
    assert response.status_code == 200 and response.mimetype == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.data)))


def _error(response, code: int, text: str) -> None:
    assert response.status_code == code, response.get_data(as_text=True)
    body = response.get_json()
    assert text in body["error"] and "Traceback" not in response.get_data(as_text=True)


def test_info_and_filters_page_and_sort_against_the_store(client):
    c, url = client
    root = zarr.open_group(url, mode="r")
    attack = root["meta/is_attack"][:]
    info = c.get("/api/info").get_json()
    assert info["n"] == 15 and info["allow_flags"] is False and info["pyramid"] == [1, 2, 4, 8, 16, 32]
    assert info["choices"]["attack_type"] == sorted(set(root["meta/attack_type"][:].tolist()))
    got = c.get("/api/rows?class=attack").get_json()
    assert got["total"] == int(attack.sum()) and [r["row"] for r in got["rows"]] == np.nonzero(attack)[0].tolist()
    assert {r["attack_type"] for r in c.get("/api/rows?attack_type=print").get_json()["rows"]} == {"print"}
    score = root["meta/face_score"][:]
    order = [r["row"] for r in c.get("/api/rows?sort=face_score&order=desc&per_page=500").get_json()["rows"]]
    assert order == np.argsort(score, kind="stable")[::-1].tolist()
    page = c.get("/api/rows?per_page=4&page=2").get_json()
    assert [r["row"] for r in page["rows"]] == [4, 5, 6, 7] and page["pages"] == 4
    assert c.get("/api/rows?status=ok").get_json()["total"] == int((root["meta/status"][:] == 0).sum())


@pytest.mark.parametrize("query, code, text", [
    ("page=9", 404, "page 9 is out of range 1 .. 1"),
    ("page=x", 400, "whole numbers"),
    ("per_page=0", 400, "per_page must be 1 .. 500"),
    ("attack_type=lego", 400, "attack_type 'lego' is not in the store"),
    ("status=sleepy", 400, "status 'sleepy' is unknown"),
    ("sort=sample_id", 400, "cannot sort by 'sample_id'"),
    ("order=up", 400, "order 'up' is unknown"),
    ("group=train", 400, "group needs a protocol"),
    ("protocol=p9", 400, "protocol 'p9' is not in the store"),
    ("flag=maybe", 400, "flag 'maybe' is unknown"),
    ("class=robot", 400, "class 'robot' is unknown"),
])
def test_bad_queries_are_4xx_with_a_message(client, query, code, text):
    c, _ = client
    _error(c.get("/api/rows?" + query), code, text)


def test_sample_thumbnail_and_layers_come_from_the_store(client):
    c, url = client
    root = zarr.open_group(url, mode="r")
    raw = c.get("/api/rows/12").get_data(as_text=True)
    assert "NaN" not in raw  # the meta row holds NaN (landmark_nme unchecked): JSON has no NaN
    one = c.get("/api/rows/12").get_json()
    assert one["meta"]["landmark_nme"] is None
    assert one["meta"]["sample_id"] == root["meta/sample_id"][12] and one["qa"]["flag"] == "none"
    assert np.allclose(one["landmarks"], root["landmarks"][12][:, :2], atol=0.051)
    plain, label = _png(c.get("/thumb/12.png")), _png(c.get("/thumb/12.png?overlay=label"))
    assert plain.shape == (128, 128, 3) and not np.array_equal(plain, label)
    assert np.array_equal(_png(c.get("/layer/12/image.png")), root["image"][12])
    attack = _png(c.get("/layer/12/attack.png"))
    assert attack.shape == (256, 256, 4) and np.array_equal(attack[..., 3], root["label"][12][0])
    assert np.array_equal(_png(c.get("/layer/12/region.png"))[..., 3] > 0, root["region"][12] > 0)
    assert _png(c.get("/layer/12/pyramid-8.png")).shape == (96, 96, 3)
    _error(c.get("/api/rows/15"), 404, "row 15 is outside the store (0 .. 14)")
    _error(c.get("/api/rows/-1"), 404, "not found")
    _error(c.get("/api/rows/abc"), 404, "not found")
    _error(c.get("/thumb/99.png"), 404, "outside the store")
    _error(c.get("/thumb/1.png?overlay=xray"), 400, "overlay 'xray' is unknown")
    _error(c.get("/layer/1/secret.png"), 400, "layer 'secret' is unknown")
    _error(c.get("/api/nothing"), 404, "not found")
    _error(c.post("/api/info"), 405, "not allowed")


@pytest.mark.parametrize("path", ["/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py",
                                  "/static/%2e%2e%2f%2e%2e%2fstore.py", "/static//etc/passwd",
                                  "/layer/1/..%2f..%2fzarr.json.png"])
def test_no_route_reads_outside_the_store_or_the_page(client, path):
    c, _ = client
    r = c.get(path, follow_redirects=True)  # werkzeug merges "//" by redirecting: follow it
    assert r.status_code in (400, 404) and b"import" not in r.data and b"root:" not in r.data
    assert c.get("/static/app.js").status_code == 200 and c.get("/").status_code == 200


def test_a_read_only_server_refuses_flags_and_writes_nothing(store_copy):
    c = create_app(store_copy).test_client()
    _error(c.post("/api/rows/3/flag", json={"flag": "bad"}), 403, "read-only")
    assert "qa" not in zarr.open_group(store_copy, mode="r")


def test_flags_write_the_qa_group_only_and_the_tools_see_them(store_copy):
    from annotator.contents import read_contents
    from annotator.verify import verify
    from trainer.data import select

    def arrays_bytes():
        from pathlib import Path

        root = Path(store_copy)
        return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and "qa" not in p.relative_to(root).parts
                and p.name != "zarr.json"}

    before = arrays_bytes()
    c = create_app(store_copy, allow_flags=True).test_client()
    assert c.get("/api/info").get_json()["allow_flags"] is True
    r = c.post("/api/rows/3/flag", json={"flag": "bad", "note": "mask misses the ear"})
    assert r.status_code == 200 and r.get_json()["qa"]["flag"] == "bad"
    assert c.post("/api/rows/5/flag", json={"flag": "good"}).status_code == 200
    _error(c.post("/api/rows/5/flag", json={"flag": "meh"}), 400, '"flag": "bad" | "good" | "none"')
    _error(c.post("/api/rows/5/flag", data="not json"), 400, "send JSON")
    _error(c.post("/api/rows/50/flag", json={"flag": "bad"}), 404, "outside the store")
    root = zarr.open_group(store_copy, mode="r")
    flags = root["qa/flag"][:]
    assert flags.tolist() == [0, 0, 0, 1, 0, 2] + [0] * 9 and str(root["qa/note"][3]) == "mask misses the ear"
    assert arrays_bytes() == before  # no other array's bytes changed
    assert [x["row"] for x in c.get("/api/rows?flag=bad").get_json()["rows"]] == [3]
    assert c.get("/api/rows/3").get_json()["qa"]["note"] == "mask misses the ear"
    assert read_contents(store_copy).flags == {"bad": 1, "good": 1}
    assert "qa flags: bad 1, good 1" in read_contents(store_copy).text()
    assert verify(store_copy, "full").problems == []
    rows = select([store_copy], "all", "train", exclude_flagged=True).parts[0].rows.tolist()
    assert 3 not in rows and 5 in rows and len(rows) == 14
    c.post("/api/rows/3/flag", json={"flag": "none"})
    assert zarr.open_group(store_copy, mode="r")["qa/flag"][3] == 0


def test_a_read_only_store_serves_but_refuses_flags(store_copy):
    from pathlib import Path

    with read_only(Path(store_copy)):
        assert create_app(store_copy).test_client().get("/api/info").status_code == 200
        with pytest.raises(AnnotatorError, match="--allow-flags needs a writable store"):
            create_app(store_copy, allow_flags=True)
    assert "qa" not in zarr.open_group(store_copy, mode="r")


def test_an_unforeseen_failure_is_a_500_message_not_a_traceback(client, monkeypatch):
    from annotator.serve import render

    c, _ = client
    monkeypatch.setattr(render.Renderer, "thumbnail", lambda self, i, kind: 1 / 0)
    _error(c.get("/thumb/1.png"), 500, "internal error (ZeroDivisionError)")


def test_the_qa_group_round_trips_through_the_library(store_copy):
    saved = qa.set_flag(store_copy, 7, "good", "crisp")
    root = zarr.open_group(store_copy, mode="r")
    assert qa.row_flag(root, 7) == saved and qa.counts(root) == {"bad": 0, "good": 1}
    with pytest.raises(AnnotatorError, match="unknown flag 'ok'"):
        qa.set_flag(store_copy, 7, "ok")


def test_a_second_start_reads_the_columns_from_the_cache(store_copy, tmp_path, monkeypatch):
    from annotator import store
    from annotator.serve.catalog import Catalog

    monkeypatch.setenv("ANNOTATOR_CACHE", str(tmp_path / "cache"))
    first = Catalog(store.open_store(store_copy), store_copy)
    saved = sorted(p.name for p in (tmp_path / "cache").rglob("*.npy"))
    assert "sample_id.buffer.npy" in saved and "attack_type.codes.npy" in saved and "status.npy" in saved
    root = store.open_store(store_copy)

    class NoMeta(dict):  # any read of a meta column would fail: everything must come from the cache
        def __getitem__(self, name):
            raise AssertionError(f"read meta/{name}")

        def __contains__(self, name):
            return name in root["meta"]

    class Root:
        attrs = root.attrs

        def __getitem__(self, name):
            return NoMeta() if name == "meta" else root[name]

        def __contains__(self, name):
            return name in root

    second = Catalog(Root(), store_copy)
    for q in ({"class": "attack"}, {"attack_type": "print"}, {"status": "ok", "sort": "status"}):
        assert second.query(q).tolist() == first.query(q).tolist()
    assert [second.sample_ids[i] for i in range(15)] == [first.sample_ids[i] for i in range(15)]
    qa.set_flag(store_copy, 2, "bad")  # the metadata changed: a new cache key, nothing stale served
    third = Catalog(store.open_store(store_copy), store_copy)
    assert third.flags[2] == 1 and len({p.parent for p in (tmp_path / "cache").rglob("*.npy")}) == 2
