"""The rows of a store as the QA page filters, sorts and pages them. Meta columns are read once and
kept as small integer codes (a 1,000,000-row store costs a few tens of MB), so a query is a few
numpy comparisons; sort orders are computed once per column and kept."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd

from .. import places, qa
from ..samples import STATUS_CODES

CATEGORIES = ("split", "attack_type", "segmenter", "dataset")  # text columns the page filters by
NUMERIC = ("frame_index", "n_faces", "face_score", "rotation", "status", "is_attack")  # sortable besides row
GROUPS = {"train": 0, "dev": 1, "test": 2}
MAX_PER_PAGE = 500


class QueryError(ValueError):
    """A query the catalog cannot answer; the message says what was expected."""


class Texts:
    """A text column held compactly: one UTF-8 buffer and offsets (a 1,000,000-row sample_id column
    is ~30 MB here, several times that as Python strings)."""

    def __init__(self, buffer: bytes, offsets: np.ndarray):
        self.buffer, self.offsets = buffer, offsets

    @classmethod
    def of(cls, cache, name: str, read) -> "Texts":
        """The column `name` from the cache, else read() and encoded (then cached)."""
        offsets, buffer = cache.load(f"{name}.offsets"), cache.load(f"{name}.buffer")
        if offsets is None or buffer is None:
            encoded = [str(v).encode() for v in read()]
            offsets = np.zeros(len(encoded) + 1, np.int64)
            np.cumsum([len(b) for b in encoded], out=offsets[1:])
            buffer = np.frombuffer(b"".join(encoded), np.uint8)
            cache.save(f"{name}.offsets", offsets)
            cache.save(f"{name}.buffer", buffer)
        return cls(bytes(buffer), offsets)

    def __getitem__(self, i: int) -> str:
        return self.buffer[self.offsets[i]:self.offsets[i + 1]].decode()


class ColumnCache:
    """Meta columns kept on local disk between runs of the server, keyed by the store's id and the
    state of its metadata: zarr-python spends ~0.6 ms per chunk, so reading one column of a
    1,000,000-row store of 32-row shards takes ~20 s, and a second start should not pay it again.
    Folder: $ANNOTATOR_CACHE or ~/.cache/fas-annotator, then serve/<key>/; nothing is cached where
    that cannot be written."""

    def __init__(self, root, url: str | None):
        self.folder = None
        path = places.local(url) if url is not None else None
        if path is None:
            return
        meta = path / "zarr.json"
        markers = path / "_shards"
        state = (root.attrs.get("store_id"), meta.stat().st_size, meta.stat().st_mtime_ns,
                 len(list(markers.iterdir())) if markers.is_dir() else 0)
        base = Path(os.environ.get("ANNOTATOR_CACHE") or Path.home() / ".cache" / "fas-annotator")
        folder = base / "serve" / hashlib.sha1(repr(state).encode()).hexdigest()[:20]
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return
        self.folder = folder

    def load(self, name: str) -> np.ndarray | None:
        path = self.folder / f"{name}.npy" if self.folder else None
        if path is None or not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None

    def save(self, name: str, value: np.ndarray) -> None:
        if self.folder is None:
            return
        try:
            tmp = self.folder / f"{name}.part.npy"
            np.save(tmp, value, allow_pickle=False)
            tmp.replace(self.folder / f"{name}.npy")
        except OSError:
            pass

    def get(self, name: str, make) -> np.ndarray:
        """The array saved under name, else make(), saved for the next start."""
        value = self.load(name)
        if value is None:
            value = make()
            self.save(name, value)
        return value


class Catalog:
    def __init__(self, root, url: str | None = None):
        meta = root["meta"]
        self.n = int(root["image"].shape[0])
        self.cache = ColumnCache(root, url)
        self.codes: dict[str, tuple[list[str], np.ndarray]] = {}
        for col in CATEGORIES:
            if col in meta:
                self.codes[col] = self._coded(meta, col)
        self.sample_ids = Texts.of(self.cache, "sample_id", lambda: meta["sample_id"][:])
        self._meta = meta
        self.sortable = ["row", *(col for col in NUMERIC if col in meta)]
        self.numeric = {"row": np.arange(self.n)}  # the rest is read at first use (column())
        for col in ("status", "is_attack"):
            self.column(col)
        self.protocols = {name.split("/", 1)[1]: root[name][:] for name in
                          (f"protocols/{k}" for k in root["protocols"].array_keys())}
        self.flags = qa.read_flags(root).copy()  # never cached: the page changes them
        self._flag_changes = 0
        self._orders: dict[str, np.ndarray] = {}
        self._results: OrderedDict = OrderedDict()  # recent queries' rows: paging through one filter
        self._lock = threading.Lock()

    def _coded(self, meta, col: str) -> tuple[list[str], np.ndarray]:
        """(sorted distinct values, (N,) int32 code of each row) of a text column."""
        codes, values = self.cache.load(f"{col}.codes"), self.cache.load(f"{col}.values")
        if codes is None or values is None:
            found, distinct = pd.factorize(meta[col][:], sort=True)  # hashing: ~10x np.unique on text
            codes, values = found.astype(np.int32), np.array([str(v) for v in distinct], dtype=str)
            self.cache.save(f"{col}.codes", codes)
            self.cache.save(f"{col}.values", values)
        return values.tolist(), codes

    def column(self, name: str) -> np.ndarray:
        """A numeric meta column as float64, read once."""
        if name not in self.numeric:
            self.numeric[name] = self.cache.get(name, lambda: self._meta[name][:].astype(np.float64))
        return self.numeric[name]

    def set_flag(self, row: int, code: int) -> None:
        self.flags[row] = code
        self._flag_changes += 1

    def query(self, params: dict) -> np.ndarray:
        """Row indices matching the filters of `params` (page query arguments), in the asked order."""
        key = tuple(sorted((k, v) for k, v in params.items() if v and k not in ("page", "per_page")))
        key += (self._flag_changes,) if params.get("flag") else ()
        with self._lock:  # the server answers on several threads
            if key not in self._results:
                self._results[key] = self._query(params)
                while len(self._results) > 16:
                    self._results.popitem(last=False)
            self._results.move_to_end(key)
            return self._results[key]

    def describe(self, row: int) -> dict:
        """A row's sample_id, attack type and status, from what the catalog holds (no store read)."""
        out = {"sample_id": self.sample_ids[row]}
        if "attack_type" in self.codes:
            values, codes = self.codes["attack_type"]
            out["attack_type"] = values[codes[row]]
        if "status" in self.numeric:
            out["status"] = int(self.numeric["status"][row])
        return out

    def choices(self) -> dict:
        """What the page's filter and sort controls offer."""
        status_names = {v: k for k, v in STATUS_CODES.items()}
        present = sorted({int(s) for s in np.unique(self.numeric.get("status", np.zeros(1)))})
        return {"n": self.n, "class": ["attack", "bonafide"], **{col: values for col, (values, _) in self.codes.items()},
                "status": [status_names.get(s, str(s)) for s in present], "protocols": sorted(self.protocols),
                "groups": list(GROUPS), "flags": ["none", "bad", "good", "any"], "sort": self.sortable}

    def _query(self, params: dict) -> np.ndarray:
        keep = np.ones(self.n, bool)
        for col, (values, codes) in self.codes.items():
            want = params.get(col)
            if want:
                if want not in values:
                    raise QueryError(f"{col} {want!r} is not in the store; it has: {', '.join(values[:20])}")
                keep &= codes == values.index(want)
        kind = params.get("class")
        if kind:
            if kind not in ("attack", "bonafide"):
                raise QueryError(f"class {kind!r} is unknown; use attack or bonafide")
            keep &= self.numeric["is_attack"] == (1.0 if kind == "attack" else 0.0)
        status = params.get("status")
        if status:
            if status not in STATUS_CODES:
                raise QueryError(f"status {status!r} is unknown; use one of {', '.join(STATUS_CODES)}")
            keep &= self.numeric["status"] == STATUS_CODES[status]
        protocol, group = params.get("protocol"), params.get("group")
        if group and not protocol:
            raise QueryError("group needs a protocol")
        if protocol:
            if protocol not in self.protocols:
                raise QueryError(f"protocol {protocol!r} is not in the store; it has: {', '.join(sorted(self.protocols))}")
            codes = self.protocols[protocol]
            if group:
                if group not in GROUPS:
                    raise QueryError(f"group {group!r} is unknown; use train, dev or test")
                keep &= codes == GROUPS[group]
            else:
                keep &= codes >= 0
        flag = params.get("flag")
        if flag:
            if flag == "any":
                keep &= self.flags != 0
            elif flag in qa.FLAGS:
                keep &= self.flags == qa.FLAGS[flag]
            else:
                raise QueryError(f"flag {flag!r} is unknown; use none, bad, good or any")
        order = self.order(params.get("sort") or "row", params.get("order") or "asc")
        return order[keep[order]]

    def order(self, column: str, direction: str) -> np.ndarray:
        if column not in self.sortable:
            raise QueryError(f"cannot sort by {column!r}; numeric columns: {', '.join(self.sortable)}")
        if direction not in ("asc", "desc"):
            raise QueryError(f"order {direction!r} is unknown; use asc or desc")
        if column not in self._orders:
            self._orders[column] = np.argsort(self.column(column), kind="stable")
        rows = self._orders[column]
        return rows[::-1] if direction == "desc" else rows

    def page(self, rows: np.ndarray, page: int, per_page: int) -> tuple[np.ndarray, int]:
        """(the rows of 1-based `page`, the number of pages); QueryError for a page beyond the last."""
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise QueryError(f"per_page must be 1 .. {MAX_PER_PAGE}, got {per_page}")
        pages = max(1, -(-len(rows) // per_page))
        if not 1 <= page <= pages:
            raise QueryError(f"page {page} is out of range 1 .. {pages}")
        return rows[(page - 1) * per_page:page * per_page], pages
