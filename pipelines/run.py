"""`annotate run`: validate everything, enumerate, create or resume the store, run shards on Dask."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

import numpy as np

from annotator import store
from annotator.config import AnnotateConfig
from annotator.core.errors import SettingError
from annotator.store import places
from pipelines import keep_flags, lock
from pipelines.prepare import prepare_store, resolve, settle_defaults, uses_device
from pipelines.summary import RunSummary, unwritten_rows
from pipelines.tasks import run_shard

log = logging.getLogger(__name__)



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
    here = client is None and scheduler is None and cluster == "none"
    if models is not None and not here:
        raise ValueError("models can only be passed in with cluster='none' (in this process)")
    out = places.normalize(out)
    cfg, refs, adapter = resolve(settle_defaults(cfg, out, overwrite))
    if cfg.root:
        places.refuse_overlap(out, cfg.root, "the dataset root")
    places.require_writable(out)
    if cluster == "slurm" and client is None and scheduler is None:
        from pipelines.cluster import check_slurm_config

        check_slurm_config(cluster_config)
    lock.check_free(out)  # before --overwrite may delete anything
    store_id, notes = prepare_store(cfg, out, refs, adapter.protocol_names(), overwrite, command, allow_code_change,
                                    drop_flags)
    plan = _plan(out, cfg, refs, adapter.findings.notes + notes, resume_failed)
    from tqdm import tqdm

    bar = tqdm(total=sum(s.stop - s.start for s in plan.todo), unit="frame", desc="annotate", disable=not progress)
    with lock.StoreLock(out) as held, contextlib.closing(bar):  # an error starts on a line of its own
        collect = _collector(out, plan.summary, bar, held)
        cfg_dict = cfg.to_dict()
        args = [(out, store_id, s, refs[s.start:s.stop], cfg_dict) for s in plan.todo]
        if here:
            _run_here(args, collect, retries, models)
        else:
            cluster_args = (scheduler, cluster, workers, cluster_config, cluster_wait)
            _run_on_dask(args, collect, retries, uses_device(cfg) and cfg.runtime.get("device", "cuda") != "cpu",
                         plan.summary, client, cluster_args, progress)
        if len(store.committed_ids(out)) == len(plan.shards):
            store.finalize(out)
            keep_flags.settled(out)
    return _settle(plan, refs, time.perf_counter() - t0)


@dataclass
class _Plan:
    """The store's shards, those committed before this run, and those it runs."""

    shards: list
    done: set
    todo: list
    summary: RunSummary


def _plan(out: str, cfg: AnnotateConfig, refs: list, notes: list[str], resume_failed: bool) -> _Plan:
    shards = store.plan_shards(len(refs), cfg.shard_size)
    done = store.committed_ids(out)
    failed_before = store.failed(out)
    for i in set(failed_before) & done:  # committed after its record was written (the client died first)
        store.clear_failed(out, i)
        del failed_before[i]
    todo = [s for s in shards if s.id not in done and (not resume_failed or s.id in failed_before)]
    summary = RunSummary(len(refs), len(shards), skipped_shards=len(shards) - len(todo), notes=notes,
                         n_sources=len({r.source for r in refs}))
    if done:  # the failures of shards committed before, from the store's columns (not every marker)
        rows = np.concatenate([np.arange(s.start, s.stop) for s in shards if s.id in done])
        summary.failed_samples += store.failed_rows(store.open_store(out), rows)
    if resume_failed:  # the shards not retried keep their failure in the summary
        summary.failed_shards += [[i, e] for i, e in failed_before.items() if i not in {s.id for s in todo}]
    return _Plan(shards, done, todo, summary)


def _run_on_dask(args: list[tuple], collect, retries: int, wants_gpu: bool, summary: RunSummary, client,
                 cluster_args: tuple, progress: bool) -> None:
    """The shards as tasks on a given client, a scheduler to join or a cluster started here
    (cluster_args: scheduler, cluster, workers, cluster_config, cluster_wait)."""
    from tqdm import tqdm

    from pipelines.cluster import connect, has_resource, lost_workers, run_bounded, watch_lost_workers

    ctx = contextlib.nullcontext(client) if client is not None else connect(*cluster_args)
    with ctx as c:
        if getattr(c, "dashboard_link", None) and progress:
            tqdm.write(f"Dask dashboard: {c.dashboard_link}")
        watch_lost_workers(c)
        resources = {"GPU": 1} if wants_gpu and has_resource(c, "GPU") else None
        run_bounded(c, run_shard, args, keys=[a[2].id for a in args], on_done=collect, retries=retries,
                    resources=resources)
        lost = lost_workers(c)
        if lost:
            summary.notes.append(f"{len(lost)} Dask worker(s) were lost during the run ({', '.join(lost)}); "
                                 "their shards were run again elsewhere")


def _settle(plan: _Plan, refs: list, seconds: float) -> RunSummary:
    """The summary's rows not written (failed shards) and left (not tried), and the run's time."""
    summary = plan.summary
    by_id = {s.id: s for s in plan.shards}
    for i, err in summary.failed_shards:
        summary.unwritten += unwritten_rows(refs[by_id[i].start:by_id[i].stop], i, err)
    tried = {s.id for s in plan.todo} | plan.done
    failed = dict(summary.failed_shards)
    summary.left = sum(s.stop - s.start for s in plan.shards if s.id not in tried and s.id not in failed)
    summary.seconds = seconds
    return summary
