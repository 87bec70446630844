"""The rows of a store as the QA page filters, sorts and pages them. Meta columns are read once and
kept as small integer codes (a 1,000,000-row store costs a few tens of MB), so a query is a few
numpy comparisons; sort orders are computed once per column and kept (NaN last either way). Every
numeric meta column sorts and filters by range, the quality signals among them; how a query's
parameters become a mask is filters.py's, how the columns are held and cached on disk columns.py's.

Only committed rows are listed: a store may be served while `annotate run` still writes it, and the
rows of a shard without its commit marker hold fill values or a write under way. refresh() looks at
the markers again (at most every refresh_s seconds), reads the meta columns of newly committed
shards, and re-reads the qa/flag chunks another process changed."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import numpy as np
import pandas as pd

from annotator import store
from annotator.core.errors import AnnotatorError
from annotator.core.samples import SPLIT_CODES, STATUS_CODES
from annotator.store import places, qa

from . import filters
from .columns import ColumnCache, FolderWatch, Texts

CATEGORIES = ("split", "attack_type", "segmenter", "dataset", "prior_worst_region")  # text columns the page filters by
FIRST = ("frame_index", "n_faces", "face_score", "rotation", "status", "is_attack")  # listed first; then the rest by name
MAX_PER_PAGE = 500


class QueryError(ValueError):
    """A query the catalog cannot answer; the message says what was expected, status the HTTP
    status the page answers (400; 404 for a row or page that does not exist)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class StoreReplaced(QueryError):
    """The store at the served URL was re-created with another shape: the catalog cannot follow it."""

    def __init__(self, message: str):
        super().__init__(message, 409)


def _protocols(root) -> dict[str, np.ndarray]:
    """protocol name -> (N,) int8 group codes (-1 unused, 0 train, 1 dev, 2 test)."""
    return {name: root[f"protocols/{name}"][:] for name in root["protocols"].array_keys()}


def _numeric_kinds(meta) -> np.ndarray:
    """Each numeric meta column as "name:kind", kind numpy's dtype kind (b, i, u or f); text columns left out."""
    return np.array([f"{name}:{arr.dtype.kind}" for name, arr in meta.arrays()
                     if getattr(arr.dtype, "kind", "O") in "biuf"], dtype=str)


def _spans(ids, shard: int, n: int) -> list[tuple[int, int]]:
    """Row ranges [a, b) of sorted chunk (shard) ids, neighbours merged: one read per range."""
    out: list[tuple[int, int]] = []
    for i in ids:
        a, b = i * shard, min((i + 1) * shard, n)
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


class Catalog:
    """url: the store's (None: every row counts as committed, nothing is re-read). refresh_s: how
    often at most refresh() lists the commit markers. on_reopen: called when a committed shard lost
    its marker (a repair reopened it), so that pictures cached from it are dropped."""

    def __init__(self, root, url: str | None = None, refresh_s: float = 2.0, on_reopen=None):
        meta = root["meta"]
        self.n = int(root["image"].shape[0])
        self.url, self.refresh_s, self.on_reopen = url, refresh_s, on_reopen
        self.shard = store.shard_size_of(root)
        path = places.local(url) if url is not None else None
        self._marker_folder = FolderWatch(path / store.SHARDS_DIR if path else None)
        self._flag_folder = FolderWatch(path / "qa" / "flag" / "c" if path else None)
        self._lock = threading.RLock()  # the server answers on several threads
        self._listed = time.monotonic()
        self._marker_folder.changed()  # primed before the listing: a later commit shows
        self._take_markers(self._list_markers())
        self.cache = ColumnCache(root, url, self.shards)
        self.codes: dict[str, tuple[list[str], np.ndarray]] = {}
        for col in CATEGORIES:
            if col in meta:
                self.codes[col] = self._coded(meta, col)
        self.sample_ids = Texts.of(self.cache, "sample_id", lambda: meta["sample_id"][:])
        self._meta = meta
        kinds = dict(k.split(":") for k in self.cache.get("numeric.kinds", lambda: _numeric_kinds(meta)).tolist())
        self.integer = {name for name, kind in kinds.items() if kind != "f"}
        self.sortable = ["row", *(c for c in FIRST if c in kinds), *sorted(c for c in kinds if c not in FIRST)]
        self.numeric = {"row": np.arange(self.n)}  # the rest is read at first use (column())
        for col in ("status", "is_attack"):
            self.column(col)
        self.store_id = root.attrs.get("store_id")
        self.protocols = _protocols(root)
        self._flag_folder.changed()
        self._flag_stamps = qa.chunk_stamps(url) if url is not None else None  # before the read: a later write shows
        self.flags = qa.read_flags(root).copy()  # never cached: the page changes them
        self._flag_changes = 0
        self._orders: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # column -> (ascending, descending)
        self._bins: OrderedDict = OrderedDict()  # (column, bins) -> (edges over committed rows, each row's bin)
        self._results: OrderedDict = OrderedDict()  # recent queries' rows: paging through one filter
        self._masks: OrderedDict = OrderedDict()  # recent filters' masks: the histograms of one view
        self.extra = None  # a joined audit table (join()): its columns are not meta columns

    def join(self, table) -> None:
        """Add (or renew) the columns of an audit table (audit.AuditTable) for every row, by sample_id:
        its numeric columns sort, filter by range and draw histograms, its text column filters."""
        with self._lock:
            self.extra = table
            numeric, text = table.columns(self.sample_ids[i] for i in range(self.n))
            self.numeric.update(numeric)
            self.sortable += [c for c in numeric if c not in self.sortable]
            for col, values in text.items():
                found, distinct = pd.factorize(np.array(values, dtype=str), sort=True)
                self.codes[col] = ([str(v) for v in distinct], found.astype(np.int32))
            for kept in (self._orders, self._bins, self._results, self._masks):
                kept.clear()

    # ------------------------------------------------------------ committed shards

    def _list_markers(self) -> frozenset[int]:
        n_shards = -(-self.n // self.shard)
        if self.url is None:
            return frozenset(range(n_shards))
        return frozenset(i for i in store.committed_ids(self.url) if i < n_shards)

    def _take_markers(self, shards: frozenset[int]) -> None:
        self.shards = shards
        chunk = np.zeros(-(-self.n // self.shard), bool)
        chunk[list(shards)] = True
        self.committed = chunk[np.arange(self.n) // self.shard]  # (N,) bool: rows the page may show
        self.n_committed = int(self.committed.sum())

    def is_committed(self, row: int) -> bool:
        return bool(self.committed[row])

    def refresh(self, force: bool = False) -> bool:
        """Pick up shards committed (or reopened) and flags written by another process since the last
        look, at most every refresh_s seconds unless forced; True when something changed."""
        if self.url is None or not force and time.monotonic() - self._listed < self.refresh_s:
            return False
        with self._lock:
            self._listed = time.monotonic()
            recreated = self._recreated()
            if recreated is None:
                return False  # no store at url this instant (being re-created): look again later
            shards = self._list_markers() if self._marker_folder.changed() or recreated else self.shards
            changed = self._reread_flags() or recreated
            if shards != self.shards or recreated:
                self._reread_rows(shards)
                changed = True
            if changed:
                self._results.clear()
                self._masks.clear()
            return changed

    def _recreated(self) -> bool | None:
        """True once when the store at url was re-created (`annotate run --overwrite`: another
        store_id): then every row is read again as its shard commits, the protocols at once. None while
        no whole store is there. A store of another row count cannot be followed: StoreReplaced, and
        the server must be restarted."""
        try:
            root = store.open_store(self.url)
        except (AnnotatorError, OSError, KeyError):
            return None
        if root.attrs.get("store_id") == self.store_id:
            return False
        if int(root["image"].shape[0]) != self.n or store.shard_size_of(root) != self.shard:
            raise StoreReplaced(f"{self.url} was re-created with another layout; restart `annotate serve`")
        self.store_id = root.attrs.get("store_id")
        self.protocols = _protocols(root)
        self._flag_stamps = qa.chunk_stamps(self.url)
        self.flags = qa.read_flags(root).copy()  # restore_flags may have put some back already
        self._flag_changes += 1
        if self.on_reopen is not None:
            self.on_reopen()
        self.shards = frozenset()  # so that every committed shard is read again
        return True

    def _reread_rows(self, shards: frozenset[int]) -> None:
        """Read the meta columns of the shards committed since the last look; forget reopened ones."""
        gone = self.shards - shards
        spans = _spans(sorted(shards - self.shards), self.shard, self.n)
        if spans:
            for col in [c for c in self.codes if c in self._meta]:
                self.codes[col] = self._recoded(col, spans)
            self.sample_ids = self.sample_ids.replaced([(a, b, self._meta["sample_id"][a:b]) for a, b in spans])
            for name, values in list(self.numeric.items()):
                if name != "row" and name in self._meta:
                    values = values.copy()  # queries on other threads keep the array they hold
                    for a, b in spans:
                        values[a:b] = self._meta[name][a:b].astype(np.float64)
                    self.numeric[name] = values
        self._take_markers(shards)
        if spans and self.extra is not None:
            self.join(self.extra)  # the new rows' sample ids
        self._orders.clear()
        self._bins.clear()
        self.cache.detach()  # its key names the committed set it was made for
        if gone and self.on_reopen is not None:
            self.on_reopen()

    def _recoded(self, col: str, spans: list[tuple[int, int]]) -> tuple[list[str], np.ndarray]:
        """The column's (values, codes) with rows of spans read again (new values join the sorted list)."""
        values, codes = self.codes[col]
        fresh = [np.asarray(self._meta[col][a:b]).astype(str) for a, b in spans]
        merged = sorted(set(values).union(*(f.tolist() for f in fresh)))
        index = {v: i for i, v in enumerate(merged)}
        remap = np.array([index[v] for v in values], np.int32)
        codes = remap[codes] if len(values) else codes.copy()
        ordered = np.array(merged, dtype=str)
        for (a, b), f in zip(spans, fresh):
            codes[a:b] = np.searchsorted(ordered, f)
        return merged, codes

    def _reread_flags(self) -> bool:
        """Re-read the qa/flag chunks changed since the last look (another server flagged rows)."""
        if not self._flag_folder.changed():
            return False
        stamps = qa.chunk_stamps(self.url)
        if stamps is None or stamps == self._flag_stamps:
            return False
        old = self._flag_stamps or {}
        changed = sorted(k for k, stamp in stamps.items() if old.get(k) != stamp)
        self._flag_stamps = stamps
        if not changed:
            return False
        arr = qa.flag_array(self.url)
        flags = self.flags.copy()
        for a, b in _spans(changed, int(arr.chunks[0]), self.n):
            flags[a:b] = arr[a:b]
        self.flags = flags
        self._flag_changes += 1
        return True

    # ------------------------------------------------------------ columns and queries

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
        with self._lock:
            self.flags[row] = code
            self._flag_changes += 1

    def query(self, params) -> np.ndarray:
        """Committed row indices matching the filters of `params` (page query arguments), in the asked order."""
        key = self._key(params) + (params.get("sort") or "row", params.get("order") or "asc")
        with self._lock:
            if key not in self._results:
                keep = self.mask(params)
                order = self.order(params.get("sort") or "row", params.get("order") or "asc")
                self._results[key] = order[keep[order]]
                while len(self._results) > 16:
                    self._results.popitem(last=False)
            self._results.move_to_end(key)
            return self._results[key]

    def mask(self, params, skip: str | None = None) -> np.ndarray:
        """(N,) bool: the committed rows the filters of params keep; skip: a column whose ranges are
        left out (filters.mask)."""
        key = self._key(params) + (skip,)
        with self._lock:
            if key not in self._masks:
                self._masks[key] = filters.mask(self, params, _refuse, skip)
                while len(self._masks) > 16:
                    self._masks.popitem(last=False)
            self._masks.move_to_end(key)
            return self._masks[key]

    def _key(self, params) -> tuple:
        return filters.key(params, self.codes) + ((self._flag_changes,) if params.get("flag") else ())

    def histogram(self, params, column: str, bins: int) -> dict:
        """Counts of column's values in bins over the rows params keep, its own ranges left out."""
        if column not in self.sortable or column == "row":
            raise QueryError(f"no histogram of {column!r}; numeric columns: {', '.join(self.sortable[1:])}")
        if not 1 <= bins <= filters.MAX_BINS:
            raise QueryError(f"bins must be 1 .. {filters.MAX_BINS}, got {bins}")
        own = any(r.partition(":")[0] == column for r in filters.values_of(params, "range"))
        keep = self.mask(params, skip=column if own else None)  # the columns without a range share one mask
        with self._lock:
            values = self.column(column)
            if (column, bins) not in self._bins:
                edges = filters.edges(values[self.committed], column in self.integer, bins)
                self._bins[column, bins] = (edges, None if edges is None else filters.bin_codes(values, edges))
                while len(self._bins) > 32:  # 2 bytes a row each
                    self._bins.popitem(last=False)
            self._bins.move_to_end((column, bins))
            edges, codes = self._bins[column, bins]
        return {"column": column, "integer": column in self.integer, **filters.histogram(values, keep, edges, codes)}

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
        """What the page's filter and sort controls offer: the values of committed rows."""
        with self._lock:
            mask = self.committed
            status_names = {v: k for k, v in STATUS_CODES.items()}
            statuses = np.unique(self.numeric["status"][mask]) if "status" in self.numeric else []
            present = {col: [values[i] for i in np.nonzero(np.bincount(codes[mask], minlength=len(values)))[0]]
                       for col, (values, codes) in self.codes.items()}
            return {"n": self.n, "committed": self.n_committed, "class": ["attack", "bonafide"], **present,
                    "status": [status_names.get(int(s), str(int(s))) for s in statuses],
                    "protocols": sorted(self.protocols), "groups": list(SPLIT_CODES),
                    "flags": ["none", "bad", "good", "any"], "sort": self.sortable,
                    "numeric": [{"name": c, "integer": c in self.integer} for c in self.sortable[1:]]}

    def order(self, column: str, direction: str) -> np.ndarray:
        if column not in self.sortable:
            raise QueryError(f"cannot sort by {column!r}; numeric columns: {', '.join(self.sortable)}")
        if direction not in ("asc", "desc"):
            raise QueryError(f"order {direction!r} is unknown; use asc or desc")
        if column not in self._orders:
            values = self.column(column)
            up = np.argsort(values, kind="stable")  # NaN last
            have = len(up) - int(np.isnan(values).sum())
            self._orders[column] = (up, np.concatenate([up[:have][::-1], up[have:]]))  # NaN last here too
        up, down = self._orders[column]
        return down if direction == "desc" else up

    def page(self, rows: np.ndarray, page: int, per_page: int) -> tuple[np.ndarray, int]:
        """(the rows of 1-based `page`, the number of pages); QueryError for a page beyond the last."""
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise QueryError(f"per_page must be 1 .. {MAX_PER_PAGE}, got {per_page}")
        pages = max(1, -(-len(rows) // per_page))
        if not 1 <= page <= pages:
            raise QueryError(f"page {page} is out of range 1 .. {pages}", 404)
        return rows[(page - 1) * per_page:page * per_page], pages


def _refuse(message: str):
    raise QueryError(message)
