"""Label QA flags (`annotate serve --allow-flags`): the store's `qa/` group, one value per row.

qa/flag int8 (0 none, 1 bad, 2 good), qa/note text, qa/time text (ISO 8601 UTC of the last change),
chunked like every other per-row array. Writing a flag touches these three arrays only; the group is
created at the first write with every chunk written (schema 2: a missing chunk is damage), then the
store's metadata is consolidated again. `annotate inspect` counts the flags, `annotate verify` checks
the group, `fas-train train --exclude-flagged` leaves rows flagged bad out (docs/store.md).

Flags are human work, and several servers (or a server and `annotate run --overwrite`) may write one
store: every write holds an exclusive OS lock (fcntl.flock on qa/flags.lock, never the store's
_lock.json, which a running `annotate run` holds) around the read-modify-write of the qa chunks, and
re-reads them inside it. A write first records what it writes in qa/pending.json and removes it once
the three arrays hold it, so a crash in between is finished by the next write (and read by
saved_flags): a flag, its note and its time land together or not at all. A flag is refused, before
anything is written, on a row whose shard is not committed or whose sample_id is not the one the
caller saw. Stores at non-local fsspec URLs get no OS lock: one writing process at a time there.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

import fsspec
import numpy as np
import zarr

from . import places
from annotator import store
from annotator.core.errors import AnnotatorError

try:
    import fcntl
except ImportError:  # not a POSIX system: no OS lock, one flagging process per store (as for remote URLs)
    fcntl = None

FLAGS = {"none": 0, "bad": 1, "good": 2}
ARRAYS = {"flag": "int8", "note": "str", "time": "str"}
MAX_NOTE = 2000  # characters: a note says what is wrong with a sample, not an essay
LOCK_FILE = "flags.lock"  # in qa/
JOURNAL_FILE = "pending.json"  # in qa/, only while a write is under way
_threads = threading.Lock()  # flock already excludes threads (one open file each); this keeps them polite


class FlagRefused(AnnotatorError):
    """A flag refused before anything was written; `status` is the HTTP status the page answers."""

    status = 400


class NotCommitted(FlagRefused):
    status = 409


class StaleRow(FlagRefused):
    status = 409


def has_flags(root: zarr.Group) -> bool:
    return "qa" in root and "flag" in root["qa"]


def read_flags(root: zarr.Group) -> np.ndarray:
    """(N,) int8 flag codes; all 0 when the store has no qa group."""
    if not has_flags(root):
        return np.zeros(root["image"].shape[0], np.int8)
    return root["qa/flag"][:]


def counts(root: zarr.Group) -> dict[str, int]:
    """{"bad": n, "good": n} over all rows."""
    flags = read_flags(root)
    return {name: int((flags == code).sum()) for name, code in FLAGS.items() if code}


def check_note(note, limit: int | None = MAX_NOTE) -> str:
    """The note, or FlagRefused: text, storable as UTF-8 (a lone surrogate is not), at most `limit` characters."""
    if not isinstance(note, str):
        raise FlagRefused("the note must be text")
    if limit is not None and len(note) > limit:
        raise FlagRefused(f"the note has {len(note)} characters; shorten it to {limit} or fewer")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise FlagRefused("the note holds a character that is not valid Unicode (a lone surrogate); "
                          "retype it") from None
    return note


# ---------------------------------------------------------------- the lock and the journal

def _qa_folder(url: str) -> Path | None:
    """The local qa/ folder of the store; None for non-local URLs."""
    path = places.local(url)
    return None if path is None else path / "qa"


@contextlib.contextmanager
def locked(url: str, exclusive: bool = True):
    """Hold the store's flag lock: exclusive to write, shared to read a consistent row. No-op for
    non-local URLs (documented), and for shared reads of a store whose lock file is absent (nothing
    has written flags under it) or cannot be opened (a read-only copy: nobody writes it)."""
    folder = _qa_folder(url)
    with _threads if exclusive else contextlib.nullcontext():
        if folder is None or fcntl is None:
            yield
            return
        try:
            if exclusive:
                folder.mkdir(exist_ok=True)  # a plain folder: zarr sees no group until qa/zarr.json
                fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
            else:
                fd = os.open(folder / LOCK_FILE, os.O_RDONLY)
        except OSError:
            if exclusive:
                raise
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # releases the lock (and the OS releases it if this process dies)


def _pending(url: str) -> dict | None:
    """The write recorded in qa/pending.json and not known to be finished: {"rows", "flag", "note", "time"}."""
    folder = _qa_folder(url)
    path = folder / JOURNAL_FILE if folder is not None else None
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # written by rename, so never half a file; unreadable means nothing to finish


def _record(url: str, entry: dict | None) -> None:
    """Write (entry) or remove (None) qa/pending.json; by rename, so a reader sees all of it or none."""
    folder = _qa_folder(url)
    if folder is None:
        return
    path = folder / JOURNAL_FILE
    if entry is None:
        path.unlink(missing_ok=True)
        return
    tmp = folder / f".{JOURNAL_FILE}.{os.getpid()}.part"
    tmp.write_text(json.dumps(entry))
    os.replace(tmp, path)


# ---------------------------------------------------------------- the arrays

def _exists(url: str, key: str) -> bool:
    fs, path = fsspec.core.url_to_fs(url)
    return fs.exists(f"{path.rstrip('/')}/{key}")


def _group_exists(url: str) -> bool:
    """All three arrays are on storage (looked up there, not in consolidated metadata another process
    may have written before the group existed)."""
    return all(_exists(url, f"qa/{name}/zarr.json") for name in ARRAYS)


def _arrays(url: str, mode: str = "r") -> dict[str, zarr.Array]:
    """The qa arrays opened afresh (no handle or chunk outlives one locked write)."""
    with zarr.config.set(store.WRITE_CONFIG):  # handles keep the config they were opened with
        return {name: zarr.open_array(store=url, path=f"qa/{name}", mode=mode, zarr_format=3) for name in ARRAYS}


def _ensure_group(url: str) -> None:
    """Create whatever of the group is missing (call with the lock held: two first flags both land)."""
    if _group_exists(url):
        return
    root = zarr.open_group(url, mode="r+", use_consolidated=False)
    n, shard = root["image"].shape[0], store.shard_size_of(root)
    group = root.require_group("qa")
    with zarr.config.set(store.WRITE_CONFIG):
        for name, dtype in ARRAYS.items():
            if not _exists(url, f"qa/{name}/zarr.json"):
                arr = store.create_array(group, name, (n,), (shard,), dtype, ("sample",), overwrite=True)
                arr[:] = np.full(n, store.fill_value(dtype), dtype=object if dtype == "str" else dtype)
    store.finalize(url)


def _write(url: str, entry: dict) -> None:
    """Write entry's rows into the three arrays (lock held), recorded first in qa/pending.json."""
    _record(url, entry)
    rows = np.asarray(entry["rows"], np.int64)
    values = {"flag": np.asarray(entry["flag"], np.int8), "note": np.array(entry["note"], dtype=object),
              "time": np.array(entry["time"], dtype=object)}
    for name, arr in _arrays(url, "r+").items():
        arr.oindex[rows] = values[name]
    _record(url, None)


def _finish_pending(url: str) -> None:
    """Finish a write a crashed process left recorded (lock held)."""
    entry = _pending(url)
    if entry is not None:
        if _group_exists(url):
            _write(url, entry)
        else:
            _record(url, None)


def _committed(url: str, root: zarr.Group, row: int) -> bool:
    shard = row // store.shard_size_of(root)
    return _exists(url, f"{store.SHARDS_DIR}/{shard:06d}.json")


# ---------------------------------------------------------------- what callers use

def set_flag(url: str, row: int, flag: str, note: str = "", sample_id: str | None = None) -> dict:
    """Flag one row ("bad", "good" or "none" to clear) with a note; returns the row's qa values.

    sample_id: the id the caller showed for the row; the flag is refused (StaleRow) when the row now
    holds another sample (the store was re-created), so a flag never lands on the wrong sample.
    Refused before anything is written: a bad flag or note (FlagRefused), a row outside the store,
    a row of an uncommitted shard (NotCommitted)."""
    if flag not in FLAGS:
        raise FlagRefused(f"unknown flag {flag!r}; use one of {', '.join(FLAGS)}")
    check_note(note)
    with locked(url):
        _finish_pending(url)
        root = store.open_store(url)
        n = root["image"].shape[0]
        if not 0 <= row < n:
            raise AnnotatorError(f"row {row} is outside the store (0 .. {n - 1})")
        if not _committed(url, root, row):
            raise NotCommitted(f"row {row} is not committed yet (its shard is still being written); "
                               "flag it once `annotate run` has committed it")
        if sample_id is not None:
            current = str(root["meta/sample_id"][row])
            if current != sample_id:
                raise StaleRow(f"row {row} now holds sample {current!r}, not {sample_id!r} (the store was "
                               "re-created); reload the page and flag it again")
        when = datetime.now(timezone.utc).isoformat(timespec="seconds")
        _ensure_group(url)
        _write(url, {"rows": [row], "flag": [FLAGS[flag]], "note": [note], "time": [when]})
    return {"flag": flag, "note": note, "time": when}


def row_flag(root: zarr.Group, row: int) -> dict:
    """The qa values of one row: {"flag", "note", "time"}."""
    if not has_flags(root):
        return {"flag": "none", "note": "", "time": ""}
    names = {v: k for k, v in FLAGS.items()}
    return {"flag": names.get(int(root["qa/flag"][row]), "none"), "note": str(root["qa/note"][row]),
            "time": str(root["qa/time"][row])}


def read_row(url: str, row: int) -> dict:
    """row_flag of the store as it is now (read under the shared lock: never a flag without its note)."""
    with locked(url, exclusive=False):
        if not _group_exists(url):
            return {"flag": "none", "note": "", "time": ""}
        arrays = _arrays(url)
        names = {v: k for k, v in FLAGS.items()}
        return {"flag": names.get(int(arrays["flag"][row]), "none"), "note": str(arrays["note"][row]),
                "time": str(arrays["time"][row])}


def flag_array(url: str) -> zarr.Array:
    """qa/flag opened afresh (read-only)."""
    return zarr.open_array(store=url, path="qa/flag", mode="r", zarr_format=3)


def chunk_stamps(url: str) -> dict[int, tuple[int, int]] | None:
    """chunk index -> (inode, change time) of each qa/flag chunk file: zarr replaces a chunk by a
    rename, so a changed chunk has a new stamp, and a server re-reads only the chunks another process
    flagged in. {} without the group; None for non-local URLs (flags of other processes show after a
    restart there)."""
    folder = _qa_folder(url)
    if folder is None:
        return None
    try:
        with os.scandir(folder / "flag" / "c") as entries:
            stamps = {}
            for e in entries:
                if e.name.isdigit():
                    st = e.stat()
                    stamps[int(e.name)] = (st.st_ino, st.st_mtime_ns)
            return stamps
    except (FileNotFoundError, NotADirectoryError):
        return {}


def saved_flags(url: str) -> dict[str, tuple[int, str, str]]:
    """sample_id -> (flag code, note, time) of every row with a flag or a note ({} without a qa
    group): what `annotate run --overwrite` keeps to give back with restore_flags."""
    with locked(url, exclusive=False):
        if not _group_exists(url):
            return {}
        arrays = _arrays(url)
        flag, note, time = (arrays[name][:] for name in ARRAYS)
        note, time = note.astype(object), time.astype(object)
        entry = _pending(url)  # a write a crashed server left half done: it counts
        if entry is not None:
            rows = np.asarray(entry["rows"], np.int64)
            flag[rows], note[rows], time[rows] = entry["flag"], entry["note"], entry["time"]
        rows = np.nonzero((flag != 0) | (note != ""))[0]
        if not len(rows):
            return {}
        ids = zarr.open_array(store=url, path="meta/sample_id", mode="r", zarr_format=3).oindex[rows]
    return {str(s): (int(flag[r]), str(note[r]), str(time[r])) for s, r in zip(ids, rows) if str(s)}


def restore_flags(url: str, saved: dict[str, tuple[int, str, str]],
                  rows_by_id: dict[str, int] | None = None) -> tuple[int, list[str]]:
    """Write saved_flags' values back into the store at url (typically re-created by `annotate run
    --overwrite`), each on the committed row holding its sample_id, or on the row rows_by_id names
    (a new store whose rows are planned but not yet annotated): (rows restored, sample ids not
    found, sorted). Checked whole before anything is written."""
    for sid, value in saved.items():
        if len(value) != 3 or value[0] not in FLAGS.values():
            raise AnnotatorError(f"saved flag of {sid!r} is {value!r}; expected (flag code 0/1/2, note, time)")
        check_note(value[1], limit=None)  # kept notes are restored whole
        check_note(value[2], limit=None)
    if not saved:
        return 0, []
    with locked(url):
        _finish_pending(url)
        where = _committed_rows_by_id(url) if rows_by_id is None else rows_by_id
        found = sorted((where[sid], sid) for sid in saved if sid in where)
        unmatched = sorted(sid for sid in saved if sid not in where)
        if found:
            _ensure_group(url)
            _write(url, {"rows": [r for r, _ in found], "flag": [int(saved[s][0]) for _, s in found],
                         "note": [saved[s][1] for _, s in found], "time": [saved[s][2] for _, s in found]})
    return len(found), unmatched


def _committed_rows_by_id(url: str) -> dict[str, int]:
    """sample_id -> row over the rows of committed shards (others hold fill values or a write under way)."""
    root = store.open_store(url)
    ids = root["meta/sample_id"][:]
    done = store.committed_rows(url, len(ids), store.shard_size_of(root))
    return {str(ids[r]): int(r) for r in np.nonzero(done)[0] if str(ids[r])}
