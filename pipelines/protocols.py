"""`annotate protocols`: (re)write the protocols of a finished store from the dataset's lists.

Nothing is decoded or annotated: the adapter enumerates the dataset and each store row takes the
protocol codes of the media file its `meta/source` names. Protocol files that arrive after a run,
or corrected lists, need no new run.
"""

from __future__ import annotations

import dataclasses

import zarr

from annotator import store
from annotator.config import AnnotateConfig
from annotator.errors import AnnotatorError

from . import lock
from .run import open_adapter, protocol_codes


@dataclasses.dataclass
class ProtocolUpdate:
    written: list[str]
    kept: list[str]  # in the store, not given by the lists: left as they were
    matched: int  # store rows whose source the adapter lists
    rows: int
    notes: list[str]

    def report(self) -> str:
        lines = [f"note: {n}" for n in self.notes]
        lines.append(f"wrote {len(self.written)} protocol(s): {', '.join(self.written) or '(none)'}; "
                     f"{self.matched} of {self.rows} rows matched the dataset's files")
        if self.kept:
            lines.append(f"kept protocol(s) the lists no longer give: {', '.join(self.kept)}")
        return "\n".join(lines)


def rewrite_protocols(url: str, dataset: str, root: str | None, protocol_dir: str | None = None) -> ProtocolUpdate:
    """Write protocols/<name> of the store at url from the lists of `dataset` under `root`."""
    handle = store.open_store(url)
    cfg = AnnotateConfig.from_dict(handle.attrs.get("config", {}))
    if cfg.dataset != dataset:
        raise AnnotatorError(f"{url} holds dataset {cfg.dataset!r}, not {dataset!r}; pass --dataset {cfg.dataset}")
    n = handle["image"].shape[0]
    shards = store.plan_shards(n, store.shard_size_of(handle))
    if len(store.committed_ids(url)) < len(shards):
        raise AnnotatorError(f"{url} is not finished ({len(store.committed_ids(url))} of {len(shards)} shards "
                             "committed); finish it by rerunning its `annotate run` command, which writes protocols too")
    lock.check_free(url)
    cfg = dataclasses.replace(cfg, root=root or cfg.root, protocol_dir=protocol_dir or "")
    adapter = open_adapter(cfg)
    by_source: dict[str, dict[str, int]] = {}
    for ref in adapter.samples():
        by_source.setdefault(ref.source, ref.protocols)
    rows = [by_source.get(str(src)) for src in handle["meta/source"][:]]
    matched = sum(r is not None for r in rows)
    if matched == 0:
        raise AnnotatorError(f"none of the {n} rows of {url} is a file that {dataset} lists under {cfg.root}; "
                             "is --root the dataset this store was made from?")
    names = adapter.protocol_names()
    kept = store.write_protocols(url, protocol_codes([r or {} for r in rows], names))
    config = {**handle.attrs.get("config", {}), "protocol_dir": cfg.protocol_dir}  # where they came from
    zarr.open_group(url, mode="r+").attrs.update({"config": config})
    store.finalize(url)
    return ProtocolUpdate(names, kept, matched, n, adapter.findings.notes)
