"""What a training run learns from and is checked on, said before the first step: rows per group
(train / dev / test) and class, per store and per domain, and the rows --exclude-flagged left out
(RUN/rows.json and a few lines on stderr)."""

from __future__ import annotations

import numpy as np

from fas_train.selection import Selection


def _classes(is_attack: np.ndarray) -> dict:
    return {"rows": int(len(is_attack)), "bona_fide": int((~is_attack).sum()), "attack": int(is_attack.sum())}


def row_counts(groups: dict[str, Selection], domain_values: list[str] | None = None) -> dict:
    """{group: {rows, bona_fide, attack, flagged_out, by_store: {url: {...}}, by_domain: {...}}}.
    by_domain is there for a selection whose domains come from a meta column (ccdd --domain-key);
    its keys are the column's values ("(other)" for a row whose value is not one of them)."""
    out = {}
    for name, sel in groups.items():
        att = np.asarray(sel.meta["is_attack"], bool)
        entry = {**_classes(att), "flagged_out": sum(p.flagged_out for p in sel.parts), "by_store": {}}
        for p, off in zip(sel.parts, sel.offsets):
            entry["by_store"][p.url] = _classes(att[off:off + len(p.rows)])
        if sel.domain_codes is not None:
            names = list(domain_values or [])
            entry["by_domain"] = {
                (names[c] if 0 <= c < len(names) else "(other)"): _classes(att[sel.domain_codes == c])
                for c in np.unique(sel.domain_codes).tolist()}
        out[name] = entry
    return out


def describe(counts: dict, exclude_flagged: bool) -> list[str]:
    """The lines printed at the start of training."""
    def cls(c):
        return f"{c['rows']} ({c['bona_fide']} bona fide, {c['attack']} attack)"

    lines = ["rows: " + "; ".join(f"{g} {cls(c)}" for g, c in counts.items())]
    for g, c in counts.items():
        if len(c["by_store"]) > 1:
            lines += [f"  {g} {url}: {cls(s)}" for url, s in c["by_store"].items()]
        lines += [f"  {g} domain {d}: {cls(s)}" for d, s in c.get("by_domain", {}).items()]
    if exclude_flagged:  # only training rows are left out: dev and test judge videos, not pixel labels
        lines.append(f"--exclude-flagged left out {counts['train']['flagged_out']} train row(s) flagged bad in "
                     "label QA")
    return lines
