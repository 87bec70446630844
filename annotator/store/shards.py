"""Shards and their commit (docs/store.md, "Shards and commits"): the row ranges, the commit marker written after all of a shard's rows, failure records, and what readers may trust."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass

import fsspec
import numpy as np

SHARDS_DIR = "_shards"


TEMPORARY = ".tmp-"  # in the name of a file write_atomic has not finished


@dataclass(frozen=True)
class Shard:
    """Rows [start, stop) of the store; `id` is its index along the chunk grid."""

    id: int
    start: int
    stop: int


def plan_shards(n: int, shard_size: int) -> list[Shard]:
    return [Shard(i, s, min(s + shard_size, n)) for i, s in enumerate(range(0, n, shard_size))]


def filesystem(url: str):
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path.rstrip("/")


def write_atomic(fs, path: str, data: bytes) -> None:
    """Write a small file whole or not at all: on a local disk to a unique temporary name, then a
    rename (a full disk leaves no 0-byte or half-written file under `path`); elsewhere one PUT, which
    object stores make visible whole. Whatever sits at `path`, a folder included, is replaced."""
    if "file" not in _protocols(fs):
        fs.pipe(path, data)
        return
    tmp = f"{path}{TEMPORARY}{uuid.uuid4().hex[:12]}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if os.path.isdir(path):  # damage (a folder where a marker belongs) must not block the store
            import shutil

            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _protocols(fs) -> tuple:
    p = fs.protocol
    return (p,) if isinstance(p, str) else tuple(p)


def _put_marker(url: str, folder: str, shard_id: int, content: dict) -> None:
    fs, path = filesystem(url)
    fs.makedirs(f"{path}/{folder}", exist_ok=True)
    write_atomic(fs, f"{path}/{folder}/{shard_id:06d}.json", json.dumps(content).encode())


def commit(url: str, shard: Shard, summary: dict | None = None) -> None:
    """Write a shard's commit marker; call it only once all of the shard's rows are written."""
    _put_marker(url, SHARDS_DIR, shard.id,
                {"id": shard.id, "start": shard.start, "stop": shard.stop, **(summary or {})})


FAILED_DIR = "_failed"


def mark_failed(url: str, shard_id: int, error: str) -> None:
    """Record that a shard failed after its retries (cleared when it commits)."""
    _put_marker(url, FAILED_DIR, shard_id, {"id": shard_id, "error": error})


def clear_failed(url: str, shard_id: int) -> None:
    fs, path = filesystem(url)
    p = f"{path}/{FAILED_DIR}/{shard_id:06d}.json"
    if fs.exists(p):
        fs.rm(p, recursive=fs.isdir(p))


def _marker_files(url: str, folder: str, sound_only: bool = True) -> dict[int, str]:
    """The <id>.json entries of a marker folder of the store, from one listing: shard id -> path.
    sound_only: only non-empty plain files (a folder or a 0-byte file under a commit marker's name
    is damage that `annotate verify` reports, never a commit)."""
    fs, path = filesystem(url)
    base = f"{path}/{folder}"
    try:
        entries = fs.ls(base, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    out = {}
    for e in entries:
        f = e["name"]
        name = f.rstrip("/").rsplit("/", 1)[-1]
        sound = e.get("type") == "file" and e.get("size", 1) > 0
        if name.endswith(".json") and name[:-5].isdigit() and (sound or not sound_only):
            out[int(name[:-5])] = f
    return out


def read_marker(fs, path: str) -> dict | None:
    """A marker's content, or None when it cannot be read as a JSON object (damage)."""
    try:
        content = json.loads(fs.cat_file(path))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def failed(url: str) -> dict[int, str]:
    """Shards recorded as failed: id -> error text (an unreadable record still marks its shard failed)."""
    fs, _ = filesystem(url)
    out = {}
    for i, f in _marker_files(url, FAILED_DIR, sound_only=False).items():
        info = read_marker(fs, f)
        out[i] = str(info.get("error", "")) if info else "(its failure record is unreadable)"
    return out


def committed(url: str) -> dict[int, dict]:
    """Commit markers that read as JSON objects: shard id -> marker content (reads every marker)."""
    fs, _ = filesystem(url)
    return {i: m for i, f in _marker_files(url, SHARDS_DIR).items() if (m := read_marker(fs, f)) is not None}


def committed_ids(url: str) -> set[int]:
    """The ids of the committed shards, from the marker names alone (one listing, no reads: what a
    resume of a store with tens of thousands of shards needs)."""
    return set(_marker_files(url, SHARDS_DIR))


def committed_rows(url: str, n: int, shard_size: int) -> np.ndarray:
    """(n,) bool: rows of committed shards, the only rows a reader may trust (docs/store.md)."""
    rows = np.zeros(n, bool)
    for i in committed_ids(url):
        rows[i * shard_size:(i + 1) * shard_size] = True
    return rows
