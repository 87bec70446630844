"""The task a worker runs: annotate one shard and commit it to the store."""

from __future__ import annotations

import functools
import json
import time

from annotator.config import AnnotateConfig
from annotator.core.samples import SampleRef
from annotator.shard import Models, annotate_shard, build_models
from annotator.store import Shard, write_shard

# Threads each native library may use in this process; cluster.limit_threads lowers it in worker
# processes that were given one core each.
THREADS = {"decode": 0}


@functools.lru_cache(maxsize=4)
def _cached_models(key: str) -> Models:
    parts = json.loads(key)
    return build_models(AnnotateConfig(dataset="", root="", **parts["cfg"]), parts["threads"])


def models_for(cfg: AnnotateConfig) -> Models:
    """The config's models, built once per process and reused by every shard that process runs
    (keyed by the settings they are built from)."""
    used = ("detector", "landmarker", "landmarker_options", "segmenter", "segmenter_options", "runtime", "policy",
            "landmark_check", "face_fallback")
    key = {"cfg": {k: getattr(cfg, k) for k in used}, "threads": THREADS["decode"]}
    return _cached_models(json.dumps(key, sort_keys=True))


def run_shard(url: str, store_id: str, shard: Shard, refs: list[SampleRef], cfg: dict,
              models: Models | None = None) -> dict:
    """Annotate refs (the rows of `shard`) and commit them. Returns the shard's summary:
    {"shard", "n", "failed": [[sample_id, status, error, source, frame_index], ...], "seconds": {stage: s}}.
    models: what to annotate with (default: the config's, cached per process)."""
    config = AnnotateConfig.from_dict(cfg)
    result = annotate_shard(refs, config, models or models_for(config))
    m = result.meta
    failed = [[sid, s, e, src, f] for sid, s, e, src, f in
              zip(m["sample_id"], m["status"], m["error"], m["source"], m["frame_index"]) if s]
    summary = {"shard": shard.id, "n": len(refs), "failed": failed}
    t = time.perf_counter()
    write_shard(url, shard, result.arrays, result.meta, summary, store_id=store_id)
    summary["seconds"] = {**result.seconds, "write": time.perf_counter() - t}
    return summary
