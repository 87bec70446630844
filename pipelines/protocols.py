"""`annotate protocols`: (re)write a store's protocols and per-row list fields from the dataset's lists.

Nothing is decoded or annotated: the adapter enumerates the dataset and each store row takes the
protocol codes, split, subject and extra columns of the media file its `meta/source` names.
Protocol files that arrive after a run, corrected lists or a manifest added later need no new run;
an unfinished store is rewritten too (its later shards take the same values from the adapter).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import zarr

from annotator import store
from annotator.config import AnnotateConfig
from annotator.core.errors import AnnotatorError
from annotator.core.names import storable
from annotator.core.samples import SampleRef

from pipelines import lock
from pipelines.listing import IDENTITY, LISTED, differs, ref_column
from pipelines.prepare import open_adapter, protocol_codes


@dataclasses.dataclass
class ProtocolUpdate:
    written: list[str]
    kept: list[str]  # in the store, not given by the lists: left as they were
    matched: int  # store rows whose source the adapter lists
    rows: int
    notes: list[str]
    fields: dict[str, int] = dataclasses.field(default_factory=dict)  # meta column -> rows whose value changed

    def report(self) -> str:
        lines = [f"note: {n}" for n in self.notes]
        lines.append(f"wrote {len(self.written)} protocol(s): {', '.join(self.written) or '(none)'}; "
                     f"{self.matched} of {self.rows} rows matched the dataset's files")
        if self.fields:
            lines.append("rewrote " + ", ".join(f"meta/{c} of {n} row(s)" for c, n in sorted(self.fields.items())))
        if self.kept:
            lines.append(f"kept protocol(s) the lists no longer give: {', '.join(self.kept)}")
        return "\n".join(lines)


def rewrite_protocols(url: str, dataset: str, root: str | None, protocol_dir: str | None = None,
                      on_conflict: str | None = None) -> ProtocolUpdate:
    """Write protocols/<name> and the per-row list fields (meta split, subject, pai and the adapter's
    extra columns, created when new) of the store at url from `dataset` under `root`. Rows are matched
    by their source file; a row whose identity or label the dataset now gives otherwise is refused
    (that needs annotating again). on_conflict: None keeps the store's setting."""
    handle = store.open_store(url)
    cfg = AnnotateConfig.from_dict(handle.attrs.get("config", {}))
    if cfg.dataset != dataset:
        raise AnnotatorError(f"{url} holds dataset {cfg.dataset!r}, not {dataset!r}; pass --dataset {cfg.dataset}")
    n = handle["image"].shape[0]
    cfg = dataclasses.replace(cfg, root=root or cfg.root, protocol_dir=protocol_dir or "",
                              on_conflict=cfg.on_conflict if on_conflict is None else on_conflict)
    with lock.StoreLock(url):  # it rewrites meta columns: no `annotate run` may commit meanwhile
        return _rewrite(url, handle, cfg, dataset, n)


def _rewrite(url: str, handle, cfg: AnnotateConfig, dataset: str, n: int) -> ProtocolUpdate:
    adapter = open_adapter(cfg)
    adapter.settle_conflicts(cfg.on_conflict)
    by_source: dict[str, SampleRef] = {}
    for ref in adapter.settle_rows(list(adapter.samples()), cfg.on_conflict):
        by_source.setdefault(storable(ref.source), ref)  # as meta/source holds it
    committed = np.nonzero(store.committed_rows(url, n, store.shard_size_of(handle)))[0]
    sources = np.full(n, "", dtype=object)  # rows not yet written have no source: the run gives them theirs
    sources[committed] = handle["meta/source"].oindex[committed]
    found = [by_source.get(str(src)) if src else None for src in sources]
    matched = sum(r is not None for r in found)
    if matched == 0:
        raise AnnotatorError(f"none of the {n} rows of {url} is a file that {dataset} lists under {cfg.root}; "
                             "is --root the dataset this store was made from?")
    names = adapter.protocol_names()
    fields = _rewrite_fields(url, handle, found)
    kept = store.write_protocols(url, protocol_codes([r.protocols if r else {} for r in found], names))
    config = {**handle.attrs.get("config", {}), "protocol_dir": cfg.protocol_dir, "on_conflict": cfg.on_conflict}
    zarr.open_group(url, mode="r+").attrs.update({"config": config})
    store.finalize(url)
    return ProtocolUpdate(names, kept, matched, n, adapter.findings.notes, fields)


def _rewrite_fields(url: str, handle, found: list[SampleRef | None]) -> dict[str, int]:
    """Write LISTED and extra meta columns where the matched refs say otherwise; refuse identity and
    label changes of committed rows. Returns column -> rows changed."""
    rows = np.array([i for i, r in enumerate(found) if r is not None], dtype=np.int64)
    refs = [found[i] for i in rows]
    meta = handle["meta"]
    for col in IDENTITY:  # found rows are committed ones: only they hold a source to match
        if col == "sample_id":  # rows are matched by source; a video's slot ids follow the sampling
            continue
        now, was = ref_column(refs, col), meta[col].oindex[rows]
        bad = differs(col, was, now)
        if bad.any():
            i = int(np.nonzero(bad)[0][0])
            raise AnnotatorError(f"{url}: the dataset now gives {col} {now[i]!r} for row {rows[i]} (stored {was[i]!r}) "
                                 f"and {int(bad.sum()) - 1} more; labels depend on it: rerun `annotate run` with "
                                 "--overwrite instead")
    changed = {}
    group = zarr.open_group(url, mode="r+", use_consolidated=False)["meta"]
    for col in list(LISTED) + sorted({k for r in refs for k in r.extra}):
        now = ref_column(refs, col)
        if col not in meta:  # a column the lists gained (a manifest added later): every chunk written
            store.create_array(group, col, (len(found),), (store.shard_size_of(handle),), "str", ("sample",))
        with zarr.config.set(store.WRITE_CONFIG):
            arr = zarr.open_array(store=url, path=f"meta/{col}", mode="r+", zarr_format=3)
            differ = differs(col, arr.oindex[rows], now)
            if differ.any() or col not in meta:  # the chunks of the matched (committed) rows only
                arr.oindex[rows] = now
        if differ.any():
            changed[col] = int(differ.sum())
    return changed
