"""Scale-out and fault tolerance: locks, retries, failed shards, resume after kill -9, joining a
scheduler started with Dask's own CLI, a worker killed mid-run, GPU resources, SLURM job scripts."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from annotator import store
from annotator.core.errors import AnnotatorError
from helpers import REPO, assert_same_store, problems, sync_config
from pipelines import lock
from pipelines.run import run



def sample_cfg(**kw):
    return sync_config(dataset="sample", root="", **kw)


def test_live_lock_refuses_and_stale_lock_is_taken_over(sample_store, tmp_path):
    url, _ = sample_store
    copy = str(tmp_path / "c.zarr")
    shutil.copytree(url, copy)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        info = {"host": socket.gethostname(), "pid": sleeper.pid, "started": time.time(), "heartbeat": time.time()}
        Path(copy, lock.LOCK).write_text(json.dumps(info))
        with pytest.raises(AnnotatorError, match=f"being written by another annotate run \\(pid {sleeper.pid}"):
            run(sample_cfg(), copy, cluster="none", progress=False)
        with pytest.raises(AnnotatorError, match="being written"):  # --overwrite must not delete a live run's store
            run(sample_cfg(), copy, cluster="none", progress=False, overwrite=True)
        assert Path(copy, "zarr.json").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    # the owner is gone: the lock is stale and the run goes on, then releases it
    summary = run(sample_cfg(), copy, cluster="none", progress=False)
    assert summary.skipped_shards == summary.n_shards and not Path(copy, lock.LOCK).exists()
    other_host = {"host": "elsewhere", "pid": 1, "started": 0, "heartbeat": time.time()}
    Path(copy, lock.LOCK).write_text(json.dumps(other_host))
    with pytest.raises(AnnotatorError, match="on elsewhere"):
        run(sample_cfg(), copy, cluster="none", progress=False)
    other_host["heartbeat"] = time.time() - 7200
    Path(copy, lock.LOCK).write_text(json.dumps(other_host))
    run(sample_cfg(), copy, cluster="none", progress=False)


def test_failed_write_is_not_committed_and_a_rerun_repairs_it(sample_store, tmp_path, monkeypatch):
    import pipelines.tasks as tasks

    url, _ = sample_store
    out = str(tmp_path / "f.zarr")
    real = tasks.write_shard
    calls = {"n": 0}

    def flaky(u, shard, *a, **kw):
        if shard.id == 1:
            calls["n"] += 1
            raise PermissionError(f"[Errno 30] Read-only file system: '{u}/image/c/1'")
        return real(u, shard, *a, **kw)

    monkeypatch.setattr(tasks, "write_shard", flaky)
    summary = run(sample_cfg(), out, cluster="none", progress=False, retries=1)
    assert calls["n"] == 2  # first try + 1 retry
    assert [s for s, _ in summary.failed_shards] == [1] and "Read-only" in summary.failed_shards[0][1]
    assert 1 not in store.committed(out) and list(store.failed(out)) == [1]
    assert summary.failure_rate == pytest.approx(5 / 15)  # shard 1 holds the 5 images
    assert any("not committed" in p for p in problems(out))
    monkeypatch.setattr(tasks, "write_shard", real)
    summary = run(sample_cfg(), out, cluster="none", progress=False, resume_failed=True)
    assert summary.skipped_shards == summary.n_shards - 1 and summary.failed_shards == []
    assert store.failed(out) == {}
    assert_same_store(url, out)


def test_retries_absorb_transient_errors(tmp_path):
    import dataclasses

    from annotator.shard import build_models

    class Flaky:
        """A segmenter whose every other call raises, as a network filesystem might: each shard's
        first attempt fails, its retry goes through."""

        def __init__(self, real):
            self.real, self.calls = real, 0

        def segment(self, items):
            self.calls += 1
            if self.calls % 2:
                raise OSError("NFS hiccup")
            return self.real.segment(items)

    cfg = sample_cfg(limit=4)
    flaky = Flaky(build_models(cfg).segmenter)
    models = dataclasses.replace(build_models(cfg), segmenter=flaky)
    out = str(tmp_path / "r.zarr")
    summary = run(cfg, out, cluster="none", progress=False, models=models)
    assert summary.failed_shards == [] and flaky.calls == 2 * summary.n_shards
    assert problems(out) == []


def test_memory_url_store(sample_store):
    url, _ = sample_store
    out = "memory://stores/sample.zarr"
    summary = run(sample_cfg(), out, cluster="none", progress=False)
    assert summary.failed_shards == [] and problems(out) == []
    a, b = zarr.open_group(url, mode="r"), zarr.open_group(out, mode="r")
    np.testing.assert_array_equal(a["label"][:], b["label"][:])


def _annotate(*args, **popen):
    cmd = [str(Path(sys.executable).with_name("annotate")), "run", "--dataset", "sample", "--segmenter", "geometry",
           *map(str, args)]  # the reference store is geometry's
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def wait_for_commits(out: Path, n: int, proc, timeout: float = 180) -> None:
    """Until the store at `out` has n committed shards (or the process ended, or time ran out)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if len(list((out / "_shards").glob("*.json"))) >= n:
            return
        time.sleep(0.05)


@pytest.fixture(scope="module")
def one_row_shards(tmp_path_factory):
    """The sample annotated in-process with --shard-size 1, the reference of the runs below (a video
    frame follows the face of the frame before it in its shard, so results depend on the sharding)."""
    url = str(tmp_path_factory.mktemp("ref") / "ref.zarr")
    run(sync_config(dataset="sample", root="", shard_size=1), url, cluster="none", progress=False)
    return url


def test_kill_9_mid_run_then_rerun_equals_uninterrupted(one_row_shards, tmp_path):
    url = one_row_shards
    out = tmp_path / "k.zarr"
    p = _annotate("--out", out, "--cluster", "none", "--shard-size", "1")
    wait_for_commits(out, 3, p)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    n_done = len(list((out / "_shards").glob("*.json")))
    assert 0 < n_done < 15, n_done
    r = _annotate("--out", out, "--cluster", "none", "--shard-size", "1")
    output = r.communicate(timeout=300)[0].decode()
    assert r.returncode == 0, output
    assert f"({n_done} already committed)" in output or f"({n_done + 1} already committed)" in output, output
    assert_same_store(url, str(out))


@pytest.fixture
def cli_cluster(tmp_path):
    """A scheduler and two workers started with Dask's own CLI; one worker advertises a GPU."""
    bin_dir = Path(sys.executable).parent
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([str(bin_dir / "dask"), "scheduler", "--scheduler-file", str(sched_file),
                               "--port", "0", "--dashboard-address", ":0"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for _ in range(100):
        if sched_file.exists() and sched_file.stat().st_size:
            break
        time.sleep(0.1)
    address = json.loads(sched_file.read_text())["address"]
    for extra in ([], ["--resources", "GPU=1"]):
        procs.append(subprocess.Popen([str(bin_dir / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                       "--no-nanny", *extra], env=env, cwd=REPO,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from distributed import Client

    with Client(address) as c:
        c.wait_for_workers(2, timeout=60)
    yield address, procs
    for p in procs:
        p.kill()
        p.wait()


def test_join_a_cli_scheduler_and_survive_a_killed_worker(cli_cluster, one_row_shards, tmp_path):
    from distributed import Client

    from pipelines.cluster import has_resource, run_bounded

    address, procs = cli_cluster
    url = one_row_shards
    with Client(address) as c:
        assert has_resource(c, "GPU")
        pids = c.run(os.getpid)  # worker address -> pid
        gpu_worker = [a for a, w in c.scheduler_info()["workers"].items() if "GPU" in (w.get("resources") or {})]
        ran_on = []
        run_bounded(c, os.getpid, [() for _ in range(6)], keys=list(range(6)),
                    on_done=lambda k, r, e: ran_on.append(r), resources={"GPU": 1})
        assert ran_on == [pids[gpu_worker[0]]] * 6  # GPU tasks only land on the worker that has one
    out = str(tmp_path / "j.zarr")
    r = _annotate("--out", out, "--scheduler", address, "--shard-size", "1")
    wait_for_commits(Path(out), 2, r)  # let it get going, then take one worker away
    assert r.poll() is None and len(list(Path(out, "_shards").glob("*.json"))) < 15
    victim = [pid for a, pid in pids.items() if a not in gpu_worker][0]
    os.kill(victim, signal.SIGKILL)
    output = r.communicate(timeout=300)[0].decode()
    assert r.returncode == 0, output
    assert "1 Dask worker(s) were lost during the run" in output, output
    assert_same_store(url, out)


def test_slurm_cluster_from_config(tmp_path):
    from pipelines.cluster import read_slurm_config, slurm_cluster

    f = tmp_path / "slurm.toml"
    f.write_text('[slurm]\nqueue = "gpu"\nwalltime = "02:00:00"\ncores = 8\nmemory = "64GB"\n'
                 'gpus_per_job = 2\njobs = 3\naccount = "fas"\n')
    conf = read_slurm_config(str(f))
    cluster = slurm_cluster(conf)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p gpu", "#SBATCH -t 02:00:00", "#SBATCH --cpus-per-task=8", "#SBATCH --gres=gpu:2",
                 "#SBATCH -A fas", "--resources GPU=1", "--nworkers 2"):
        assert line in script, line
    f.write_text('[slurm]\nqueue = "gpu"\ncores = "eight"\n')
    with pytest.raises(AnnotatorError, match="missing walltime, memory, jobs"):
        read_slurm_config(str(f))
    f.write_text('[slurm]\nqueue = "gpu"\nwalltime = "1:00:00"\ncores = 8\nmemory = "8GB"\njobs = 1\ngpu = 1\n')
    with pytest.raises(AnnotatorError, match="unknown key"):
        read_slurm_config(str(f))
