"""Two real `annotate serve --allow-flags` processes on one store, flagging interleaved rows (first
flags at the same moment) through HTTP as the page does: every flag and note reads back from the
store, and each server's filters show the other's flags."""

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import zarr

from annotator.store import qa

REPO = Path(__file__).resolve().parents[2]

SERVER = r"""
import sys
from annotator.serve import create_app
from annotator.serve.app import make_http_server
srv = make_http_server(create_app(sys.argv[1], allow_flags=True, refresh_s=0), "127.0.0.1", 0)
print(srv.server_port, flush=True)
srv.serve_forever()
"""


def _store(url: str, n: int = 240, shard: int = 120) -> list[str]:
    """A committed store of n rows in shards of `shard` (so both servers share each qa chunk); its sample ids."""
    from annotator import store

    store.create(url, n, 16, shard, [], {"config": {"dataset": "synthetic"}})
    ids = [f"synthetic/{i:04d}.png" for i in range(n)]
    with zarr.config.set(store.WRITE_CONFIG):
        root = zarr.open_group(url, mode="r+")
        root["meta/sample_id"][:] = np.array(ids, dtype=object)
        root["meta/attack_type"][:] = np.full(n, "print", dtype=object)
    for sh in store.plan_shards(n, shard):
        store.commit(url, sh, {"failed": []})
    store.finalize(url)
    return ids


@pytest.fixture
def two_servers(tmp_path):
    url = str(tmp_path / "qa.zarr")
    ids = _store(url)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", SERVER, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=REPO, env=env) for _ in range(2)]
    try:
        ports = []
        for p in procs:
            line = p.stdout.readline().strip()
            assert line.isdigit(), p.stderr.read()
            ports.append(int(line))
        yield url, ids, ports
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)


def _call(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def test_two_servers_flagging_interleaved_rows_lose_nothing(two_servers):
    url, ids, ports = two_servers
    n = len(ids)
    assert "qa" not in zarr.open_group(url, mode="r")
    start = threading.Barrier(2)
    answers: list[list[tuple[int, dict]]] = [[], []]

    def client(k: int) -> None:
        start.wait()  # both first flags at once: the qa group is created by one, used by both
        for row in range(k, n, 2):  # every row once: a lost write would stay lost
            body = {"flag": ("bad", "good")[row % 3 == 0], "note": f"row {row} by server {k}", "sample_id": ids[row]}
            answers[k].append(_call(ports[k], "POST", f"/api/rows/{row}/flag", body))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    refused = [a for part in answers for a in part if a[0] != 200]
    assert refused == []
    assert sum(map(len, answers)) == n
    root = zarr.open_group(url, mode="r", use_consolidated=False)
    flags, notes, times = root["qa/flag"][:], root["qa/note"][:], root["qa/time"][:]
    lost = [row for row in range(n) if int(flags[row]) != (2 if row % 3 == 0 else 1)
            or str(notes[row]) != f"row {row} by server {row % 2}" or not str(times[row])]
    assert lost == []
    bad = [row for row in range(n) if row % 3]
    for port in ports:  # each server's filter holds the rows the other one flagged too
        status, page = _call(port, "GET", "/api/rows?flag=bad&per_page=500")
        assert status == 200 and [r["row"] for r in page["rows"]] == bad
        status, one = _call(port, "GET", "/api/rows/3")
        assert status == 200 and one["qa"] == {"flag": "good", "note": "row 3 by server 1", "time": str(times[3])}


def test_a_surrogate_note_to_a_real_server_is_a_400_and_writes_nothing(two_servers):
    url, ids, ports = two_servers
    sid = ids[2]
    conn = http.client.HTTPConnection("127.0.0.1", ports[0], timeout=60)
    conn.request("POST", "/api/rows/2/flag", body='{"flag": "bad", "note": "\\ud800", "sample_id": "%s"}' % sid,
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 400 and "lone surrogate" in json.loads(r.read())["error"]
    conn.close()
    assert "qa" not in zarr.open_group(url, mode="r") and qa.saved_flags(url) == {}
