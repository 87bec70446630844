"""Everything `annotate run` settles before the first shard: the config's defaults and backends checked, the dataset enumerated and shards sized, the store created or checked against the run."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
from datetime import datetime, timezone

from annotator import __version__, store
from annotator.config import AnnotateConfig
from annotator.core.errors import AnnotatorError, SettingError
from annotator.core.samples import SampleRef
from annotator.core.tuning import TUNING
from annotator.datasets import DATASETS
from annotator.face.landmarks import LANDMARKERS
from annotator.label import ATTACK_TYPES, Policy
from annotator.media.plan import sampled
from annotator.media.sampling import parse as parse_sampling
from annotator.segment import SEGMENTERS
from pipelines import keep_flags

MAX_AUTO_SHARD = 32


def auto_shard_size(n: int, frames_per_video: int = 1) -> int:
    """Enough shards to keep every worker of a laptop busy on tiny datasets, at most 32 rows; a multiple
    of frames_per_video (when that fits in 32) so that, videos coming first, no video straddles shards."""
    size = max(1, min(MAX_AUTO_SHARD, math.ceil(n / 8)))
    k = frames_per_video
    if 1 < k <= MAX_AUTO_SHARD:
        size = max(k, size // k * k)
    return size


def videos_first(refs: list[SampleRef]) -> list[SampleRef]:
    """Video rows (each video's slots together) before image rows, each group in adapter order."""
    return [r for r in refs if r.is_video] + [r for r in refs if not r.is_video]


def open_adapter(cfg: AnnotateConfig, strict: bool = True):
    return DATASETS.create(cfg.dataset, root=cfg.root or None, frames_per_video=cfg.frames_per_video,
                           protocol_dir=cfg.protocol_dir or None, strict=strict)


def enumerate_samples(cfg: AnnotateConfig):
    """(rows in adapter order, the adapter) of the config's dataset, at most cfg.limit rows."""
    adapter = open_adapter(cfg)
    adapter.settle_conflicts(cfg.on_conflict)
    refs = []
    for r in sampled(adapter.samples(), parse_sampling(cfg.sampling, cfg.frames_per_video)):
        refs.append(r)
        if cfg.limit is not None and len(refs) >= cfg.limit:
            break
    refs = adapter.settle_rows(refs, cfg.on_conflict)
    if not refs:
        raise AnnotatorError(f"no images or videos found for dataset {cfg.dataset!r} under {cfg.root or 'the shipped sample data'}")
    unknown = sorted({r.attack_type for r in refs} - set(ATTACK_TYPES))
    if unknown:
        raise AnnotatorError(f"adapter {cfg.dataset} produced unknown attack type(s) {unknown}")
    return refs, adapter


def code_identity() -> dict:
    """The annotating code: the installed distribution's version, plus the git commit of the checkout
    it runs from when there is one (an editable install)."""
    import importlib.metadata as md
    import subprocess
    from pathlib import Path

    try:
        version = md.version("fas-annotator")
    except md.PackageNotFoundError:
        version = __version__
    commit = None
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / ".git").exists():
        try:
            commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True,
                                    text=True, timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"version": version, "commit": commit}


def provenance(cfg: AnnotateConfig, command: str) -> dict:
    import importlib.metadata as md

    versions = {}
    for pkg in ("fas-annotator", "numpy", "mediapipe", "face-alignment", "zarr", "dask", "torch", "segment-anything",
                "av", "opencv-contrib-python"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return {
        "annotator_version": __version__,
        "code": code_identity(),
        "packages": versions,
        "segmenter": cfg.segmenter,
        "checkpoint_sha256": cfg.segmenter_options.get("sha256"),
        "landmarker": cfg.landmarker,
        "landmarker_sha256": cfg.landmarker_options.get("sha256"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "python": sys.version.split()[0],
    }


def protocol_codes(rows: list[dict[str, int]], names: list[str]):
    """protocol -> (len(rows),) int8 codes, from each store row's protocol dict (in store order)."""
    import numpy as np

    return {n: np.fromiter((r.get(n, -1) for r in rows), np.int8, len(rows)) for n in names}


def prepare_store(cfg: AnnotateConfig, out: str, refs: list[SampleRef], protocol_names: list[str],
                  overwrite: bool, command: str, allow_code_change: bool = False,
                  drop_flags: bool = False) -> tuple[str, list[str]]:
    """Create the store, or check that an existing one was made by the same settings and that the
    dataset still gives its rows (resume), then write its protocols whole (for rows not yet written).

    Returns the store's id (attrs store_id) and the notes for the user."""
    codes = protocol_codes([r.protocols for r in refs], protocol_names)
    flags = keep_flags.flags_to_keep(out, refs, drop_flags) if overwrite else {}
    store_id, notes = _create_or_check(cfg, out, refs, codes, overwrite, command, allow_code_change)
    kept = store.write_protocols(out, codes)
    if flags:  # after the protocols: giving flags back consolidates the store's metadata
        notes.append(keep_flags.restore(out, refs, flags))
    if kept:
        notes.append(f"the store keeps protocol(s) {', '.join(kept)} that the dataset's lists no longer give")
    return store_id, notes


def _check_code(root, old: AnnotateConfig, cfg: AnnotateConfig, out: str, allow: bool) -> list[str]:
    """Refuse to finish a store with code whose outputs may differ from the code that started it,
    unless allowed; an allowed change is recorded in the store's provenance. Returns notes."""
    prov = dict(root.attrs.get("provenance", {}))
    then = prov.get("code") or {"version": prov.get("annotator_version"), "commit": None}
    now = code_identity()
    changes = []
    tuned = old.tuning_differences(cfg)
    if tuned:
        changes.append(f"tuning constants {', '.join(tuned[:6])}{' ...' if len(tuned) > 6 else ''} differ"
                       if old.tuning else "the store records no tuning constants")
    if then != now:
        changes.append(f"the code was {then.get('version')} (commit {str(then.get('commit'))[:10]}), is "
                       f"{now['version']} (commit {str(now['commit'])[:10]})")
    if not changes:
        return []
    if not allow:
        raise AnnotatorError(f"{out} was started by other code ({'; '.join(changes)}): finishing it now could mix "
                             "the outputs of both; pass --allow-code-change to resume anyway (recorded in the "
                             "store's provenance), or --overwrite to start over")
    from datetime import datetime, timezone

    prov["resumed_with_code_change"] = prov.get("resumed_with_code_change", []) + [
        {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "code": now, "changes": changes}]
    store.open_store(out, mode="r+").attrs["provenance"] = prov
    return [f"resumed with other code, as --allow-code-change asked ({'; '.join(changes)}); recorded in provenance"]


def _check_rows(cfg: AnnotateConfig, root, out: str, refs: list[SampleRef], codes: dict) -> None:
    """Refuse to resume a store whose rows the dataset now describes otherwise (docs/store.md)."""
    import numpy as np

    from pipelines.listing import RowDifferences, compare

    committed = store.committed_rows(out, len(refs), store.shard_size_of(root))
    diff, stored, now = compare(root, refs, committed, codes)
    if "sample_id" in diff.identity:
        rows = diff.identity["sample_id"]
        raise AnnotatorError(f"{out}: the dataset now lists other samples, or its samples in another order, at "
                             f"{len(rows)} annotated row(s) (first: row {rows[0]} holds {stored['sample_id'][rows[0]]!r}, "
                             f"the dataset now gives {now['sample_id'][rows[0]]!r}); a store's rows follow the "
                             "dataset's order, so pass --overwrite to annotate it again")
    if diff.identity:
        raise AnnotatorError(f"{out}: the dataset now gives other {RowDifferences.describe(diff.identity, stored, now)}; "
                             "their labels depend on it: pass --overwrite to annotate it again")
    if diff:
        rows = np.unique(np.concatenate([*diff.listed.values(), np.zeros(0, int)]))
        what = [RowDifferences.describe(diff.listed, stored, now)] if diff.listed else []
        what += [f"the codes of protocol(s) {', '.join(diff.protocols)}"] if diff.protocols else []
        raise AnnotatorError(f"{out} no longer matches its dataset ({len(rows)} row(s) differ: {'; '.join(what)}); "
                             f"`annotate protocols {out} --dataset {cfg.dataset}"
                             f"{' --root ' + cfg.root if cfg.root else ''}` rewrites them without annotating, "
                             "then rerun; or pass --overwrite to start over")


def _create_or_check(cfg: AnnotateConfig, out: str, refs: list[SampleRef], codes: dict, overwrite: bool,
                     command: str, allow_code_change: bool = False) -> tuple[str, list[str]]:
    notes: list[str] = []
    if store.exists(out):
        if not store.is_store(out):
            raise AnnotatorError(f"{out} exists and is not a label store; --overwrite replaces only label stores: "
                                 "choose another --out, or remove it by hand if you mean to")
        if not overwrite and store.unfinished(out) and not store.committed_ids(out):
            notes.append(f"{out} was an unfinished store (its creation had stopped); created it again")
        elif not overwrite:
            root = store.open_store(out)
            old = AnnotateConfig.from_dict(root.attrs.get("config", {}))
            one_shard = min(old.shard_size or 0, cfg.shard_size) >= len(refs)  # the same single shard either way
            diff = [d for d in old.differences(cfg) if d != "tuning" and not (d == "shard_size" and one_shard)]
            if diff:
                raise AnnotatorError(f"{out} was written with different settings ({', '.join(diff)}); "
                                     "pass --overwrite to start over, or choose another --out")
            if root["image"].shape[0] != len(refs):
                raise AnnotatorError(f"{out} holds {root['image'].shape[0]} samples but the dataset now lists "
                                     f"{len(refs)}; pass --overwrite to start over")
            _check_rows(cfg, root, out, refs, codes)
            return root.attrs["store_id"], _check_code(root, old, cfg, out, allow_code_change)
    extra = sorted({k for r in refs for k in r.extra})
    root = store.create(out, len(refs), cfg.size, cfg.shard_size, extra,
                 {"config": cfg.to_dict(), "provenance": provenance(cfg, command), "attack_types": ATTACK_TYPES,
                  "policy": cfg.policy, "landmark_layout": cfg.landmark_layout.attrs()},
                 optional=("transform",))
    return root.attrs["store_id"], notes


def settle_defaults(cfg: AnnotateConfig, out: str, overwrite: bool = False) -> AnnotateConfig:
    """The segmenter (with its checkpoint), policy and face fallback a run did not choose: the store's
    own when it resumes one (a rerun keeps what the store was made with, even after the defaults
    changed), else today's defaults."""
    if cfg.segmenter and cfg.policy and cfg.face_fallback is not None:
        return cfg
    if not overwrite and store.is_store(out) and not store.unfinished(out):
        with contextlib.suppress(AnnotatorError):
            old = AnnotateConfig.from_dict(store.open_store(out).attrs.get("config", {}))
            adopt = not cfg.segmenter and not cfg.segmenter_options  # its checkpoint comes with it
            cfg = dataclasses.replace(
                cfg, segmenter=cfg.segmenter or old.segmenter, policy=cfg.policy or old.policy,
                segmenter_options=old.segmenter_options if adopt else cfg.segmenter_options,
                face_fallback=old.face_fallback if cfg.face_fallback is None else cfg.face_fallback)
    return cfg.with_defaults()


def prepare_backends(cfg: AnnotateConfig) -> AnnotateConfig:
    """The segmenter's, landmarker's and landmark checker's options checked by their backends before
    any work (checkpoints found, loaded and hashed), as the store records them."""
    segmenter = SEGMENTERS.describe(cfg.segmenter)
    landmarker = LANDMARKERS.describe(cfg.landmarker)
    cfg = dataclasses.replace(cfg, segmenter_options=segmenter.prepare_options(cfg.segmenter_options),
                              landmarker_options=landmarker.prepare_options(cfg.landmarker_options))
    if not cfg.landmark_check:
        return cfg
    max_nme = cfg.landmark_check.get("max_nme", 0)
    if not max_nme > 0:
        raise SettingError("max_landmark_nme", f"must be positive, got {max_nme}")
    checker = LANDMARKERS.describe(landmarker.check_with)
    info = checker.prepare_options(cfg.landmark_check_options) or {"landmarker": checker.name}
    return dataclasses.replace(cfg, landmark_check={**info, "max_nme": float(max_nme)})


def uses_device(cfg: AnnotateConfig) -> bool:
    """Whether a backend of the run takes a device (and so may want a GPU worker)."""
    names = [(SEGMENTERS, cfg.segmenter), (LANDMARKERS, cfg.landmarker)]
    if cfg.landmark_check:
        names.append((LANDMARKERS, cfg.landmark_checker))
    return any(registry.describe(name).uses_device for registry, name in names)


def resolve(cfg: AnnotateConfig):
    """Validate the config before any work and fill in what depends on the dataset."""
    cfg.validate()
    Policy.from_table(cfg.policy)
    cfg = dataclasses.replace(cfg, tuning=TUNING.to_dict())
    cfg = prepare_backends(cfg)
    refs, adapter = enumerate_samples(cfg)
    refs = videos_first(refs)
    if cfg.shard_size is None:
        has_video = any(r.is_video for r in refs)
        cfg = dataclasses.replace(cfg, shard_size=auto_shard_size(len(refs), (cfg.video_slots or 1) if has_video else 1))
    # a chunk (and a worker's write buffer) holds a whole shard: never more rows than the store has
    cfg = dataclasses.replace(cfg, shard_size=min(cfg.shard_size, len(refs)))
    return cfg, refs, adapter
