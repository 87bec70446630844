"""The task a worker runs: annotate one shard and commit it to the store."""

from __future__ import annotations

import time

from annotator.config import AnnotateConfig
from annotator.samples import SampleRef
from annotator.shard import annotate_shard
from annotator.store import Shard, write_shard


def run_shard(url: str, store_id: str, shard: Shard, refs: list[SampleRef], cfg: dict) -> dict:
    """Annotate refs (the rows of `shard`) and commit them. Returns the shard's summary:
    {"shard", "n", "failed": [[sample_id, status, error, source, frame_index], ...], "seconds": {stage: s}}."""
    result = annotate_shard(refs, AnnotateConfig.from_dict(cfg))
    m = result.meta
    failed = [[sid, s, e, src, f] for sid, s, e, src, f in
              zip(m["sample_id"], m["status"], m["error"], m["source"], m["frame_index"]) if s]
    summary = {"shard": shard.id, "n": len(refs), "failed": failed}
    t = time.perf_counter()
    write_shard(url, shard, result.arrays, result.meta, summary, store_id=store_id)
    summary["seconds"] = {**result.seconds, "write": time.perf_counter() - t}
    return summary
