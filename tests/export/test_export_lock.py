"""One `annotate export` writes a folder at a time: a second one refuses in one line and writes
nothing; a lock left by a dead export is taken over; temporary files never share a name."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import annotator.export.run as export_run
from annotator.core.errors import AnnotatorError
from annotator.export import export_store
from annotator.export.base import part_name, write_text
from pipelines.cli import cli

HOST = socket.gethostname()


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(sample_store, tmp_path_factory):
    """The sample store exported once, alone."""
    url, _ = sample_store
    folder = tmp_path_factory.mktemp("ref") / "folder"
    export_store(url, "folder", str(folder), protocol="all", progress=False)
    return url, tree(folder)


def write_lock(folder: Path, pid: int, host: str = HOST, heartbeat: float | None = None) -> Path:
    lock = folder / ".export" / "lock.json"
    lock.parent.mkdir(parents=True)
    now = time.time()
    lock.write_text(json.dumps({"host": host, "pid": pid, "started": now - 10, "heartbeat": heartbeat or now}))
    return lock


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_two_concurrent_exports_one_writes_the_other_refuses(reference, tmp_path, monkeypatch):
    url, expected = reference
    out = tmp_path / "out"
    inside, refused = threading.Event(), threading.Event()
    real = export_run._export_shard

    def held_open(*args):  # the first export stops inside its first shard until the second has been refused
        inside.set()
        assert refused.wait(60), "the second export never finished"
        return real(*args)

    monkeypatch.setattr(export_run, "_export_shard", held_open)
    first: dict = {}

    def run_first():
        try:
            first["result"] = export_store(url, "folder", str(out), protocol="all", workers=1, progress=False)
        except BaseException as e:  # noqa: BLE001  (reported by the main thread)
            first["error"] = e

    t = threading.Thread(target=run_first)
    t.start()
    try:
        assert inside.wait(60)
        before = tree(out)
        r = CliRunner().invoke(cli, ["export", url, "--format", "folder", "--protocol", "all", "--out", str(out)])
        after = tree(out)
    finally:
        refused.set()
        t.join(120)
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert r.exit_code == 1 and len(lines) == 1, r.output
    assert lines[0].startswith(f"Error: --out {out} is being written by another annotate export (pid {os.getpid()} "
                               f"on {HOST}, since "), lines[0]
    assert lines[0].endswith(f"); wait for it, or delete {out / '.export' / 'lock.json'} if that export is gone")
    assert after == before  # the refused export wrote nothing
    assert "error" not in first, first.get("error")
    assert first["result"]["rows"] > 0
    assert tree(out) == expected  # the lock is gone, no .part is left, the files are a single export's


def test_a_lock_held_by_a_live_process_is_refused_and_nothing_is_written(reference, tmp_path):
    url, _ = reference
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = write_lock(out, holder.pid)
        before = tree(out)
        with pytest.raises(AnnotatorError, match=rf"is being written by another annotate export \(pid {holder.pid} "
                                                 rf"on {HOST}, since "):
            export_store(url, "folder", str(out), protocol="all", progress=False)
        assert tree(out) == before and lock.exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_of_a_dead_export_is_taken_over(reference, tmp_path):
    url, expected = reference
    out = tmp_path / "out"
    write_lock(out, dead_pid())
    res = export_store(url, "folder", str(out), protocol="all", progress=False)
    assert res["rows"] > 0 and tree(out) == expected


def test_a_lock_from_another_host_counts_by_its_heartbeat(reference, tmp_path):
    url, expected = reference
    recent, old = tmp_path / "recent", tmp_path / "old"
    write_lock(recent, 1, host="elsewhere.example")
    with pytest.raises(AnnotatorError, match=r"\(pid 1 on elsewhere.example, since "):
        export_store(url, "folder", str(recent), protocol="all", progress=False)
    write_lock(old, 1, host="elsewhere.example", heartbeat=time.time() - 2 * 3600)
    export_store(url, "folder", str(old), protocol="all", progress=False)
    assert tree(old) == expected


def test_writers_of_one_file_never_share_a_temporary_name(tmp_path):
    target = tmp_path / "list.txt"
    names = {part_name(target) for _ in range(100)}
    assert len(names) == 100 and all(n.name.startswith(f"list.txt.{os.getpid()}-") for n in names)
    errors = []

    def writer(k: int):
        try:
            for i in range(300):
                write_text(target, f"{k} {i}\n")
        except OSError as e:  # a shared .part: renamed away by the other writer
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir()] == ["list.txt"]
