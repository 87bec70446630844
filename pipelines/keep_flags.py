"""Label QA flags across `annotate run --overwrite`: flags are human work, so an overwrite carries
them over to the new store, matched by sample_id (annotator/store/qa.py), or refuses before any work when
some would be lost, unless --drop-flags. On a local disk the flags wait in a side file beside the
store until they are back in it, so an overwrite that dies half-way loses none: the next overwrite
picks them up; the side file goes when every shard of the new store is committed."""

from __future__ import annotations

import json
from pathlib import Path

from annotator.store import places, qa
from annotator import store
from annotator.core.errors import AnnotatorError
from annotator.core.names import storable
from annotator.core.samples import SampleRef


def side_file(out: str) -> Path | None:
    path = places.local(out)
    return None if path is None else path.parent / f".{path.name}.qa-flags.json"


def flags_to_keep(out: str, refs: list[SampleRef], drop: bool) -> dict[str, list]:
    """The flags of the store at out (and of an overwrite that stopped before giving them back),
    sample_id -> [flag, note, time]; a one-line error when some name samples the new rows lack."""
    side = side_file(out)
    if drop:  # nothing of the old flags is read, so a damaged qa/ cannot block the way out
        if side is not None and side.exists():
            side.unlink()
        return {}
    saved = {}
    if side is not None and side.is_file():
        try:
            saved.update(json.loads(side.read_text()))
        except (OSError, ValueError) as e:
            raise AnnotatorError(f"{side} (the QA flags an earlier --overwrite kept for {out}) cannot be read ({e}); "
                                 "restore it, or pass --drop-flags to overwrite without them") from None
    if store.is_store(out) and not store.unfinished(out):
        saved.update({k: list(v) for k, v in qa.saved_flags(out).items()})
    if not saved:
        return {}
    ids = {storable(r.sample_id) for r in refs}
    lost = sorted(s for s in saved if s not in ids)
    if lost:
        raise AnnotatorError(f"{out} holds {len(saved)} label QA flag(s), {len(lost)} on samples the dataset no longer "
                             f"lists (first: {lost[0]!r}); --overwrite would lose them: pass --drop-flags to overwrite "
                             "anyway, or choose another --out")
    if side is not None:  # until restore() has them back in the new store
        tmp = side.with_suffix(".tmp")
        tmp.write_text(json.dumps(saved))
        tmp.replace(side)
    return saved


def restore(out: str, refs: list[SampleRef], saved: dict[str, list]) -> str:
    """Write the kept flags into the new store's rows; the note for the run summary."""
    if not saved:
        return ""
    rows = {storable(r.sample_id): i for i, r in enumerate(refs)}
    restored, _ = qa.restore_flags(out, {k: tuple(v) for k, v in saved.items()}, rows_by_id=rows)
    return f"kept {restored} label QA flag(s) of the overwritten store, matched by sample_id"


def settled(out: str) -> None:
    """Every shard is committed: the restored flags sit on rows whose sample_id is written, so the
    side file is no longer needed (before, a second overwrite reads the flags from it)."""
    side = side_file(out)
    if side is not None and side.exists():
        side.unlink()
