"""What one `annotate run` did, row by row: annotated, failed (per source file), not written, left."""

from __future__ import annotations

from dataclasses import dataclass, field

from annotator.core.samples import SampleRef, Status
from annotator.store.failures import FailedRow, summary_lines


@dataclass
class RunSummary:
    """What a run did, counted once per row: every row is annotated, failed (a status row of a
    committed shard), unwritten (its shard failed after its retries) or left for later (a
    --resume-failed run that was not asked to redo its shard)."""

    n_samples: int
    n_shards: int
    skipped_shards: int = 0
    failed_samples: list = field(default_factory=list)  # [sample_id, status, error, source, frame_index]
    failed_shards: list = field(default_factory=list)  # [shard id, error]
    seconds: float = 0.0
    stage_seconds: dict = field(default_factory=dict)
    unwritten: list = field(default_factory=list)  # FailedRow per row of a failed shard (nothing written)
    left: int = 0  # rows of uncommitted shards this run did not try (--resume-failed)
    notes: list = field(default_factory=list)  # what the adapter or the run wants the user to know
    n_sources: int = 0  # source files (a video's frames share one)

    @property
    def annotated(self) -> int:
        return self.n_samples - len(self.failed_samples) - len(self.unwritten) - self.left

    @property
    def failure_rate(self) -> float:
        """Share of rows (frames) not annotated: status rows and the rows of failed shards."""
        return (len(self.failed_samples) + len(self.unwritten)) / max(1, self.n_samples)

    @property
    def failed(self) -> list[FailedRow]:
        """Every row that failed, status rows and unwritten rows alike."""
        # markers written before sources were recorded hold [sample_id, status, error]: the id stands in
        return [FailedRow(f[3] if len(f) > 3 else f[0], f[4] if len(f) > 4 else -1, f[1], f[2], f[0])
                for f in self.failed_samples] + list(self.unwritten)

    def report(self) -> str:
        lines = [f"note: {n}" for n in self.notes]
        parts = [f"{self.annotated} annotated", f"{len(self.failed_samples)} failed"]
        if self.unwritten:
            parts.append(f"{len(self.unwritten)} not written (their shards failed)")
        if self.left:
            parts.append(f"{self.left} left for a later run")
        lines += [f"{self.n_samples} samples in {self.n_shards} shards ({self.skipped_shards} already committed); "
                  f"{', '.join(parts)}, {self.seconds:.1f} s"]
        lines += summary_lines(self.failed, self.n_sources or self.n_samples, self.n_samples,
                               more=" (`annotate inspect STORE --failures` lists every failed row)")
        for sid, err in self.failed_shards:
            lines.append(f"shard {sid} FAILED after retries: {err}")
        if self.failed_shards:
            lines.append(f"{len(self.failed_shards)} shard(s) failed ({len(self.unwritten)} samples): fix the cause, "
                         "then rerun the same command (or add --resume-failed to retry only those)")
        return "\n".join(lines)


def unwritten_rows(refs: list[SampleRef], shard_id: int, error: str) -> list[FailedRow]:
    """The rows of a shard that failed after its retries, as failures of their source files."""
    return [FailedRow(r.source, -1, int(Status.FAILED), f"shard {shard_id} failed: {error}", r.sample_id)
            for r in refs]
