"""Label QA flags (`annotate serve --allow-flags`): the store's `qa/` group, one value per row.

qa/flag int8 (0 none, 1 bad, 2 good), qa/note text, qa/time text (ISO 8601 UTC of the last change),
chunked like every other per-row array. Writing a flag touches these three arrays only; the group is
created at the first write with every chunk written (schema 2: a missing chunk is damage), then the
store's metadata is consolidated again. `annotate inspect` counts the flags, `annotate verify` checks
the group, `fas-train train --exclude-flagged` leaves rows flagged bad out (docs/store.md).
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import numpy as np
import zarr

from . import store
from .errors import AnnotatorError

FLAGS = {"none": 0, "bad": 1, "good": 2}
ARRAYS = {"flag": "int8", "note": "str", "time": "str"}
_write = threading.Lock()  # one writer at a time within a server process


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


def _ensure_group(url: str) -> zarr.Group:
    root = store.open_store(url, mode="r+")
    if has_flags(root):
        return root
    n, shard = root["image"].shape[0], store.shard_size_of(root)
    group = root.require_group("qa")
    with zarr.config.set(store.WRITE_CONFIG):
        for name, dtype in ARRAYS.items():
            arr = store.create_array(group, name, (n,), (shard,), dtype, ("sample",))
            arr[:] = np.full(n, store.fill_value(dtype), dtype=object if dtype == "str" else dtype)
    store.finalize(url)
    return store.open_store(url, mode="r+")


def set_flag(url: str, row: int, flag: str, note: str = "") -> dict:
    """Flag one row ("bad", "good" or "none" to clear) with a note; returns the row's qa values."""
    if flag not in FLAGS:
        raise AnnotatorError(f"unknown flag {flag!r}; use one of {', '.join(FLAGS)}")
    with _write:
        root = _ensure_group(url)
        n = root["image"].shape[0]
        if not 0 <= row < n:
            raise AnnotatorError(f"row {row} is outside the store (0 .. {n - 1})")
        when = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with zarr.config.set(store.WRITE_CONFIG):
            qa = root["qa"]
            at = slice(row, row + 1)  # a one-element slice: zarr writes a text scalar only that way
            qa["flag"][at] = np.array([FLAGS[flag]], np.int8)
            qa["note"][at] = np.array([note], dtype=object)
            qa["time"][at] = np.array([when], dtype=object)
    return {"flag": flag, "note": note, "time": when}


def row_flag(root: zarr.Group, row: int) -> dict:
    """The qa values of one row: {"flag", "note", "time"}."""
    if not has_flags(root):
        return {"flag": "none", "note": "", "time": ""}
    names = {v: k for k, v in FLAGS.items()}
    return {"flag": names.get(int(root["qa/flag"][row]), "none"), "note": str(root["qa/note"][row]),
            "time": str(root["qa/time"][row])}
