"""Training rows from label stores: the committed, annotated rows of a protocol's group (train / dev
/ test) over one or more stores, with their meta columns (a Selection, which data.py streams)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from annotator.core.errors import AnnotatorError, SettingError
from annotator.core.samples import SPLIT_CODES, Status
from annotator.store import committed_rows, open_store, shard_size_of
from annotator.store import protocol_names as store_protocols

# Pseudo-protocols: "split" uses meta/split (the dataset's own train/dev/test), "all" every row.
PSEUDO_PROTOCOLS = ("split", "all")
META = ("sample_id", "video_id", "frame_index", "is_attack", "attack_type", "dataset")


@dataclass
class Part:
    """The selected rows of one store: url, sorted row indices (int64), rows per chunk."""

    url: str
    rows: np.ndarray
    chunk: int
    flagged_out: int = 0  # rows of the group left out because label QA flagged them bad


@dataclass
class Selection:
    """Rows of one or more stores for one group of a protocol, with their meta columns (concatenated
    over parts in order: position p of the selection is row parts[k].rows[p - offset_k])."""

    parts: list[Part]
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    domain_codes: np.ndarray | None = None  # set by use_domain_key; else the domain is the store
    row_weight: np.ndarray | None = None  # set by weigh_rows; else every row weighs 1

    def __len__(self) -> int:
        return sum(len(p.rows) for p in self.parts)

    @property
    def offsets(self) -> list[int]:
        return list(np.cumsum([0] + [len(p.rows) for p in self.parts])[:-1])

    @property
    def attack_code(self) -> np.ndarray:
        """(len,) int64: each row's attack type as its index in annotator.label.ATTACK_TYPES (an
        augmented row's "mcrea:<type>" counts as <type>; an unknown type is -1)."""
        from annotator.label import ATTACK_TYPES

        index = {t: i for i, t in enumerate(ATTACK_TYPES)}
        types = self.meta.get("attack_type", np.array([], dtype=object))
        return np.array([index.get(str(t).removeprefix("mcrea:"), -1) for t in types], dtype=np.int64)

    @property
    def domain(self) -> np.ndarray:
        """(len,) int64: the domain of each position for domain-generalization models: which store
        (part) it comes from, or its code after use_domain_key."""
        if self.domain_codes is not None:
            return self.domain_codes
        return np.repeat(np.arange(len(self.parts)), [len(p.rows) for p in self.parts]).astype(np.int64)

    def use_domain_key(self, key: str, values: list[str]) -> None:
        """Domains from the meta column `key` (read by select(columns=...)): the index of each row's
        value in `values`, -1 for a value not among them."""
        index = {v: i for i, v in enumerate(values)}
        self.domain_codes = np.array([index.get(str(v), -1) for v in self.meta[key]], dtype=np.int64)


    def weigh_rows(self, column: str, floor: float) -> None:
        """Row weights (row_weights()) from the meta column `column` (read by select(columns=...)), or
        from an audit's label_quality with column "audit:PATH/audit.csv"."""
        values = audit_quality(self, column.removeprefix("audit:")) if column.startswith("audit:") else self.meta[column]
        self.row_weight = row_weights(values, column, floor)

    def store_ids(self) -> np.ndarray:
        """(len,) str: the store_id root attribute of each row's store (what audit tables are keyed by)."""
        return np.concatenate([[str(open_store(p.url).attrs.get("store_id", ""))] * len(p.rows) for p in self.parts])

    @property
    def weights(self) -> np.ndarray:
        """(len,) float32: each row's loss weight (1 unless weigh_rows set them)."""
        return self.row_weight if self.row_weight is not None else np.ones(len(self), np.float32)


def audit_quality(sel: Selection, path: str) -> np.ndarray:
    """(len,) float32: each row's label_quality in a `fas-train audit` table, matched by the store's
    store_id and the row's sample_id; NaN for a row the audit did not score."""
    import csv

    try:
        with open(path, newline="") as f:
            table = {(r["store_id"], r["sample_id"]): float(r["label_quality"]) for r in csv.DictReader(f)}
    except (OSError, KeyError, ValueError) as e:
        raise SettingError("weight_by", f"cannot read the audit table {path} ({e}); write one with `fas-train audit`")
    ids = sel.store_ids()
    return np.array([table.get((ids[i], str(sel.meta["sample_id"][i])), np.nan) for i in range(len(sel))], np.float32)


def row_weights(values: np.ndarray, column: str, floor: float) -> np.ndarray:
    """`fas-train train --weight-by COLUMN`: a quality signal in [0, 1], higher = better (docs/store.md,
    "Quality signals") -> loss weights floor + (1 - floor) * clip(value, 0, 1), so a doubtful row
    weighs down to `floor` and a sound one 1; NaN (no signal for the row) weighs 1."""
    if values.dtype.kind != "f":
        raise SettingError("weight_by", f"{column} is not a numeric quality column (dtype {values.dtype})")
    w = floor + (1.0 - floor) * np.clip(values.astype(np.float64), 0.0, 1.0)
    return np.where(np.isnan(w), 1.0, w).astype(np.float32)


def protocol_names(url: str) -> list[str]:
    return store_protocols(open_store(url))


def select_rows(url: str, protocol: str, group: str, root=None, exclude_flagged: bool = False) -> Part:
    """Rows of `url` in `group` (train/dev/test) of `protocol`, committed (docs/store.md), annotated
    without error (status 0), and with exclude_flagged not flagged bad in label QA (qa/flag, annotator/store/qa.py).
    root: the store already opened (else it is opened here)."""
    if group not in SPLIT_CODES:
        raise AnnotatorError(f"unknown group {group!r}; use one of {', '.join(SPLIT_CODES)}")
    root = open_store(url) if root is None else root
    n = root["meta/status"].shape[0]
    committed = committed_rows(url, n, shard_size_of(root))
    if not committed.any():
        raise AnnotatorError(f"{url} has no committed rows (its `annotate run` has not finished a shard); rerun "
                             "that command, then train")
    _note_pending(url, int((~committed).sum()))
    done = np.nonzero(committed)[0]
    # only committed chunks are read: a shard a repair reopened may hold a damaged chunk until rerun
    status = np.full(n, -1, np.int16)
    status[done] = root["meta/status"].oindex[done]
    if protocol == "all":
        chosen = np.ones(len(status), bool)
    elif protocol == "split":
        chosen = np.zeros(n, bool)
        chosen[done] = root["meta/split"].oindex[done].astype(str) == group
    else:
        names = store_protocols(root)
        if protocol not in names:
            raise AnnotatorError(f"{url} has no protocol {protocol!r}; it has: "
                                 f"{', '.join(list(PSEUDO_PROTOCOLS) + names)}")
        chosen = root[f"protocols/{protocol}"][:] == SPLIT_CODES[group]
    chosen &= committed & (status == int(Status.OK))  # an uncommitted row reads as zeros with status 0
    flagged_out = 0
    if exclude_flagged:
        from annotator.store.qa import FLAGS, read_flags

        bad = chosen & (read_flags(root) == FLAGS["bad"])
        flagged_out = int(bad.sum())
        chosen &= ~bad
    rows = np.nonzero(chosen)[0].astype(np.int64)
    return Part(url, rows, shard_size_of(root), flagged_out)


_NOTED: set[tuple[str, int]] = set()


def _note_pending(url: str, pending: int) -> None:
    """Say once per process and store that rows of uncommitted shards are left out."""
    if pending and (url, pending) not in _NOTED:
        _NOTED.add((url, pending))
        print(f"note: {url}: {pending} row(s) of uncommitted shards left out (their annotation has not "
              "finished; `annotate inspect` counts them as pending, a rerun of `annotate run` finishes them)",
              file=sys.stderr)


def _with_group(roots: list, group: str, protocol: str) -> str:
    """"; protocols with a dev group: a, b" (the stores' protocols that have rows in `group`; a
    release's official protocol may have no dev split, as CelebA-Spoof's intra_test), or ""."""
    code = SPLIT_CODES[group]
    having = sorted({name for root in roots for name in store_protocols(root)
                     if name != protocol and (root[f"protocols/{name}"][:] == code).any()})
    return f"; protocols with a {group} group: {', '.join(having)}" if having else ""


def select(stores: list[str], protocol: str, group: str, needs: tuple[str, ...] = (),
           columns: tuple[str, ...] = (), exclude_flagged: bool = False) -> Selection:
    """The rows of `group` of `protocol` over several stores (each opened once); one-line errors
    when a store lacks an array in `needs` or a meta column in `columns` (read besides META), or
    the selection is empty. exclude_flagged: leave out rows flagged bad in label QA."""
    if not stores:
        raise AnnotatorError("no store given")
    parts, roots = [], []
    for url in stores:
        root = open_store(url)
        missing = [n for n in needs if n not in root]
        if missing:
            raise AnnotatorError(f"{url} lacks {', '.join(missing)}, which this model needs")
        absent = [c for c in columns if f"meta/{c}" not in root]
        if absent:
            raise AnnotatorError(f"{url} has no meta column {', '.join(absent)}")
        parts.append(select_rows(url, protocol, group, root, exclude_flagged))
        roots.append(root)
    sel = Selection(parts)
    if not len(sel):
        raise AnnotatorError(f"protocol {protocol!r} selects no annotated rows of group {group!r} in "
                             f"{', '.join(stores)}{_with_group(roots, group, protocol)}")
    cols = {c: [] for c in (*META, *columns)}
    for p, root in zip(parts, roots):
        meta = root["meta"]
        for c in cols:
            cols[c].append(meta[c].oindex[p.rows] if c in meta else np.full(len(p.rows), "", dtype=object))
    sel.meta = {c: np.concatenate(v) for c, v in cols.items()}
    sel.meta["is_attack"] = sel.meta["is_attack"].astype(bool)
    return sel
