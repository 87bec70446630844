"""The scores of a `fas-train audit` table (OUT/audit.csv) as extra catalog columns of the served
store (`annotate serve A --audit PATH`): label_quality and worst_region_quality (numeric: sort, range,
histogram) and worst_region (text: a filter), joined to A's rows by (store_id, sample_id). Read with
the csv module: annotator/ does not import fas_train."""

from __future__ import annotations

import csv
import math

import numpy as np

from annotator.core.errors import AnnotatorError

NUMERIC = ("label_quality", "worst_region_quality")
TEXT = ("worst_region",)
NEEDED = ("store_id", "sample_id", *NUMERIC, *TEXT)


class AuditTable:
    """sample_id -> (label_quality, worst_region_quality, worst_region) of the table's rows of one store."""

    def __init__(self, path: str, scores: dict[str, tuple[float, float, str]]):
        self.path, self.scores = path, scores

    @classmethod
    def read(cls, path: str, store_id: str | None) -> "AuditTable":
        """The rows of path whose store_id is store_id; a one-line error for an unreadable table, one
        without the audit's columns, or one that holds no row of this store (naming both ids)."""
        try:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                missing = [c for c in NEEDED if c not in (reader.fieldnames or [])]
                if missing:
                    raise AnnotatorError(f"--audit {path} lacks the column(s) {', '.join(missing)}; give the "
                                         "audit.csv that `fas-train audit` writes")
                rows = list(reader)
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise AnnotatorError(f"--audit {path} cannot be read ({getattr(e, 'strerror', None) or e})") from None
        ids = sorted({r["store_id"] for r in rows})
        scores = {r["sample_id"]: (_float(r["label_quality"]), _float(r["worst_region_quality"]), r["worst_region"])
                  for r in rows if r["store_id"] == store_id}
        if not scores:
            held = ", ".join(ids[:3]) + (" ..." if len(ids) > 3 else "") if ids else "none (no rows)"
            raise AnnotatorError(f"--audit {path} holds no row of this store (store_id {store_id}); its store_id: "
                                 f"{held}: audit this store (`fas-train audit`) or serve the store it was made for")
        return cls(path, scores)

    def columns(self, sample_ids) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
        """(numeric name -> float64 values, text name -> values) for rows of these sample_ids: NaN and
        "" where the table lacks the sample."""
        got = [self.scores.get(str(s)) for s in sample_ids]
        numeric = {name: np.array([math.nan if g is None else g[k] for g in got], np.float64)
                   for k, name in enumerate(NUMERIC)}
        return numeric, {"worst_region": ["" if g is None else g[2] for g in got]}


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan  # an empty cell: no score
