"""What the dataset's adapter says of each row now, against what a store holds (docs/store.md,
"Rows and their dataset"). A rerun that resumes a store must not leave rows whose split, subject,
protocol or label the dataset no longer gives: it names them and refuses, and `annotate protocols`
rewrites the list fields of a store whose media are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from annotator.core.names import storable
from annotator.core.samples import SampleRef

# Fields that decide a row's identity or its label map (the policy fuses the attack type into it):
# a change means annotating again (--overwrite).
IDENTITY = ("sample_id", "video_id", "is_attack", "attack_type")
# Fields the dataset's lists decide and no pixel depends on: `annotate protocols` rewrites them.
LISTED = ("split", "subject", "pai")


def ref_column(refs: list[SampleRef], col: str) -> np.ndarray:
    """One meta column as the refs give it and the store holds it (text as stored: annotator/core/names.py;
    is_attack as bool)."""
    if col == "is_attack":
        return np.fromiter((r.is_attack for r in refs), bool, len(refs))
    if col in IDENTITY or col in LISTED or col == "source":
        return np.array([storable(getattr(r, col)) for r in refs], dtype=object)
    return np.array([storable(r.extra.get(col, "")) for r in refs], dtype=object)


def differs(col: str, stored: np.ndarray, now: np.ndarray) -> np.ndarray:
    """(n,) bool: rows whose stored value of `col` is not the one the dataset now gives."""
    return (stored.astype(bool) != now) if col == "is_attack" else (stored.astype(str) != now.astype(str))


@dataclass
class RowDifferences:
    """Per column, the store rows (committed ones) whose value the dataset now gives otherwise."""

    identity: dict[str, np.ndarray] = field(default_factory=dict)
    listed: dict[str, np.ndarray] = field(default_factory=dict)  # LISTED and the adapter's extra columns
    protocols: list[str] = field(default_factory=list)  # protocols whose codes differ or that are new

    def __bool__(self) -> bool:
        return bool(self.identity or self.listed or self.protocols)

    @staticmethod
    def describe(cols: dict[str, np.ndarray], stored: dict[str, np.ndarray], now: dict[str, np.ndarray]) -> str:
        parts = []
        for col, rows in cols.items():
            i = int(rows[0])
            parts.append(f"{col} of {len(rows)} row(s) (first: row {i}, stored {stored[col][i]!r}, now {now[col][i]!r})")
        return "; ".join(parts)


def compare(root, refs: list[SampleRef], committed: np.ndarray, protocol_codes: dict[str, np.ndarray]):
    """(RowDifferences, stored values, the dataset's values) of the committed rows of an open store
    (protocol codes too: rows not yet written take the current codes when they are). An extra column
    the store lacks counts as a difference of every committed row that has a value."""
    meta = root["meta"]
    cols = list(IDENTITY) + list(LISTED) + sorted({k for r in refs for k in r.extra})
    stored, now, out = {}, {}, RowDifferences()
    rows = np.nonzero(committed)[0]
    for col in cols:
        now[col] = ref_column(refs, col)
        # committed rows only: a chunk a repair reopened may still be damaged until the rerun rewrites it
        stored[col] = np.full(len(refs), "", dtype=object)
        if col in meta:
            stored[col] = stored[col].astype(meta[col].dtype) if meta[col].dtype == bool else stored[col]
            stored[col][rows] = meta[col].oindex[rows]
        a, b = stored[col][rows], now[col][rows]
        differ = rows[differs(col, a, b)]
        if len(differ):
            (out.identity if col in IDENTITY else out.listed)[col] = differ
    have = {k for k, _ in root["protocols"].arrays()} if "protocols" in root else set()
    for name, codes in sorted(protocol_codes.items()):  # committed rows: the others get them when written
        was = root[f"protocols/{name}"].oindex[rows] if name in have else np.full(len(rows), -1, np.int8)
        if not np.array_equal(was, codes[rows]):
            out.protocols.append(name)
    return out, stored, now
