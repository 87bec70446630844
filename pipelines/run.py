"""`annotate run`: validate everything, enumerate, create or resume the store, run shards on Dask."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from annotator import __version__, store
from annotator.store import places
from annotator.config import AnnotateConfig
from annotator.datasets import DATASETS
from annotator.core.errors import AnnotatorError, SettingError
from annotator.store.failures import FailedRow, summary_lines
from annotator.label import ATTACK_TYPES, Policy
from annotator.core.samples import SampleRef, Status
from annotator.media.sampling import parse as parse_sampling
from annotator.media.plan import sampled
from annotator.segment import SEGMENTERS
from annotator.face.landmarks import LANDMARKERS
from annotator.core.tuning import TUNING

from pipelines import keep_flags, lock
from pipelines.tasks import run_shard

log = logging.getLogger(__name__)

MAX_AUTO_SHARD = 32


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
                  "policy": cfg.policy, "landmark_layout": cfg.landmark_layout.attrs()})
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


def _collector(out: str, summary: RunSummary, bar, held: lock.StoreLock):
    """The callback that takes each shard's outcome into the summary, the store's failure markers
    and the progress bar, refreshing the store's lock every 30 s."""
    last_beat = [time.time()]

    def collect(shard_id: int, result: dict | None, error: BaseException | None) -> None:
        if time.time() - last_beat[0] > 30:
            held.beat()
            last_beat[0] = time.time()
        if error is not None:
            message = f"{type(error).__name__}: {error}"
            summary.failed_shards.append([shard_id, message])
            store.mark_failed(out, shard_id, message)
            return
        store.clear_failed(out, shard_id)
        summary.failed_samples += result["failed"]
        for k, v in result["seconds"].items():
            summary.stage_seconds[k] = summary.stage_seconds.get(k, 0.0) + v
        bar.update(result["n"])

    return collect


def _run_here(args: list[tuple], collect, retries: int, models) -> None:
    """Every shard in this process, one after the other, each tried 1 + retries times."""
    for a in args:
        for attempt in range(retries + 1):
            try:
                result = run_shard(*a, models=models)
            except Exception as e:
                if attempt == retries:
                    collect(a[2].id, None, e)
                continue
            collect(a[2].id, result, None)
            break


def run(cfg: AnnotateConfig, out: str, *, overwrite: bool = False, cluster: str = "local",
        workers: int | None = None, scheduler: str | None = None, cluster_config: str | None = None,
        client=None, retries: int = 2, resume_failed: bool = False, progress: bool = True,
        command: str = "", models=None, allow_code_change: bool = False, drop_flags: bool = False,
        cluster_wait: float = 300.0) -> RunSummary:
    """Annotate the dataset of cfg into the store at `out` (a path or fsspec URL).

    Where shards run: a given Dask `client`; else a `scheduler` address to join; else `cluster`:
    "local" (LocalCluster of `workers` processes, default one per core), "cuda" (one worker per GPU),
    "slurm" (dask-jobqueue from `cluster_config`), or "none" (in this process: tests, debugging).
    Committed shards are skipped; a shard that raises is retried `retries` times, then recorded as
    failed (`resume_failed` reruns only those). One run per store at a time (pipelines/lock.py).
    overwrite keeps the old store's label QA flags (matched by sample_id; pipelines/keep_flags.py)
    and refuses when some would be lost, unless drop_flags.
    models: an annotator.shard.Models to annotate with instead of the config's (cluster "none" only:
    tests pass fakes or small models this way). cluster_wait: seconds a SLURM run waits for its first
    worker job to start before it stops with squeue's reason.
    """
    t0 = time.perf_counter()
    if retries < 0:
        raise SettingError("retries", f"must be at least 0, got {retries}")
    if models is not None and (client is not None or scheduler is not None or cluster != "none"):
        raise ValueError("models can only be passed in with cluster='none' (in this process)")
    out = places.normalize(out)
    cfg = settle_defaults(cfg, out, overwrite)
    cfg, refs, adapter = resolve(cfg)
    if cfg.root:
        places.refuse_overlap(out, cfg.root, "the dataset root")
    places.require_writable(out)
    if cluster == "slurm" and client is None and scheduler is None:
        from pipelines.cluster import check_slurm_config

        check_slurm_config(cluster_config)
    lock.check_free(out)  # before --overwrite may delete anything
    store_id, notes = prepare_store(cfg, out, refs, adapter.protocol_names(), overwrite, command, allow_code_change,
                                    drop_flags)
    shards = store.plan_shards(len(refs), cfg.shard_size)
    done = store.committed_ids(out)
    failed_before = store.failed(out)
    for i in set(failed_before) & done:  # committed after its record was written (the client died first)
        store.clear_failed(out, i)
        del failed_before[i]
    todo = [s for s in shards if s.id not in done and (not resume_failed or s.id in failed_before)]
    summary = RunSummary(len(refs), len(shards), skipped_shards=len(shards) - len(todo),
                         notes=adapter.findings.notes + notes, n_sources=len({r.source for r in refs}))
    if done:  # the failures of shards committed before, from the store's columns (not every marker)
        import numpy as np

        rows = np.concatenate([np.arange(s.start, s.stop) for s in shards if s.id in done])
        summary.failed_samples += store.failed_rows(store.open_store(out), rows)
    if resume_failed:  # the shards not retried keep their failure in the summary
        summary.failed_shards += [[i, e] for i, e in failed_before.items() if i not in {s.id for s in todo}]
    cfg_dict = cfg.to_dict()
    jobs = [(s, refs[s.start:s.stop]) for s in todo]
    from tqdm import tqdm

    bar = tqdm(total=sum(len(r) for _, r in jobs), unit="frame", desc="annotate", disable=not progress)
    with lock.StoreLock(out) as held, contextlib.closing(bar):  # an error starts on a line of its own
        collect = _collector(out, summary, bar, held)
        args = [(out, store_id, s, r, cfg_dict) for s, r in jobs]
        if client is None and scheduler is None and cluster == "none":
            _run_here(args, collect, retries, models)
        else:
            from pipelines.cluster import connect, has_resource, lost_workers, run_bounded, watch_lost_workers

            ctx = contextlib.nullcontext(client) if client is not None else connect(scheduler, cluster, workers,
                                                                                    cluster_config, cluster_wait)
            with ctx as c:
                if getattr(c, "dashboard_link", None) and progress:
                    tqdm.write(f"Dask dashboard: {c.dashboard_link}")
                watch_lost_workers(c)
                wants_gpu = uses_device(cfg) and cfg.runtime.get("device", "cuda") != "cpu"
                resources = {"GPU": 1} if wants_gpu and has_resource(c, "GPU") else None
                run_bounded(c, run_shard, args, keys=[s.id for s, _ in jobs], on_done=collect,
                            retries=retries, resources=resources)
                lost = lost_workers(c)
                if lost:
                    summary.notes.append(f"{len(lost)} Dask worker(s) were lost during the run ({', '.join(lost)}); "
                                         "their shards were run again elsewhere")
        if len(store.committed_ids(out)) == len(shards):
            store.finalize(out)
            keep_flags.settled(out)
    by_id = {s.id: s for s in shards}
    for i, err in summary.failed_shards:
        summary.unwritten += unwritten_rows(refs[by_id[i].start:by_id[i].stop], i, err)
    tried = {s.id for s in todo} | done
    summary.left = sum(s.stop - s.start for s in shards if s.id not in tried and s.id not in dict(summary.failed_shards))
    summary.seconds = time.perf_counter() - t0
    return summary
