"""Label QA flags (annotator/store/qa.py) written by several processes at once, and kept across a re-created
store (saved_flags / restore_flags). Every check reads the values back from the store."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from annotator.store import qa
from annotator import store

REPO = Path(__file__).resolve().parents[2]

# One writer process: waits for the go file (so that all start together), then flags its rows
# round after round with the sample_id it read, as the page sends it.
WORKER = r"""
import os, sys, time
import zarr
from annotator.store import qa
url, go, rows, rounds = sys.argv[1], sys.argv[2], [int(r) for r in sys.argv[3].split(",")], int(sys.argv[4])
ids = zarr.open_group(url, mode="r")["meta/sample_id"][:]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
for r in range(rounds):
    for row in rows:
        qa.set_flag(url, row, ("bad", "good")[(r + row) % 2], f"round {r} row {row}", str(ids[row]))
print("done", flush=True)
"""


@pytest.fixture
def store_copy(sample_store, tmp_path):
    copy = tmp_path / "qa.zarr"
    shutil.copytree(sample_store[0], copy)
    return str(copy)


def _run_together(url: str, tmp_path: Path, parts: list[list[int]], rounds: int) -> None:
    """Start one WORKER per part, let them go at once, and require each to finish cleanly."""
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, str(go), ",".join(map(str, rows)), str(rounds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
             for rows in parts]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0 and out.strip() == "done", err


def _expected(rows, rounds: int) -> dict[int, tuple[int, str]]:
    last = rounds - 1
    return {row: (qa.FLAGS[("bad", "good")[(last + row) % 2]], f"round {last} row {row}") for row in rows}


def _read_back(url: str) -> tuple[np.ndarray, list[str], list[str]]:
    root = zarr.open_group(url, mode="r", use_consolidated=False)
    return root["qa/flag"][:], [str(v) for v in root["qa/note"][:]], [str(v) for v in root["qa/time"][:]]


def test_two_processes_flagging_interleaved_rows_lose_nothing(store_copy, tmp_path):
    from annotator.store.verify import verify

    rows = list(range(15))  # two shards of 10 and 5 rows: both writers share every qa chunk
    rounds = 12
    _run_together(store_copy, tmp_path, [rows[0::2], rows[1::2]], rounds)
    flags, notes, times = _read_back(store_copy)
    want = _expected(rows, rounds)
    assert [(int(flags[r]), notes[r]) for r in rows] == [want[r] for r in rows]
    assert all(times[r] for r in rows)
    assert not (Path(store_copy) / "qa" / qa.JOURNAL_FILE).exists()
    assert verify(store_copy, "full").problems == []


def test_simultaneous_first_flags_from_several_processes_all_land(store_copy, tmp_path):
    from annotator.store.verify import verify

    assert "qa" not in zarr.open_group(store_copy, mode="r")
    parts = [[k, k + 4, k + 8] for k in range(4)]  # 4 processes, each a first flag at the same moment
    _run_together(store_copy, tmp_path, parts, 1)
    flags, notes, _ = _read_back(store_copy)
    want = _expected([r for part in parts for r in part], 1)
    assert {r: (int(flags[r]), notes[r]) for r in want} == want
    assert int((flags != 0).sum()) == len(want)
    assert verify(store_copy, "full").problems == []
    assert qa.counts(zarr.open_group(store_copy, mode="r")) == {
        "bad": sum(f == 1 for f, _ in want.values()), "good": sum(f == 2 for f, _ in want.values())}


def test_a_writer_waits_for_the_lock_another_process_holds(store_copy, tmp_path):
    """The lock is an OS lock on qa/flags.lock: a process holding it keeps every other writer out."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom annotator.store import qa\n"
        "with qa.locked(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(1.5)\n"), store_copy],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "held"
        t = time.monotonic()
        qa.set_flag(store_copy, 2, "bad")
        assert time.monotonic() - t > 0.5  # it waited for the other process
    finally:
        holder.wait(timeout=30)
    assert (Path(store_copy) / "qa" / qa.LOCK_FILE).is_file()
    assert not (Path(store_copy) / "_lock.json").exists()  # never the run's lock
    assert qa.read_row(store_copy, 2)["flag"] == "bad"


def test_the_library_refuses_bad_notes_and_stale_rows_before_writing(store_copy):
    sid = str(zarr.open_group(store_copy, mode="r")["meta/sample_id"][5])
    for note, text in (("a\ud800b", "lone surrogate"), ("x" * (qa.MAX_NOTE + 1), "shorten it"), (None, "must be text")):
        with pytest.raises(qa.FlagRefused, match=text):
            qa.set_flag(store_copy, 5, "bad", note, sid)
    with pytest.raises(qa.StaleRow, match="now holds sample"):
        qa.set_flag(store_copy, 5, "bad", "", "someone/else.jpg")
    assert "qa" not in zarr.open_group(store_copy, mode="r") and qa.saved_flags(store_copy) == {}
    assert qa.set_flag(store_copy, 5, "bad", "é ✓ 😀", sid)["note"] == "é ✓ 😀"
    assert qa.read_row(store_copy, 5)["note"] == "é ✓ 😀"


# ---------------------------------------------------------------- saved_flags / restore_flags

def _recreate_reordered(src: str, dst: str, order: np.ndarray, uncommitted: int | None = None) -> None:
    """A store as `annotate run --overwrite` could leave it: the same samples in another row order, no
    qa group, optionally one shard not committed yet."""
    shutil.copytree(src, dst)
    shutil.rmtree(Path(dst) / "qa", ignore_errors=True)
    root = zarr.open_group(dst, mode="r+", use_consolidated=False)
    with zarr.config.set(store.WRITE_CONFIG):
        root["meta/sample_id"][:] = root["meta/sample_id"][:][order]
    if uncommitted is not None:
        (Path(dst) / "_shards" / f"{uncommitted:06d}.json").unlink()
    store.finalize(dst)


def test_saved_flags_come_back_on_the_rows_that_hold_their_samples(store_copy, tmp_path):
    ids = [str(v) for v in zarr.open_group(store_copy, mode="r")["meta/sample_id"][:]]
    assert qa.saved_flags(store_copy) == {}  # no qa group
    qa.set_flag(store_copy, 1, "bad", "mask off the chin", ids[1])
    qa.set_flag(store_copy, 4, "good", "", ids[4])
    qa.set_flag(store_copy, 11, "bad", "", ids[11])
    qa.set_flag(store_copy, 7, "good", "cleared later, note kept", ids[7])
    qa.set_flag(store_copy, 7, "none", "cleared later, note kept", ids[7])
    saved = qa.saved_flags(store_copy)
    assert set(saved) == {ids[1], ids[4], ids[11], ids[7]}
    assert saved[ids[1]][:2] == (1, "mask off the chin") and saved[ids[7]][:2] == (0, "cleared later, note kept")
    assert saved[ids[1]][2] == qa.read_row(store_copy, 1)["time"]

    order = np.arange(15)[::-1]  # row r of the new store holds the old row 14 - r
    fresh = str(tmp_path / "fresh.zarr")
    _recreate_reordered(store_copy, fresh, order)
    restored, unmatched = qa.restore_flags(fresh, {**saved, "gone/sample.jpg": (1, "", "")})
    assert restored == 4 and unmatched == ["gone/sample.jpg"]
    flags, notes, times = _read_back(fresh)
    new_ids = [str(v) for v in zarr.open_group(fresh, mode="r")["meta/sample_id"][:]]
    for sid, (flag, note, when) in saved.items():
        r = new_ids.index(sid)
        assert (int(flags[r]), notes[r], times[r]) == (flag, note, when) and r == 14 - ids.index(sid)
    assert int((flags != 0).sum()) == 3 and qa.saved_flags(fresh) == saved


def test_restore_leaves_samples_of_uncommitted_shards_unmatched(store_copy, tmp_path):
    ids = [str(v) for v in zarr.open_group(store_copy, mode="r")["meta/sample_id"][:]]
    for row in (0, 12):
        qa.set_flag(store_copy, row, "bad", f"row {row}", ids[row])
    saved = qa.saved_flags(store_copy)
    fresh = str(tmp_path / "fresh.zarr")
    _recreate_reordered(store_copy, fresh, np.arange(15), uncommitted=1)  # rows 10..14 still pending
    assert qa.restore_flags(fresh, saved) == (1, [ids[12]])
    assert qa.read_row(fresh, 0)["note"] == "row 0" and qa.read_row(fresh, 12)["flag"] == "none"
    with pytest.raises(qa.AnnotatorError, match="expected \\(flag code"):
        qa.restore_flags(fresh, {ids[3]: (5, "", "")})
    assert qa.read_row(fresh, 3)["flag"] == "none"
    assert qa.restore_flags(fresh, {}) == (0, [])


def test_annotate_run_overwrite_keeps_flags_by_sample_id_or_refuses_to_lose_them(sample_store, tmp_path):
    import shutil

    import zarr

    from annotator.core.errors import AnnotatorError
    from helpers import problems, sync_config
    from pipelines.keep_flags import side_file
    from pipelines.run import run

    url = tmp_path / "s.zarr"
    shutil.copytree(sample_store[0], url)
    ids = zarr.open_group(str(url))["meta/sample_id"][:].tolist()
    qa.set_flag(str(url), 3, "bad", "mask edge wrong", sample_id=ids[3])
    qa.set_flag(str(url), 12, "good", "", sample_id=ids[12])
    cfg = sync_config(dataset="sample", root="")
    summary = run(cfg, str(url), cluster="none", progress=False, overwrite=True)
    assert any("kept 2 label QA flag(s)" in n for n in summary.notes)
    assert qa.saved_flags(str(url)) == {ids[3]: (1, "mask edge wrong", qa.saved_flags(str(url))[ids[3]][2]),
                                        ids[12]: (2, "", qa.saved_flags(str(url))[ids[12]][2])}
    assert problems(str(url)) == [] and not side_file(str(url)).exists()
    # a flag on a sample the new rows lack: refused before any work, unless --drop-flags
    store_before = (url / "zarr.json").read_bytes()
    with pytest.raises(AnnotatorError, match="--overwrite would lose them: pass --drop-flags"):
        run(sync_config(dataset="sample", root="", limit=3), str(url), cluster="none", progress=False, overwrite=True)
    assert (url / "zarr.json").read_bytes() == store_before and len(qa.saved_flags(str(url))) == 2
    run(sync_config(dataset="sample", root="", limit=3), str(url), cluster="none", progress=False, overwrite=True,
        drop_flags=True)
    assert qa.saved_flags(str(url)) == {}


def test_flags_of_an_overwrite_that_died_half_way_come_back_with_the_next(sample_store, tmp_path, monkeypatch):
    import shutil

    import zarr

    import pipelines.keep_flags as keep
    from helpers import sync_config
    from pipelines.run import run

    url = tmp_path / "s.zarr"
    shutil.copytree(sample_store[0], url)
    sid = zarr.open_group(str(url))["meta/sample_id"][5]
    qa.set_flag(str(url), 5, "bad", "kept through a crash", sample_id=str(sid))
    real = keep.restore
    monkeypatch.setattr(keep, "restore", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        run(sync_config(dataset="sample", root=""), str(url), cluster="none", progress=False, overwrite=True)
    assert qa.saved_flags(str(url)) == {} and keep.side_file(str(url)).is_file()  # the new store, no flags yet
    monkeypatch.setattr(keep, "restore", real)
    run(sync_config(dataset="sample", root=""), str(url), cluster="none", progress=False, overwrite=True)
    assert qa.saved_flags(str(url))[str(sid)][:2] == (1, "kept through a crash")


def test_an_unreadable_side_file_of_kept_flags_is_one_line_and_drop_flags_clears_it(tmp_path):
    from annotator.core.errors import AnnotatorError
    from pipelines.keep_flags import flags_to_keep, side_file

    out = str(tmp_path / "s.zarr")
    side_file(out).write_text("{half a file")
    with pytest.raises(AnnotatorError, match=r"qa-flags.json .* cannot be read .*--drop-flags"):
        flags_to_keep(out, [], drop=False)
    assert flags_to_keep(out, [], drop=True) == {} and not side_file(out).exists()
