"""Two label stores of the same samples compared row by row (`annotate diff A B`; docs/store.md).

Rows are matched by (meta/sample_id, meta/frame_index), never by position: the stores may order or
shard their rows differently, and one may hold rows the other lacks. Only committed rows count (a row
of an uncommitted shard is absent). Per matched row: the IoU of each label channel (attack, live,
background; a channel binarised as value > 0) and of each region id (names: the root attribute
`region_names`), NaN where the channel or region is empty in both rows (no IoU, not 1); the status
of both. Stores of different datasets (config["dataset"]) or crop sizes are refused in one line.

Streams: A is read one chunk (shard) of `label` and `region` at a time, B only in the chunks that
hold rows matched to that A chunk, through a cache of the last two B chunks (stores in the same order
read every B chunk once). Memory: the chunks, the meta columns used to match, and the DiffTable
(about 30 + 4 (3 + regions) bytes a row besides its texts). The text report is diff_report.py.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import zarr

from annotator import store
from annotator.core.errors import AnnotatorError
from annotator.core.samples import Status

from .places import normalize
from .shards import committed_rows
from .verify import require_sound

BOTH, ONLY_A, ONLY_B = 0, 1, 2
WHERE = {BOTH: "both", ONLY_A: "a", ONLY_B: "b"}
TABLE_FORMATS = (".csv", ".json")


@dataclass
class DiffTable:
    """The per-row result of diff_stores, M rows: the matched rows first (in A's row order), then the
    rows only in A (A's order), then those only in B (B's order). Arrays are (M,) unless said."""

    a: str
    b: str
    channels: list[str]
    regions: list[str]
    committed: tuple[int, int]  # committed rows of A and of B
    sample_id: np.ndarray  # object (text)
    frame_index: np.ndarray  # int64 (-1 for an image)
    where: np.ndarray  # uint8: BOTH, ONLY_A, ONLY_B
    row_a: np.ndarray  # int64 row in A, -1 where only in B
    row_b: np.ndarray  # int64 row in B, -1 where only in A
    dataset: np.ndarray  # object: meta/dataset (A's for matched rows)
    attack_type: np.ndarray  # object: meta/attack_type (A's for matched rows)
    status_a: np.ndarray  # int16 meta/status in A, -1 where absent
    status_b: np.ndarray  # int16 meta/status in B, -1 where absent
    channel_iou: np.ndarray  # (M, 3) float32, NaN where not matched or the channel is empty in both
    region_iou: np.ndarray  # (M, R) float32, NaN where not matched or the region is in neither row
    stored: tuple[int, int] = (0, 0)  # rows of A and of B, committed or not
    chunk_reads: tuple[int, int] = (0, 0)  # chunks of label and region read in A and in B

    def __len__(self) -> int:
        return len(self.where)

    @property
    def matched(self) -> int:
        return int((self.where == BOTH).sum())

    def mean_channel_iou(self) -> np.ndarray:
        """(M,) float32: each row's mean over its channels that have an IoU; NaN where none has."""
        return nanmean(self.channel_iou, axis=1)

    def summary(self) -> tuple[dict, list[dict]]:
        """(total, groups): counts and mean IoUs over all rows and per (dataset, attack_type), sorted."""
        datasets, d = np.unique(self.dataset, return_inverse=True)
        types, t = np.unique(self.attack_type, return_inverse=True)
        code = d.reshape(-1) * len(types) + t.reshape(-1)
        groups = [{"dataset": str(datasets[c // len(types)]), "attack_type": str(types[c % len(types)]),
                   **self._counts(code == c)} for c in np.unique(code).tolist()]
        return {"dataset": "all", "attack_type": "all", **self._counts(np.ones(len(self), bool))}, groups

    def _counts(self, mask: np.ndarray) -> dict:
        both = mask & (self.where == BOTH)
        changed = both & (self.status_a != self.status_b)
        changes: dict[str, int] = {}
        for sa, sb in zip(self.status_a[changed].tolist(), self.status_b[changed].tolist()):
            name = f"{status_name(sa)} -> {status_name(sb)}"
            changes[name] = changes.get(name, 0) + 1
        return {"matched": int(both.sum()), "only_a": int((mask & (self.where == ONLY_A)).sum()),
                "only_b": int((mask & (self.where == ONLY_B)).sum()), "status_changed": int(changed.sum()),
                "status_changes": dict(sorted(changes.items())),
                "channel_iou": _named(self.channels, nanmean(self.channel_iou[both], axis=0)),
                "region_iou": _named(self.regions, nanmean(self.region_iou[both], axis=0))}

    def records(self):
        """One dict per row (JSON-ready: NaN as None), in table order."""
        mean = self.mean_channel_iou()
        for i in range(len(self)):
            yield {"sample_id": str(self.sample_id[i]), "frame_index": int(self.frame_index[i]),
                   "in": WHERE[int(self.where[i])], "row_a": int(self.row_a[i]), "row_b": int(self.row_b[i]),
                   "dataset": str(self.dataset[i]), "attack_type": str(self.attack_type[i]),
                   "status_a": status_name(int(self.status_a[i])), "status_b": status_name(int(self.status_b[i])),
                   "mean_channel_iou": _number(mean[i]), "channel_iou": _named(self.channels, self.channel_iou[i]),
                   "region_iou": _named(self.regions, self.region_iou[i])}

    def differing(self) -> np.ndarray:
        """(M,) bool: matched rows with an IoU below 1 or another status."""
        low = (self.channel_iou < 1).any(axis=1) | (self.region_iou < 1).any(axis=1)
        return (self.where == BOTH) & (low | (self.status_a != self.status_b))

    def write_json(self, fp) -> None:
        """The summary and every row as one JSON object, written row by row (memory stays flat)."""
        total, groups = self.summary()
        head = {"a": self.a, "b": self.b, "rows_a": self.stored[0], "rows_b": self.stored[1],
                "committed_a": self.committed[0], "committed_b": self.committed[1],
                "channels": self.channels, "regions": self.regions, "total": total, "groups": groups}
        fp.write(json.dumps(head)[:-1] + ', "rows": [')
        for k, record in enumerate(self.records()):
            fp.write((",\n" if k else "\n") + json.dumps(record))
        fp.write("\n]}\n")

    def write_csv(self, fp) -> None:
        """One line per row: the record's fields, channel_<name> and region_<name> IoUs (empty: none)."""
        import csv

        writer = csv.writer(fp, lineterminator="\n")
        fixed = ["sample_id", "frame_index", "in", "row_a", "row_b", "dataset", "attack_type", "status_a",
                 "status_b", "mean_channel_iou"]
        writer.writerow(fixed + [f"channel_{c}" for c in self.channels] + [f"region_{r}" for r in self.regions])
        for rec in self.records():
            values = [rec[f] for f in fixed] + list(rec["channel_iou"].values()) + list(rec["region_iou"].values())
            writer.writerow(["" if v is None else v for v in values])

    def write(self, path: str) -> None:
        """The table as path's suffix says: .csv (write_csv) or .json (write_json)."""
        suffix = table_format(path)
        with open(path, "w", encoding="utf-8", newline="") as fp:
            (self.write_csv if suffix == ".csv" else self.write_json)(fp)


def table_format(path: str) -> str:
    """The suffix of a table file (.csv or .json); a one-line error for another."""
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix not in TABLE_FORMATS:
        raise AnnotatorError(f"--out {path}: the per-row table is written as .csv or .json, not "
                             f"{suffix or 'a name without suffix'}")
    return suffix


def status_name(code: int) -> str | None:
    """A meta/status code's name (ok, no_face, ...); None for -1 (the row is absent)."""
    if code < 0:
        return None
    return Status(code).name.lower() if code in Status._value2member_map_ else str(code)


def nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    """np.nanmean without its warning: NaN where a slice has no number."""
    have = ~np.isnan(x)
    count = have.sum(axis=axis)
    total = np.where(have, x, 0).sum(axis=axis, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32)


def _number(v) -> float | None:
    return None if np.isnan(v) else round(float(v), 6)


def _named(names: list[str], values: np.ndarray) -> dict:
    return {n: _number(v) for n, v in zip(names, values)}


# ---------------------------------------------------------------- IoU


def channel_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(k, C) float32 IoU of label rows a, b ((k, C, S, S) uint8), each channel binarised as value > 0;
    NaN where the channel is empty in both rows."""
    k, c = a.shape[:2]
    a, b = (a > 0).reshape(k, c, -1), (b > 0).reshape(k, c, -1)
    return _ratio((a & b).sum(-1, dtype=np.int64), (a | b).sum(-1, dtype=np.int64))


def region_iou(a: np.ndarray, b: np.ndarray, n_regions: int) -> np.ndarray:
    """(k, n_regions) float32 IoU of each region id between region rows a, b ((k, S, S) uint8); NaN
    where the region is in neither row. Ids from n_regions up (damage) count for no region."""
    bins = n_regions + 1
    codes = np.minimum(a, n_regions).astype(np.uint16) * bins + np.minimum(b, n_regions)
    joint = np.stack([np.bincount(row, minlength=bins * bins) for row in codes.reshape(len(a), -1)])
    joint = joint.reshape(len(a), bins, bins)  # [row, region in a, region in b] pixel counts
    inter = np.diagonal(joint, axis1=1, axis2=2)[:, :n_regions]
    union = joint.sum(2)[:, :n_regions] + joint.sum(1)[:, :n_regions] - inter
    return _ratio(inter, union)


def _ratio(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), np.nan).astype(np.float32)


# ---------------------------------------------------------------- reading


@dataclass
class _Side:
    """What diff reads of one store: its committed rows ((m,) int64) and meta columns over them."""

    url: str
    root: zarr.Group
    n: int
    shard: int
    rows: np.ndarray
    meta: dict[str, np.ndarray]


def _open(url: str, name: str, what: str = "`annotate diff`") -> tuple[zarr.Group, object]:
    url = normalize(url)
    layout = require_sound(url, "metadata", f"{what} compares two label stores: repair store {name} "
                           "(`annotate verify --repair`) or give another path", allow_pending=True)
    return store.open_store(url), layout


def _refuse_unlike(la, lb, ra: zarr.Group, rb: zarr.Group, what: str = "`annotate diff`") -> None:
    """One-line errors for stores that hold no comparable rows: other datasets, crop sizes, names."""
    da, db = ((lay.attrs.get("config") or {}).get("dataset") for lay in (la, lb))
    if da != db:
        raise AnnotatorError(f"{la.url} and {lb.url} are stores of different datasets ({da!r} and {db!r}); "
                             f"{what} compares two stores of the same samples")
    sa, sb = ra["image"].shape[1:], rb["image"].shape[1:]
    if sa != sb:
        raise AnnotatorError(f"{la.url} and {lb.url} hold crops of different sizes ({sa[0]} and {sb[0]} px); "
                             f"{what} compares stores annotated at the same --size")
    for attr in ("region_names", "label_channels"):
        if list(la.attrs.get(attr, [])) != list(lb.attrs.get(attr, [])):
            raise AnnotatorError(f"{la.url} and {lb.url} name their {attr} differently; their ids cannot be compared")


def open_comparable(a_url: str, b_url: str, what: str = "`annotate diff`"):
    """((root, layout) of A, (root, layout) of B), refused in one line as diff_stores refuses them
    (unsound metadata, other datasets, crop sizes or names); what: the command named in the message."""
    (ra, la), (rb, lb) = _open(a_url, "A", what), _open(b_url, "B", what)
    _refuse_unlike(la, lb, ra, rb, what)
    return (ra, la), (rb, lb)


def read_keys(url: str, root: zarr.Group, layout) -> _Side:
    """The committed rows of a store with their sample_id and frame_index (what rows are matched by)."""
    return _read_side(url, root, layout, ("sample_id", "frame_index"))


def _read_side(url: str, root: zarr.Group, layout, columns: tuple[str, ...]) -> _Side:
    rows = np.flatnonzero(committed_rows(url, layout.n, layout.shard_size)).astype(np.int64)
    return _Side(url, root, layout.n, layout.shard_size, rows, {c: _column(root, c, rows) for c in columns})


GROUP_COLUMNS = ("dataset", "attack_type")  # few values, held once each (not one text object a row)


def _column(root: zarr.Group, name: str, rows: np.ndarray) -> np.ndarray:
    """meta/<name> at rows, reading only their chunks (others may be uncommitted or damaged)."""
    arr = root[f"meta/{name}"]
    if not len(rows):
        return np.zeros(0, dtype=arr.dtype if isinstance(arr.dtype, np.dtype) else object)
    values = arr.oindex[rows]
    if name in GROUP_COLUMNS:
        uniq, inverse = np.unique(values, return_inverse=True)
        return uniq[inverse.reshape(-1)]
    return values


def _match(a: _Side, b: _Side) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ia, ib, only_a, only_b): positions into a.rows and b.rows of the matched pairs (in A's order),
    and of the rows in one store only. Keys: sample_id (as its rank among both stores' ids) and frame_index."""
    ids = np.concatenate([a.meta["sample_id"], b.meta["sample_id"]]).astype(object)
    ranks = np.unique(ids, return_inverse=True)[1].reshape(-1).astype(np.int64)
    frames = np.concatenate([a.meta["frame_index"], b.meta["frame_index"]]).astype(np.int64) & 0xFFFFFFFF
    keys = (ranks << 32) | frames
    ka, kb = keys[:len(a.rows)], keys[len(a.rows):]
    for side, k in ((a, ka), (b, kb)):
        _refuse_duplicates(side, k)
    _, ia, ib = np.intersect1d(ka, kb, assume_unique=True, return_indices=True)
    order = np.argsort(ia, kind="stable")
    ia, ib = ia[order], ib[order]
    only_a = np.setdiff1d(np.arange(len(ka)), ia, assume_unique=True)
    only_b = np.setdiff1d(np.arange(len(kb)), ib, assume_unique=True)
    return ia, ib, only_a, only_b


def _refuse_duplicates(side: _Side, keys: np.ndarray) -> None:
    uniq, first, counts = np.unique(keys, return_index=True, return_counts=True)
    if len(uniq) == len(keys):
        return
    i = first[np.argmax(counts > 1)]
    raise AnnotatorError(f"{side.url} holds sample {side.meta['sample_id'][i]!s} frame "
                         f"{int(side.meta['frame_index'][i])} in {int(counts.max())} committed rows; `annotate diff` "
                         "matches rows by sample_id and frame_index, which must name one row")


class _Chunks:
    """`label` and `region` of a store read one whole chunk (shard) at a time; the last `keep` kept."""

    def __init__(self, side: _Side, keep: int = 2):
        self.side, self.keep = side, keep
        self.label, self.region = side.root["label"], side.root["region"]
        self.cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.reads = 0

    def get(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """(label (k, 3, S, S), region (k, S, S)) of the chunk's rows."""
        if chunk in self.cache:
            self.cache.move_to_end(chunk)
            return self.cache[chunk]
        start = chunk * self.side.shard
        stop = min(start + self.side.shard, self.side.n)
        self.cache[chunk] = (self.label[start:stop], self.region[start:stop])
        self.reads += 1
        while len(self.cache) > self.keep:
            self.cache.popitem(last=False)
        return self.cache[chunk]


def _fill_iou(a: _Side, b: _Side, ra: np.ndarray, rb: np.ndarray, table: DiffTable, progress: bool) -> None:
    """Matched pairs (rows ra of A, rb of B, sorted by ra; table rows 0..len-1) into the table's IoUs."""
    from tqdm import tqdm

    chunk_a = ra // a.shard
    starts = np.flatnonzero(np.r_[True, chunk_a[1:] != chunk_a[:-1]]) if len(ra) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(ra)].astype(np.int64)
    reader_a, reader_b = _Chunks(a, keep=1), _Chunks(b, keep=2)
    n_regions = len(table.regions)
    for k, (s, e) in enumerate(tqdm(list(zip(starts, ends)), desc="diff", unit="chunk", disable=not progress)):
        label_a, region_a = reader_a.get(int(chunk_a[s]))
        pos = np.arange(s, e)
        local_a = ra[pos] - chunk_a[s] * a.shard
        chunk_b = rb[pos] // b.shard
        later = set((rb[e:ends[k + 1]] // b.shard).tolist()) if k + 1 < len(ends) else set()
        # the B chunks cached first (before they leave the cache), those the next A chunk needs last
        # (so that they stay): stores in the same or in reverse order read each B chunk once
        for cb in sorted(set(chunk_b.tolist()), key=lambda c: (c not in reader_b.cache, c in later, c)):
            sel = chunk_b == cb
            label_b, region_b = reader_b.get(cb)
            local_b = rb[pos[sel]] - cb * b.shard
            table.channel_iou[pos[sel]] = channel_iou(label_a[local_a[sel]], label_b[local_b])
            table.region_iou[pos[sel]] = region_iou(region_a[local_a[sel]], region_b[local_b], n_regions)
    table.chunk_reads = (reader_a.reads, reader_b.reads)


def diff_stores(a_url: str, b_url: str, progress: bool = False) -> DiffTable:
    """Compare the committed rows of the stores at a_url and b_url (paths or fsspec URLs) row by row.
    One-line AnnotatorError when either is not a sound label store (verify's metadata level) or they
    differ in dataset, crop size or region / channel names."""
    (ra, la), (rb, lb) = open_comparable(a_url, b_url)
    a = _read_side(la.url, ra, la, ("sample_id", "frame_index", "status", *GROUP_COLUMNS))
    b = _read_side(lb.url, rb, lb, ("sample_id", "frame_index", "status"))
    ia, ib, only_a, only_b = _match(a, b)
    # B's groups are needed only for its own rows: read them there alone
    b_groups = {c: _column(rb, c, b.rows[only_b]) for c in GROUP_COLUMNS}
    table = _table(la, a, b, ia, ib, only_a, only_b, b_groups)
    _fill_iou(a, b, a.rows[ia], b.rows[ib], table, progress)
    return table


def _table(layout, a: _Side, b: _Side, ia, ib, only_a, only_b, b_groups: dict) -> DiffTable:
    """The DiffTable with every column but the IoUs (NaN until _fill_iou)."""
    na, m = len(only_a), len(ia)
    ta = np.concatenate([ia, only_a])  # A positions of the table's first m + na rows

    def cat(a_part, b_part, dtype):
        return np.concatenate([np.asarray(a_part, dtype=dtype), np.asarray(b_part, dtype=dtype)])

    missing_a, missing_b = np.full(len(only_b), -1, np.int64), np.full(na, -1, np.int64)
    regions = list(layout.attrs.get("region_names", []))
    channels = list(layout.attrs.get("label_channels", ["attack", "live", "background"]))
    total = m + na + len(only_b)
    return DiffTable(
        a=a.url, b=b.url, channels=channels, regions=regions, committed=(len(a.rows), len(b.rows)), stored=(a.n, b.n),
        sample_id=cat(a.meta["sample_id"][ta], b.meta["sample_id"][only_b], object),
        frame_index=cat(a.meta["frame_index"][ta], b.meta["frame_index"][only_b], np.int64),
        where=np.repeat(np.array([BOTH, ONLY_A, ONLY_B], np.uint8), [m, na, len(only_b)]),
        row_a=cat(a.rows[ta], missing_a, np.int64),
        row_b=cat(np.concatenate([b.rows[ib], missing_b]), b.rows[only_b], np.int64),
        dataset=cat(a.meta["dataset"][ta], b_groups["dataset"], object),
        attack_type=cat(a.meta["attack_type"][ta], b_groups["attack_type"], object),
        status_a=cat(a.meta["status"][ta], missing_a, np.int16),
        status_b=cat(np.concatenate([b.meta["status"][ib], missing_b]), b.meta["status"][only_b], np.int16),
        channel_iou=np.full((total, len(channels)), np.nan, np.float32),
        region_iou=np.full((total, len(regions)), np.nan, np.float32))
