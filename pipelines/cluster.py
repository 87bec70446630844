"""Dask cluster setup and the bounded submission loop."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Callable, Iterator


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@contextlib.contextmanager
def local_client(workers: int | None = None) -> Iterator["distributed.Client"]:
    """A LocalCluster of single-threaded worker processes (MediaPipe graphs are not thread-safe)."""
    from distributed import Client, LocalCluster

    n = workers or default_workers()
    # The scheduler runs in this process and logs every worker start and stop at INFO; keep that for -vv.
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("distributed").setLevel(logging.ERROR)
    import dask

    # Workers' statistical profiler samples the task thread's Python stack every 10 ms: measurable on
    # this per-frame Python-heavy workload, and nobody reads it in a batch job.
    with dask.config.set({"distributed.worker.profile.enabled": False}), \
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                         silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        # One worker per core: each worker's libraries must stay on one thread, or they fight over cores.
        client.run(limit_threads, 1)
        yield client


def limit_threads(n: int) -> None:
    """Cap the threads of the native libraries of the per-frame stages in this process."""
    import cv2

    from annotator import decode

    cv2.setNumThreads(n)
    decode.DECODE_THREADS = n


def run_bounded(client, fn: Callable, args: list[tuple], keys: list, on_done: Callable, window: int | None = None) -> None:
    """Submit fn(*a) for each a with at most `window` tasks in flight (default: 2 per worker thread).

    on_done(key, result, error) is called in completion order; a task that raises does not stop the rest.
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
            fut = client.submit(fn, *a, pure=False)
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
