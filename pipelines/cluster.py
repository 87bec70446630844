"""Dask clusters (local processes, one worker per GPU, SLURM jobs, or an existing scheduler) and
the bounded submission loop. No home-made cluster code: distributed, dask-cuda and dask-jobqueue."""

from __future__ import annotations

import contextlib
import logging
import os
import tomllib
from typing import Callable, Iterator

from distributed.diagnostics.plugin import SchedulerPlugin

from annotator.config import check_workers
from annotator.core.errors import AnnotatorError, SettingError

CLUSTERS = ("local", "cuda", "slurm")
SLURM_KEYS = {"queue": str, "walltime": str, "cores": int, "memory": str, "gpus_per_job": int, "jobs": int,
              "account": str, "processes": int, "python": str, "local_directory": str, "job_extra": list,
              "log_directory": str}
SLURM_REQUIRED = ("queue", "walltime", "cores", "memory", "jobs")
# Whole-number keys and their ranges: a job count, cores or GPUs past these is a typo that would
# flood the queue or ask SLURM for what no node has.
SLURM_RANGES = {"cores": (1, 1024), "jobs": (1, 1000), "processes": (1, 1024), "gpus_per_job": (0, 64)}


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def limit_threads(n: int) -> None:
    """Cap the threads of the native libraries of the per-frame stages in this process."""
    import cv2

    from pipelines.tasks import THREADS

    cv2.setNumThreads(n)
    THREADS["decode"] = n


def _quiet() -> None:
    # The scheduler runs in this process and logs every worker start and stop at INFO; keep that for -vv.
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("distributed").setLevel(logging.ERROR)


def _dask_config():
    import dask

    # Workers' statistical profiler samples the task thread's Python stack every 10 ms: measurable on
    # this per-frame Python-heavy workload, and nobody reads it in a batch job. The nanny's default
    # MALLOC_TRIM_THRESHOLD_=65536 makes glibc return every freed frame buffer to the OS, so each
    # decoded frame and crop pays page faults again; a 256 MiB threshold keeps them.
    return dask.config.set({"distributed.worker.profile.enabled": False,
                            "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 256 * 2**20})


@contextlib.contextmanager
def local_client(workers: int | None = None, resources: dict | None = None) -> Iterator["distributed.Client"]:
    """A LocalCluster of single-threaded worker processes (MediaPipe graphs are not thread-safe)."""
    from distributed import Client, LocalCluster

    check_workers(workers)  # library callers too: each worker is a process with its own models
    _quiet()
    n = workers or default_workers()
    with _dask_config(), LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                      silence_logs=logging.ERROR, resources=resources) as cluster, \
            Client(cluster) as client:
        # One worker per core: each worker's libraries must stay on one thread, or they fight over cores.
        client.run(limit_threads, 1)
        yield client


def read_slurm_config(path: str) -> dict:
    """The [slurm] settings of a TOML file (queue, walltime, cores, memory, gpus_per_job, jobs, ...)."""
    try:
        table = tomllib.loads(open(path).read())
    except FileNotFoundError:
        raise SettingError("cluster_config", f"{path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SettingError("cluster_config", f"{path} is not valid TOML: {e}") from None
    conf = table.get("slurm", table)
    if not isinstance(conf, dict):
        raise SettingError("cluster_config", f"{path}: slurm must be a [slurm] table of settings, got "
                                             f"{conf!r}; write it as in README's slurm.toml")
    unknown = sorted(set(conf) - set(SLURM_KEYS))
    if unknown:
        raise SettingError("cluster_config", f"{path}: unknown key(s) {', '.join(unknown)}; "
                             f"known: {', '.join(SLURM_KEYS)}")
    missing = [k for k in SLURM_REQUIRED if k not in conf]
    if missing:
        raise SettingError("cluster_config", f"{path}: missing {', '.join(missing)}")
    for k, v in conf.items():
        _check_slurm_value(path, k, v)
    return conf


def _check_slurm_value(path: str, key: str, value) -> None:
    """One [slurm] value: its type (TOML's true is no number of jobs) and, for counts, its range."""
    kind = SLURM_KEYS[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        what = {int: "a whole number", str: "a string", list: "a list"}[kind]
        raise SettingError("cluster_config", f"{path}: {key} must be {what}, got {value!r}")
    if key in SLURM_RANGES:
        low, high = SLURM_RANGES[key]
        if not low <= value <= high:
            raise SettingError("cluster_config", f"{path}: {key} must be in {low}..{high}, got {value}")


def slurm_cluster(conf: dict):
    """A dask-jobqueue SLURMCluster from read_slurm_config's dict; workers advertise their GPUs."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise SettingError("cluster", "slurm needs dask-jobqueue: pip install dask-jobqueue") from None
    gpus = conf.get("gpus_per_job", 0)
    processes = conf.get("processes", max(1, gpus) if gpus else 1)
    extra = list(conf.get("job_extra", []))
    if gpus:
        extra.append(f"--gres=gpu:{gpus}")
    kwargs = dict(queue=conf["queue"], walltime=conf["walltime"], cores=conf["cores"], memory=conf["memory"],
                  processes=processes, job_extra_directives=extra,
                  worker_extra_args=["--resources", f"GPU={max(1, gpus // processes)}"] if gpus else [])
    for key in ("account", "python", "local_directory", "log_directory"):
        if key in conf:
            kwargs[key] = conf[key]
    return SLURMCluster(**kwargs)


@contextlib.contextmanager
def connect(scheduler: str | None = None, cluster: str = "local", workers: int | None = None,
            cluster_config: str | None = None, cluster_wait: float = 300.0) -> Iterator["distributed.Client"]:
    """A Client for the chosen cluster: an existing scheduler address, or one started here."""
    from distributed import Client

    if scheduler:
        _quiet()
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as e:
            raise AnnotatorError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
        with client:
            yield client
        return
    if cluster == "local":
        with local_client(workers) as client:
            yield client
    elif cluster == "cuda":
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            raise SettingError("cluster", "cuda needs dask-cuda: pip install dask-cuda") from None
        _quiet()
        with _dask_config(), LocalCUDACluster(threads_per_worker=1, resources={"GPU": 1}) as c, Client(c) as client:
            yield client
    elif cluster == "slurm":
        conf = check_slurm_config(cluster_config)
        _quiet()
        with _dask_config(), slurm_cluster(conf) as c:
            # adapt, not scale: a job that dies (cancelled, preempted, past its walltime) is replaced
            c.adapt(minimum_jobs=conf["jobs"], maximum_jobs=conf["jobs"])
            with Client(c) as client:
                wait_for_slurm_workers(client, c, conf["queue"], cluster_wait)
                yield client
    else:
        raise AnnotatorError(f"unknown --cluster {cluster!r}; choose one of {', '.join(CLUSTERS)}")


def _slurm(*cmd: str) -> str:
    import subprocess

    try:
        r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise SettingError("cluster", f"slurm: cannot run {cmd[0]} ({e}); is SLURM installed here?") from None
    return r.stdout if r.returncode == 0 else ""


def check_slurm_config(path: str | None) -> dict:
    """The --cluster-config of a SLURM run, checked before any work: readable, complete, and naming a
    partition this SLURM has."""
    if not path:
        raise SettingError("cluster", "slurm needs --cluster-config FILE (queue, walltime, cores, memory, jobs)")
    conf = read_slurm_config(path)
    check_partition(conf["queue"])
    return conf


def check_partition(queue: str) -> None:
    """A one-line error, before any job is submitted, when SLURM has no partition `queue`."""
    names = sorted({p.strip().rstrip("*") for p in _slurm("sinfo", "-h", "-o", "%P").split()})
    if names and queue not in names:
        raise SettingError("cluster_config", f"queue {queue!r} is not a SLURM partition here (sinfo lists: "
                                             f"{', '.join(names)})")


def wait_for_slurm_workers(client, cluster, queue: str, seconds: float) -> None:
    """Wait up to `seconds` for the first worker job to start; a one-line error naming the partition
    and squeue's reason when the jobs are still pending then (they are cancelled)."""
    try:
        client.wait_for_workers(1, timeout=seconds)
        return
    except TimeoutError:
        pass
    ids = [j.job_id for j in cluster.workers.values() if getattr(j, "job_id", None)]
    reasons = sorted({line.split(None, 1)[1].strip() for line in
                      _slurm("squeue", "-h", "-o", "%i %r", "-j", ",".join(ids)).splitlines() if " " in line}) if ids else []
    raise AnnotatorError(f"no SLURM worker job started within --cluster-wait {seconds:.0f} s in partition "
                         f"{queue!r} ({len(ids)} job(s) pending; squeue's reason: {', '.join(reasons) or 'none given'}); "
                         "check `squeue` and `sinfo`, or wait longer with --cluster-wait")


class LostWorkers(SchedulerPlugin):
    """Scheduler plugin: the workers that left during the run (a job killed, cancelled or past its
    walltime); Dask runs their tasks again elsewhere, and the run's summary says so."""

    name = "fas-lost-workers"

    def __init__(self):
        self.lost: list[str] = []

    def remove_worker(self, scheduler, worker: str, **kwargs) -> None:
        self.lost.append(worker)


def watch_lost_workers(client) -> None:
    client.register_plugin(LostWorkers())


def lost_workers(client) -> list[str]:
    """The workers LostWorkers saw leave so far (call it before the cluster closes)."""
    return client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.plugins[LostWorkers.name].lost)
                                   if LostWorkers.name in dask_scheduler.plugins else [])


def has_resource(client, name: str) -> bool:
    return any(name in (w.get("resources") or {}) for w in client.scheduler_info()["workers"].values())


def run_bounded(client, fn: Callable, args: list[tuple], keys: list, on_done: Callable, window: int | None = None,
                retries: int = 0, resources: dict | None = None) -> None:
    """Submit fn(*a) for each a with at most `window` tasks in flight (default: 2 per worker thread).

    A task that raises is retried `retries` times by Dask; on_done(key, result, error) is called in
    completion order; a task that still fails does not stop the rest.
    """
    from distributed import as_completed

    window = window or 2 * max(1, sum(client.nthreads().values()))
    pending = iter(zip(keys, args))
    futures = {}
    ac = as_completed()

    def submit_next() -> None:
        nxt = next(pending, None)
        if nxt is not None:
            key, a = nxt
            fut = client.submit(fn, *a, pure=False, retries=retries, resources=resources)
            futures[fut] = key
            ac.add(fut)

    for _ in range(window):
        submit_next()
    for fut in ac:
        key = futures.pop(fut)
        try:
            result = fut.result()
        except Exception as e:
            on_done(key, None, e)
        else:
            on_done(key, result, None)
        submit_next()


def dask_map(client):
    """A ParallelMap (annotator/store/verify.py) over a Dask client: one task per item, results as they finish."""

    def run(fn, items):
        from dask.distributed import as_completed

        for future in as_completed(client.map(fn, items, pure=False)):
            yield future.result()

    return run
