"""Failed rows summarised per source file: a video that cannot be opened is one failure with its
frame count, not `--frames-per-video` of them (what `annotate run` and `annotate inspect` print)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from annotator.core.samples import Status


@dataclass(frozen=True)
class FailedRow:
    source: str  # path relative to the dataset root
    frame_index: int  # -1 for images and for videos that could not be opened
    status: int
    error: str
    sample_id: str = ""

    def to_dict(self) -> dict:
        return {"source": self.source, "frame": self.frame_index, "status": Status(self.status).name.lower(),
                "error": self.error, "sample_id": self.sample_id}


def by_source(rows: list[FailedRow]) -> list[tuple[str, int, FailedRow]]:
    """(source, failed rows of it, its first failed row) per source file, most failed rows first."""
    counts = Counter(r.source for r in rows)
    first: dict[str, FailedRow] = {}
    for r in rows:
        first.setdefault(r.source, r)
    return [(s, counts[s], first[s]) for s in sorted(counts, key=lambda s: (-counts[s], s))]


def rates_line(rows: list[FailedRow], n_sources: int, n_rows: int) -> str:
    """'failed: 6 of 16 source files (37.5 %), 60 of 70 frames (85.7 %)'."""
    files = len({r.source for r in rows})
    return (f"failed: {files} of {n_sources} source files ({100 * files / max(1, n_sources):.1f} %), "
            f"{len(rows)} of {n_rows} frames ({100 * len(rows) / max(1, n_rows):.1f} %)")


def summary_lines(rows: list[FailedRow], n_sources: int, n_rows: int, limit: int = 10,
                  more: str = "") -> list[str]:
    """The rates, failures by status, and the first `limit` source files with what went wrong."""
    if not rows:
        return []
    statuses = Counter(Status(r.status).name.lower() for r in rows)
    lines = [rates_line(rows, n_sources, n_rows),
             "failures by status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))]
    groups = by_source(rows)
    for source, count, r in groups[:limit]:
        frames = f"{count} frames" if count > 1 else "1 frame"
        lines.append(f"  {source}: {frames}, {Status(r.status).name.lower()}: {r.error}")
    if len(groups) > limit:
        lines.append(f"  ... and {len(groups) - limit} more source files{more}")
    return lines
