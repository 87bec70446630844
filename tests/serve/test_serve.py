"""`annotate serve`: every route, bad ids and queries, traversal attempts, flags and a read-only store,
a store still being written (only committed rows), Host checks, and the command's one-line errors.
Flags from several processes at once: test_serve_concurrency.py."""

import io
import shutil

import numpy as np
import pytest
import zarr
from helpers import read_only
from PIL import Image

from annotator.store import qa
from annotator.core.errors import AnnotatorError
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


def _sid(url, row: int) -> str:
    return str(zarr.open_group(url, mode="r")["meta/sample_id"][row])


def _flag(c, url, row: int, flag: str, note: str = ""):
    """POST a flag as the page does: with the sample_id it showed for the row."""
    return c.post(f"/api/rows/{row}/flag", json={"flag": flag, "note": note, "sample_id": _sid(url, row)})


def _qa_bytes(url) -> dict:
    from pathlib import Path

    qa_dir = Path(url) / "qa"
    return {p.relative_to(qa_dir): p.read_bytes() for p in qa_dir.rglob("*") if p.is_file()} if qa_dir.is_dir() else {}


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
    _error(_flag(c, store_copy, 3, "bad"), 403, "read-only")
    assert "qa" not in zarr.open_group(store_copy, mode="r")


def test_flags_write_the_qa_group_only_and_the_tools_see_them(store_copy):
    from annotator.store.contents import read_contents
    from annotator.store.verify import verify
    from fas_train.selection import select

    def arrays_bytes():
        from pathlib import Path

        root = Path(store_copy)
        return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and "qa" not in p.relative_to(root).parts
                and p.name != "zarr.json"}

    before = arrays_bytes()
    c = create_app(store_copy, allow_flags=True).test_client()
    assert c.get("/api/info").get_json()["allow_flags"] is True
    r = _flag(c, store_copy, 3, "bad", "mask misses the ear")
    assert r.status_code == 200 and r.get_json()["qa"]["flag"] == "bad"
    assert _flag(c, store_copy, 5, "good").status_code == 200
    _error(_flag(c, store_copy, 5, "meh"), 400, '"flag": "bad" | "good" | "none"')
    _error(c.post("/api/rows/5/flag", data="not json"), 400, "send JSON")
    _error(c.post("/api/rows/5/flag", json={"flag": "bad"}), 400, "send the row's sample_id")
    _error(c.post("/api/rows/50/flag", json={"flag": "bad", "sample_id": "x"}), 404, "outside the store")
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
    _flag(c, store_copy, 3, "none")
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
    folders = {p.parent for p in (tmp_path / "cache").rglob("*.npy")}
    assert third.flags[2] == 1 and folders == {third.cache.folder} != {first.cache.folder}  # the old state is pruned


# ---------------------------------------------------------------- flags: refused before anything is written

@pytest.mark.parametrize("body, code, text", [
    ('{"flag": "bad", "note": "lip \\ud800 edge", "sample_id": "%s"}', 400, "lone surrogate"),
    ('{"flag": "bad", "note": "%s", "sample_id": "%%s"}' % ("x" * 2001), 400, "2001 characters"),
    ('{"flag": "bad", "note": 7, "sample_id": "%s"}', 400, "the note must be text"),
    ('{"flag": "bad", "note": "late", "sample_id": "bonafide/somebody_else.jpg"}', 409, "now holds sample"),
])
def test_a_refused_flag_writes_nothing(store_copy, body, code, text):
    c = create_app(store_copy, allow_flags=True).test_client()
    assert _flag(c, store_copy, 4, "good", "first").status_code == 200  # the group exists: its bytes are compared
    before = _qa_bytes(store_copy)
    body = body % _sid(store_copy, 3) if "%s" in body else body
    _error(c.post("/api/rows/3/flag", data=body, content_type="application/json"), code, text)
    assert _qa_bytes(store_copy) == before
    assert qa.read_row(store_copy, 3) == {"flag": "none", "note": "", "time": ""}
    assert [r["row"] for r in c.get("/api/rows?flag=any").get_json()["rows"]] == [4]


def test_a_stale_first_flag_creates_no_group(store_copy):
    c = create_app(store_copy, allow_flags=True).test_client()
    r = c.post("/api/rows/3/flag", json={"flag": "bad", "sample_id": "bonafide/not_this_one.jpg"})
    _error(r, 409, "reload the page")
    assert "qa" not in zarr.open_group(store_copy, mode="r") and qa.saved_flags(store_copy) == {}


def test_a_flag_left_half_written_by_a_crash_is_finished(store_copy):
    import json
    from pathlib import Path

    qa.set_flag(store_copy, 1, "good", "kept")
    journal = Path(store_copy) / "qa" / qa.JOURNAL_FILE  # what a server that died mid-write leaves
    journal.write_text(json.dumps({"rows": [6], "flag": [1], "note": ["glare"], "time": ["2024-01-01T00:00:00+00:00"]}))
    sid6 = _sid(store_copy, 6)
    assert qa.saved_flags(store_copy)[sid6] == (1, "glare", "2024-01-01T00:00:00+00:00")  # counted before it lands
    qa.set_flag(store_copy, 2, "bad")  # the next write finishes it first
    assert not journal.exists() and qa.read_row(store_copy, 6)["note"] == "glare"
    assert zarr.open_group(store_copy, mode="r")["qa/flag"][:].tolist()[:7] == [0, 2, 1, 0, 0, 0, 1]


# ---------------------------------------------------------------- a store still being written

def _reopen(url, shard: int) -> bytes:
    """Take shard's commit marker away (as during `annotate run`); returns it to put back."""
    from pathlib import Path

    marker = Path(url) / "_shards" / f"{shard:06d}.json"
    content = marker.read_bytes()
    marker.unlink()
    return content


def test_only_committed_rows_are_served_and_new_commits_show_without_restart(store_copy):
    from pathlib import Path

    from annotator import store

    root = zarr.open_group(store_copy, mode="r")
    attack, status, types = root["meta/is_attack"][:], root["meta/status"][:], root["meta/attack_type"][:]
    marker = _reopen(store_copy, 1)  # rows 10..14 pending
    real = {name: root[name][10:15] for name in ("image", "meta/attack_type", "meta/is_attack")}
    with zarr.config.set(store.WRITE_CONFIG):  # pending rows as a run leaves them: fill values
        w = zarr.open_group(store_copy, mode="r+", use_consolidated=False)
        w["image"][10:15] = 0
        w["meta/attack_type"][10:15] = np.array([""] * 5, dtype=object)
        w["meta/is_attack"][10:15] = False
    c = create_app(store_copy, allow_flags=True, refresh_s=0).test_client()
    info = c.get("/api/info").get_json()
    assert info["n"] == 15 and info["committed"] == 10 and "" not in info["choices"]["attack_type"]
    assert info["choices"]["attack_type"] == sorted(set(types[:10].tolist()))
    listed = c.get("/api/rows?per_page=500").get_json()
    assert listed["total"] == 10 and [r["row"] for r in listed["rows"]] == list(range(10))
    assert c.get("/api/rows?class=bonafide").get_json()["total"] == int((attack[:10] == 0).sum())
    assert c.get("/api/rows?status=ok").get_json()["total"] == int((status[:10] == 0).sum())
    assert c.get("/api/rows?flag=none").get_json()["total"] == 10
    _error(c.get("/thumb/12.png"), 409, "row 12 is not committed yet")
    _error(c.get("/api/rows/12"), 409, "not committed yet")
    _error(c.get("/layer/12/image.png"), 409, "not committed yet")
    _error(c.post("/api/rows/12/flag", json={"flag": "bad", "sample_id": _sid(store_copy, 12)}), 409, "not committed")
    with pytest.raises(qa.NotCommitted, match="not committed yet"):  # the library refuses it too
        qa.set_flag(store_copy, 12, "bad")
    assert "qa" not in zarr.open_group(store_copy, mode="r")

    with zarr.config.set(store.WRITE_CONFIG):  # the run writes the shard (a new attack type among it), then commits
        w["image"][10:15] = real["image"]
        w["meta/attack_type"][10:15] = np.array(["mask3d", *real["meta/attack_type"][1:].tolist()], dtype=object)
        w["meta/is_attack"][10:15] = real["meta/is_attack"]
    _error(c.get("/thumb/12.png"), 409, "not committed yet")  # written but not committed: still pending
    (Path(store_copy) / "_shards" / "000001.json").write_bytes(marker)
    info = c.get("/api/info").get_json()
    assert info["committed"] == 15 and "mask3d" in info["choices"]["attack_type"]
    assert c.get("/api/rows?per_page=500").get_json()["total"] == 15
    assert [r["row"] for r in c.get("/api/rows?attack_type=mask3d").get_json()["rows"]] == [10]
    assert c.get("/api/rows?class=attack").get_json()["total"] == int(attack[:10].sum() + real["meta/is_attack"].sum())
    assert np.array_equal(_png(c.get("/layer/12/image.png")), real["image"][2])  # not a black picture
    assert c.get("/api/rows?per_page=500").get_json()["rows"][12]["sample_id"] == _sid(store_copy, 12)
    assert _flag(c, store_copy, 12, "bad", "now it can be").status_code == 200
    assert qa.read_row(store_copy, 12)["note"] == "now it can be"


def test_the_column_cache_never_serves_rows_read_before_their_commit(store_copy, tmp_path, monkeypatch):
    from pathlib import Path

    from annotator import store
    from annotator.serve.catalog import Catalog

    monkeypatch.setenv("ANNOTATOR_CACHE", str(tmp_path / "cache"))
    types = zarr.open_group(store_copy, mode="r")["meta/attack_type"][:]
    marker = _reopen(store_copy, 1)
    with zarr.config.set(store.WRITE_CONFIG):
        w = zarr.open_group(store_copy, mode="r+", use_consolidated=False)
        w["meta/attack_type"][10:15] = np.array([""] * 5, dtype=object)
    pending = Catalog(store.open_store(store_copy), store_copy)
    assert pending.cache.folder is not None and pending.query({}).tolist() == list(range(10))
    with zarr.config.set(store.WRITE_CONFIG):
        zarr.open_group(store_copy, mode="r+", use_consolidated=False)["meta/attack_type"][10:15] = types[10:15]
    (Path(store_copy) / "_shards" / "000001.json").write_bytes(marker)
    later = Catalog(store.open_store(store_copy), store_copy)  # a restart: another committed set, another key
    assert later.cache.folder != pending.cache.folder
    values, codes = later.codes["attack_type"]
    assert [values[k] for k in codes[10:15]] == types[10:15].tolist()


def test_flags_written_by_another_process_show_in_the_filters(store_copy):
    c = create_app(store_copy, allow_flags=True, refresh_s=0).test_client()
    assert c.get("/api/rows?flag=any").get_json()["total"] == 0
    qa.set_flag(store_copy, 8, "bad", "from the other server")  # not through this app
    assert [r["row"] for r in c.get("/api/rows?flag=bad").get_json()["rows"]] == [8]
    qa.set_flag(store_copy, 8, "none")
    assert c.get("/api/rows?flag=any").get_json()["total"] == 0


# ---------------------------------------------------------------- Host header, errors before the app

@pytest.mark.parametrize("host, code", [
    ("localhost", 200), ("localhost:8765", 200), ("127.0.0.1:8765", 200), ("[::1]:8765", 200), ("LOCALHOST.", 200),
    ("evil.example.com", 403), ("evil.example.com:8765", 403), ("127.0.0.1.evil.example.com", 403),
    ("0.0.0.0:8765", 403),
])
def test_only_loopback_names_are_answered(client, host, code):
    c, _ = client
    for path in ("/api/info", "/thumb/1.png", "/", "/api/rows/1"):
        r = c.get(path, headers={"Host": host})
        assert r.status_code == code, (path, host, r.status_code)
    if code == 403:
        _error(c.get("/api/rows/1", headers={"Host": host}), 403, "--allowed-host")


def test_a_flag_from_another_host_name_is_refused_and_writes_nothing(store_copy):
    c = create_app(store_copy, allow_flags=True).test_client()
    r = c.post("/api/rows/3/flag", json={"flag": "bad", "sample_id": _sid(store_copy, 3)},
               headers={"Host": "evil.example.com"})
    _error(r, 403, "does not answer to the host")
    assert "qa" not in zarr.open_group(store_copy, mode="r")


def test_host_and_allowed_hosts_are_answered(sample_store):
    url, _ = sample_store
    c = create_app(url, host="0.0.0.0", allowed_hosts=["qa.lab.example"]).test_client()
    assert c.get("/api/info", headers={"Host": "qa.lab.example:8765"}).status_code == 200
    assert c.get("/api/info", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert c.get("/api/info", headers={"Host": "other.lab.example"}).status_code == 403
    c = create_app(url, host="10.1.2.3").test_client()
    assert c.get("/api/info", headers={"Host": "10.1.2.3:8765"}).status_code == 200


def test_a_request_line_too_long_is_a_json_414(sample_store):
    import json
    import socket
    import threading

    from annotator.serve.app import make_http_server

    srv = make_http_server(create_app(sample_store[0]), "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", srv.server_port), timeout=10) as s:
            s.sendall(b"GET /api/rows?" + b"a" * 70000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 414") or head.startswith(b"HTTP/1.0 414"), head
        assert b"Content-Type: application/json" in head
        assert "414" in json.loads(body)["error"]
    finally:
        srv.shutdown()
        srv.server_close()


def _cli(*args):
    from click.testing import CliRunner

    from pipelines.cli import cli

    return CliRunner().invoke(cli, ["serve", *map(str, args)])


def _one_line(result, *fragments):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize("port", [-1, 0, 65536, 99999])
def test_a_bad_port_is_a_one_line_error_before_any_work(tmp_path, port):
    _one_line(_cli(tmp_path / "missing.zarr", "--port", port), f"--port {port} is not a TCP port", "1 .. 65535")
    assert "1 .. 65535" in _cli("--help").output


def test_a_wildcard_host_needs_allowed_hosts(tmp_path):
    _one_line(_cli(tmp_path / "missing.zarr", "--host", "0.0.0.0"), "--allowed-host NAME")
    _one_line(_cli(tmp_path / "missing.zarr", "--host", "::"), "--allowed-host NAME")
    _one_line(_cli(tmp_path / "missing.zarr", "--host", "0.0.0.0", "--allowed-host", "http://x/"), "is not a host name")
    _one_line(_cli(tmp_path / "missing.zarr", "--host", "0.0.0.0", "--allowed-host", "qa.lab"), "does not exist")


def test_a_folder_that_is_not_a_store_is_named_so(tmp_path, sample_store):
    (tmp_path / "photos").mkdir()
    result = _cli(tmp_path / "photos")
    _one_line(result, "is not a label store", "annotate run")
    assert "--repair" not in result.output
    shutil.copytree(sample_store[0], tmp_path / "runs" / "wmca.zarr")
    _one_line(_cli(tmp_path / "runs"), "is not a label store", str(tmp_path / "runs" / "wmca.zarr"))
    _one_line(_cli(tmp_path / "nothing-here"), "does not exist")


def test_a_store_re_created_under_the_server_is_followed(store_copy, tmp_path):
    """`annotate run --overwrite` while the page is open: another store_id, other samples per row."""
    import os
    import uuid
    from pathlib import Path

    from annotator import store

    c = create_app(store_copy, allow_flags=True, refresh_s=0).test_client()
    old_ids = [r["sample_id"] for r in c.get("/api/rows?per_page=500").get_json()["rows"]]
    assert _png(c.get("/thumb/3.png")).shape == (128, 128, 3)  # cached pictures of the old store
    new = tmp_path / "new.zarr"
    shutil.copytree(store_copy, new)
    root = zarr.open_group(new, mode="r+", use_consolidated=False)
    with zarr.config.set(store.WRITE_CONFIG):
        root["meta/sample_id"][:] = root["meta/sample_id"][:][::-1]
        root["image"][3:4] = np.full((1, *root["image"].shape[1:]), 77, np.uint8)
    root.attrs["store_id"] = uuid.uuid4().hex
    (new / "_shards" / "000001.json").unlink()  # the new run has committed shard 0 only
    store.finalize(str(new))
    shutil.rmtree(store_copy)
    os.replace(new, store_copy)

    listed = c.get("/api/rows?per_page=500").get_json()
    assert listed["committed"] == 10 and [r["sample_id"] for r in listed["rows"]] == old_ids[::-1][:10]
    assert (_png(c.get("/layer/3/image.png")) == 77).all()  # not the old store's picture
    _error(c.get("/thumb/12.png"), 409, "not committed yet")
    r = c.post("/api/rows/3/flag", json={"flag": "bad", "sample_id": old_ids[3]})  # what the open page shows
    _error(r, 409, "now holds sample")
    assert not (Path(store_copy) / "qa" / "flag").exists()

    other = tmp_path / "other.zarr"  # re-created with another row count: cannot be followed
    shutil.copytree(store_copy, other)
    root = zarr.open_group(other, mode="r+", use_consolidated=False)
    root["image"].resize((14, *root["image"].shape[1:]))
    root.attrs["store_id"] = uuid.uuid4().hex
    store.finalize(str(other))
    shutil.rmtree(store_copy)
    os.replace(other, store_copy)
    _error(c.get("/api/rows"), 409, "restart `annotate serve`")


def test_a_look_at_markers_that_did_not_change_lists_nothing(store_copy, monkeypatch):
    """A store of 30,000 shards costs ~0.4 s to list: an unchanged _shards folder is not listed again."""
    import os
    import time
    from pathlib import Path

    from annotator import store
    from annotator.serve.catalog import Catalog

    marker = _reopen(store_copy, 1)
    folder = Path(store_copy) / "_shards"
    an_hour_ago = time.time() - 3600
    os.utime(folder, (an_hour_ago, an_hour_ago))
    catalog = Catalog(store.open_store(store_copy), store_copy, refresh_s=0)
    listed, real = [], store.committed_ids
    monkeypatch.setattr(store, "committed_ids", lambda url: listed.append(url) or real(url))
    assert catalog.refresh() is False and listed == [] and catalog.n_committed == 10
    (folder / "000001.json").write_bytes(marker)
    assert catalog.refresh() is True and len(listed) == 1 and catalog.n_committed == 15
