"""The rows of a store as the QA page filters, sorts and pages them. Meta columns are read once and
kept as small integer codes (a 1,000,000-row store costs a few tens of MB), so a query is a few
numpy comparisons; sort orders are computed once per column and kept."""

from __future__ import annotations

import numpy as np

from .. import qa
from ..samples import STATUS_CODES

CATEGORIES = ("split", "attack_type", "segmenter", "dataset")  # text columns the page filters by
NUMERIC = ("frame_index", "n_faces", "face_score", "rotation", "status", "is_attack")  # sortable besides row
GROUPS = {"train": 0, "dev": 1, "test": 2}
MAX_PER_PAGE = 500


class QueryError(ValueError):
    """A query the catalog cannot answer; the message says what was expected."""


class Catalog:
    def __init__(self, root):
        meta = root["meta"]
        self.n = int(root["image"].shape[0])
        self.codes: dict[str, tuple[list[str], np.ndarray]] = {}
        for col in CATEGORIES:
            if col in meta:
                values, codes = np.unique(meta[col][:].astype(str), return_inverse=True)
                self.codes[col] = (values.tolist(), codes.astype(np.int32))
        self.numeric = {"row": np.arange(self.n)}
        for col in NUMERIC:
            if col in meta:
                self.numeric[col] = meta[col][:].astype(np.float64)
        self.protocols = {name.split("/", 1)[1]: root[name][:] for name in
                          (f"protocols/{k}" for k in root["protocols"].array_keys())}
        self.flags = qa.read_flags(root).copy()
        self._orders: dict[str, np.ndarray] = {}

    def choices(self) -> dict:
        """What the page's filter and sort controls offer."""
        status_names = {v: k for k, v in STATUS_CODES.items()}
        present = sorted({int(s) for s in np.unique(self.numeric.get("status", np.zeros(1)))})
        return {"n": self.n, "class": ["attack", "bonafide"], **{col: values for col, (values, _) in self.codes.items()},
                "status": [status_names.get(s, str(s)) for s in present], "protocols": sorted(self.protocols),
                "groups": list(GROUPS), "flags": ["none", "bad", "good", "any"], "sort": list(self.numeric)}

    def query(self, params: dict) -> np.ndarray:
        """Row indices matching the filters of `params` (page query arguments), in the asked order."""
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
        if column not in self.numeric:
            raise QueryError(f"cannot sort by {column!r}; numeric columns: {', '.join(self.numeric)}")
        if direction not in ("asc", "desc"):
            raise QueryError(f"order {direction!r} is unknown; use asc or desc")
        if column not in self._orders:
            self._orders[column] = np.argsort(self.numeric[column], kind="stable")
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
