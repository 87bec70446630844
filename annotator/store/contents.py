"""What a store holds, as `annotate inspect` reports it: counts over committed rows only (rows of
uncommitted shards hold placeholders and are "pending"), failures per source file, protocols,
provenance. Reads the metadata level of verify first, so a damaged store is named, not misreported."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from annotator.core.errors import AnnotatorError
from annotator.core.samples import Status

from .failures import FailedRow, summary_lines
from .problems import Problem, describe_error
from .schema import QUALITY_COLUMNS, stored_layout
from .verify import verify

COLUMNS = ("sample_id", "source", "frame_index", "split", "attack_type", "status", "error")


@dataclass
class Contents:
    url: str
    n: int
    size: int
    n_shards: int
    n_committed: int
    committed: np.ndarray  # (n,) bool: row of a committed shard
    meta: dict[str, np.ndarray]  # COLUMNS over all rows
    protocols: list[str]
    provenance: dict
    problems: list[Problem]  # what the metadata check found, besides pending shards
    flags: dict[str, int] | None = None  # QA flags (qa/ group) per kind; None without the group
    landmark_nme: np.ndarray | None = None  # --landmark-check: (n,) float, NaN where not checked
    max_nme: float | None = None
    landmark_layout: str = ""  # the layout's name (root attribute landmark_layout)
    quality: dict[str, np.ndarray] = field(default_factory=dict)  # the store's quality columns (schema.QUALITY_COLUMNS)

    def failed(self) -> list[FailedRow]:
        m, rows = self.meta, np.nonzero(self.committed & (self.meta["status"] != 0))[0]
        return [FailedRow(str(m["source"][i]), int(m["frame_index"][i]), int(m["status"][i]), str(m["error"][i]),
                          str(m["sample_id"][i])) for i in rows]

    def text(self) -> str:
        done = self.committed
        pending = int((~done).sum())
        lines = [f"{self.url}: {self.n} samples, crop {self.size} px, landmarks {self.landmark_layout}, "
                 f"{self.n_committed} of {self.n_shards} "
                 f"shards committed" + (f" ({pending} rows pending)" if pending else "")]
        for col in ("split", "attack_type") if done.any() else ():
            counts = Counter(str(v) or "(none)" for v in self.meta[col][done])
            lines.append(f"{col}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        counts = Counter(Status(int(s)).name.lower() for s in self.meta["status"][done])
        if pending:
            counts["pending"] = pending
        lines.append("status: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        n_sources = len(set(self.meta["source"][done].tolist()))
        lines += summary_lines(self.failed(), n_sources, int(done.sum()),
                               more=" (--failures lists every failed row)")
        if self.protocols:
            lines.append("protocols: " + ", ".join(self.protocols))
        if self.flags is not None:
            lines.append("qa flags: " + ", ".join(f"{k} {v}" for k, v in self.flags.items()))
        if self.landmark_nme is not None:
            v = self.landmark_nme[done & np.isfinite(self.landmark_nme)]
            if len(v):
                above = f"; {int((v > self.max_nme).sum())} above {self.max_nme:g} (landmark_disagreement)" \
                    if self.max_nme else ""
                lines.append(f"landmark NME, FAN vs FaceMesh ({len(v)} rows): median {np.median(v):.3f}, "
                             f"p90 {np.percentile(v, 90):.3f}, p99 {np.percentile(v, 99):.3f}, max {v.max():.3f}{above}")
        lines += quality_lines(self.quality, self.meta["sample_id"], done & (self.meta["status"] == 0))
        lines += [f"problem: {p}" for p in self.problems]
        lines.append("provenance: " + json.dumps(self.provenance, indent=2))
        return "\n".join(lines)


def read_contents(url: str) -> Contents:
    """A one-line AnnotatorError when the store cannot be read at all or a column it needs is damaged."""
    import zarr

    report = verify(url, "metadata")
    layout = report.layout
    if layout is None:
        raise AnnotatorError(str(report.problems[0]))
    meta = {}
    for col in COLUMNS:
        name = f"meta/{col}"
        if name not in layout.nodes:
            raise AnnotatorError(f"{layout.url}: {name} is missing; `annotate verify {layout.url} --repair` "
                                 "recreates it for a rerun to fill")
        try:
            meta[col] = zarr.open_array(store=layout.url, path=name, mode="r", zarr_format=3)[:]
        except Exception as e:
            raise AnnotatorError(f"{layout.url}: {name} cannot be read ({describe_error(e)}); `annotate verify "
                                 f"{layout.url}` names the damaged chunks and --repair reopens them") from None
    committed = np.zeros(layout.n, bool)
    for s in layout.shards:
        if s.id in layout.committed:
            committed[s.start:s.stop] = True
    protocols = sorted(k.split("/", 1)[1] for k in layout.nodes if k.startswith("protocols/"))
    flags = None
    if "qa/flag" in layout.nodes:
        from .qa import counts

        flags = counts(zarr.open_group(layout.url, mode="r"))
    nme = None
    if "meta/landmark_nme" in layout.nodes:
        nme = zarr.open_array(store=layout.url, path="meta/landmark_nme", mode="r", zarr_format=3)[:]
    max_nme = (layout.attrs.get("config", {}).get("landmark_check") or {}).get("max_nme")
    quality = {c: zarr.open_array(store=layout.url, path=f"meta/{c}", mode="r", zarr_format=3)[:]
               for c in QUALITY_COLUMNS if f"meta/{c}" in layout.nodes}
    return Contents(layout.url, layout.n, layout.size, len(layout.shards), len(layout.committed), committed, meta,
                    protocols, layout.attrs.get("provenance", {}),
                    [p for p in report.problems if p.action != "rerun"], flags, nme, max_nme,
                    stored_layout(layout.attrs)["name"], quality)


# Signals ranked low-first in `annotate inspect`: a low value is a doubtful label.
RANKED = ("temporal_consistency", "prior_agreement", "landmark_confidence")


def quality_lines(quality: dict[str, np.ndarray], sample_ids: np.ndarray, usable: np.ndarray,
                  worst: int = 5) -> list[str]:
    """`annotate inspect`'s quality section: each numeric signal's distribution over the usable rows
    (committed, status ok; NaN = no value), then the rows lowest in each ranked signal."""
    lines = []
    for col, values in quality.items():
        if values.dtype.kind != "f":
            continue
        v = values[usable & np.isfinite(values)]
        if len(v):
            p1, p5, p50 = np.percentile(v, [1, 5, 50])
            lines.append(f"quality {col} ({len(v)} rows): min {v.min():.3f}, p1 {p1:.3f}, p5 {p5:.3f}, "
                         f"median {p50:.3f}, max {v.max():.3f}")
    for col in RANKED:
        values = quality.get(col)
        if values is None:
            continue
        rows = np.flatnonzero(usable & np.isfinite(values))
        rows = rows[np.argsort(values[rows], kind="stable")][:worst]
        if len(rows):
            extra = quality.get("prior_worst_region") if col == "prior_agreement" else None
            lines.append(f"lowest {col}: " + ", ".join(
                f"{sample_ids[i]} {values[i]:.3f}" + (f" ({extra[i]})" if extra is not None else "") for i in rows))
    return lines
