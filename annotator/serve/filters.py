"""The QA page's filters as numpy over the catalog's columns: a query's parameters to a boolean mask of
rows (text columns, class, status, protocol and group, QA flag, and ranges of numeric columns), the
key a query is cached under, and the histogram of a numeric column over the rows a mask keeps.

A range is `range=COLUMN:LO..HI` (repeatable, one or more per column): LO <= value <= HI, either
bound may be left out (`face_score:..0.5`, `share_attack:0.01..`), and `COLUMN:nan` keeps the rows
without a value. NaN is in no range: `COLUMN:..` keeps the rows that have one."""

from __future__ import annotations

import math

import numpy as np

from annotator.core.samples import SPLIT_CODES, STATUS_CODES
from annotator.store import qa

SINGLE = ("class", "status", "protocol", "group", "flag")  # one value each, besides the text columns
MAX_BINS = 200


def values_of(params, name: str) -> list[str]:
    """Every non-empty value of `name` in params: a request's MultiDict (repeated keys) or a dict."""
    if hasattr(params, "getlist"):
        return [v for v in params.getlist(name) if v]
    value = params.get(name)
    if isinstance(value, str):
        return [value] if value else []
    return [v for v in value or () if v]


def key(params, text_columns) -> tuple:
    """What a mask of params depends on, as a hashable (the order of repeated ranges does not matter)."""
    names = (*text_columns, *SINGLE)
    return (tuple((n, params.get(n)) for n in names if params.get(n)),
            tuple(sorted(values_of(params, "range"))))


def parse_range(text: str, numeric) -> tuple[str, float | None, float | None]:
    """(column, lo, hi) of `COLUMN:LO..HI` (lo, hi None for `COLUMN:nan`); a ValueError says what was
    expected."""
    column, _, spec = text.partition(":")
    if column not in numeric:
        raise ValueError(f"cannot filter a range of {column!r}; numeric columns: {', '.join(numeric)}")
    if spec == "nan":
        return column, None, None
    lo_text, dots, hi_text = spec.partition("..")
    if not dots:
        raise ValueError(f"range {text!r} is not COLUMN:LO..HI (either bound may be left out) or COLUMN:nan")
    try:
        lo = float(lo_text) if lo_text else -math.inf
        hi = float(hi_text) if hi_text else math.inf
    except ValueError:
        raise ValueError(f"range {text!r}: the bounds must be numbers") from None
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise ValueError(f"range {text!r}: LO must be a number at most HI")
    return column, lo, hi


def _in_range(values: np.ndarray, lo: float | None, hi: float | None) -> np.ndarray:
    if lo is None:
        return np.isnan(values)
    return (values >= lo) & (values <= hi)  # NaN compares false: in no range


def _text_filters(catalog, params, keep: np.ndarray, fail) -> None:
    for col, (values, codes) in catalog.codes.items():
        want = params.get(col)
        if want:
            if want not in values:
                fail(f"{col} {want!r} is not in the store; it has: {', '.join(values[:20])}")
            keep &= codes == values.index(want)


def _single_filters(catalog, params, keep: np.ndarray, fail) -> None:
    kind = params.get("class")
    if kind:
        if kind not in ("attack", "bonafide"):
            fail(f"class {kind!r} is unknown; use attack or bonafide")
        keep &= catalog.numeric["is_attack"] == (1.0 if kind == "attack" else 0.0)
    status = params.get("status")
    if status:
        if status not in STATUS_CODES:
            fail(f"status {status!r} is unknown; use one of {', '.join(STATUS_CODES)}")
        keep &= catalog.numeric["status"] == STATUS_CODES[status]
    protocol, group = params.get("protocol"), params.get("group")
    if group and not protocol:
        fail("group needs a protocol")
    if protocol:
        if protocol not in catalog.protocols:
            fail(f"protocol {protocol!r} is not in the store; it has: {', '.join(sorted(catalog.protocols))}")
        codes = catalog.protocols[protocol]
        if group:
            if group not in SPLIT_CODES:
                fail(f"group {group!r} is unknown; use train, dev or test")
            keep &= codes == SPLIT_CODES[group]
        else:
            keep &= codes >= 0
    flag = params.get("flag")
    if flag:
        if flag == "any":
            keep &= catalog.flags != 0
        elif flag in qa.FLAGS:
            keep &= catalog.flags == qa.FLAGS[flag]
        else:
            fail(f"flag {flag!r} is unknown; use none, bad, good or any")


def mask(catalog, params, fail, skip: str | None = None) -> np.ndarray:
    """(N,) bool: the committed rows params keep. skip: a column whose ranges are left out (its own
    histogram shows the rows the other filters keep, so that its brush can widen). fail(message)
    raises the caller's error."""
    keep = catalog.committed.copy()  # a pending row holds fill values or a write under way
    _text_filters(catalog, params, keep, fail)
    _single_filters(catalog, params, keep, fail)
    for text in values_of(params, "range"):
        try:
            column, lo, hi = parse_range(text, catalog.sortable)
        except ValueError as e:
            fail(str(e))
        if column != skip:
            keep &= _in_range(catalog.column(column), lo, hi)
    return keep


def edges(values: np.ndarray, integer: bool, bins: int) -> np.ndarray | None:
    """Bin edges over the finite values (the committed rows'): one bin per value for an integer column
    that spans fewer than `bins` values, else `bins` equal bins; None when no value is finite."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if integer and hi - lo < bins:
        return np.linspace(lo - 0.5, hi + 0.5, int(hi - lo) + 2)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def bin_codes(values: np.ndarray, bin_edges: np.ndarray) -> np.ndarray:
    """(N,) int16: each value's bin by numpy.histogram's rule (each bin [a, b), the last [a, b]); a
    NaN gets the code len(bins), a value outside the edges (infinite) len(bins) + 1. Computed once per
    column and bins, so that a histogram of any mask is one weighted bincount."""
    n = len(bin_edges) - 1
    codes = np.searchsorted(bin_edges, values, side="right") - 1
    codes[values == bin_edges[-1]] = n - 1
    codes[(codes < 0) | (codes >= n)] = n + 1
    codes[np.isnan(values)] = n
    return codes.astype(np.int16)


def histogram(values: np.ndarray, keep: np.ndarray, bin_edges: np.ndarray | None, codes: np.ndarray | None) -> dict:
    """Counts of values[keep] in the bins of bin_edges (codes: bin_codes of them), the NaN rows
    counted apart."""
    total = int(np.count_nonzero(keep))
    if bin_edges is None:
        return {"total": total, "nan": int(np.isnan(values[keep]).sum()), "edges": [], "counts": []}
    n = len(bin_edges) - 1
    counts = np.bincount(codes, weights=keep, minlength=n + 2).astype(np.int64)  # no gather of the kept rows
    return {"total": total, "nan": int(counts[n]), "edges": bin_edges.tolist(), "counts": counts[:n].tolist()}
