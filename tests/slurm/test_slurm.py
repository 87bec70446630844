"""`annotate run --cluster slurm` on a real one-node SLURM: the same store as a local run, a worker
job cancelled mid-run, a partition that does not exist and one whose jobs stay pending."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import assert_same_store

pytestmark = pytest.mark.slurm

SLURM_TOML = """[slurm]
queue = "{queue}"
walltime = "00:30:00"
cores = 1
memory = "3GB"
jobs = {jobs}
log_directory = "{logs}"
"""


def config(tmp_path, queue="debug", jobs=2):
    path = tmp_path / "slurm.toml"
    path.write_text(SLURM_TOML.format(queue=queue, jobs=jobs, logs=tmp_path / "slurm-logs"))
    return path


def annotate(*args, **kw):
    exe = str(Path(sys.executable).with_name("annotate"))
    return subprocess.Popen([exe, "run", "--dataset", "sample", "--segmenter", "geometry", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, **kw)


def test_the_sample_on_slurm_equals_the_local_store(slurm, sample_store, tmp_path):
    from helpers import REPO

    out = tmp_path / "s.zarr"
    r = annotate("--out", out, "--cluster", "slurm", "--cluster-config", config(tmp_path))
    output = r.communicate(timeout=600)[0].decode()
    assert r.returncode == 0, output + slurm.logs()
    assert "15 samples in 2 shards" in output
    assert_same_store(sample_store[0], out)
    deadline = time.time() + 60
    while slurm.jobs() and time.time() < deadline:  # the run cancels its worker jobs when it ends
        time.sleep(1)
    assert slurm.jobs() == []
    assert list((tmp_path / "slurm-logs").glob("*.out")) and not list(REPO.glob("slurm-*.out"))  # job logs


def test_a_cancelled_worker_job_is_replaced_and_the_store_is_the_same(slurm, tmp_path):
    ref = tmp_path / "ref.zarr"
    r = annotate("--out", ref, "--shard-size", 1, "--cluster", "none")
    assert r.wait(timeout=600) == 0
    out = tmp_path / "c.zarr"
    r = annotate("--out", out, "--shard-size", 1, "--cluster", "slurm", "--cluster-config", config(tmp_path))
    deadline = time.time() + 300
    while len(list((out / "_shards").glob("*.json"))) < 2 and time.time() < deadline and r.poll() is None:
        time.sleep(0.2)
    jobs = slurm.jobs()
    assert r.poll() is None and len(jobs) == 2, (jobs, slurm.logs())
    assert len(list((out / "_shards").glob("*.json"))) < 15  # still in flight
    slurm.run("scancel", jobs[0])
    output = r.communicate(timeout=600)[0].decode()
    assert r.returncode == 0, output
    assert "Dask worker(s) were lost during the run" in output, output
    assert_same_store(ref, out)


def test_a_partition_that_does_not_exist_is_a_one_line_error(slurm, tmp_path):
    r = annotate("--out", tmp_path / "x.zarr", "--cluster", "slurm", "--cluster-config", config(tmp_path, "nope"))
    output = r.communicate(timeout=120)[0].decode()
    lines = [l for l in output.splitlines() if l.strip() and not l.startswith("annotate:")]
    assert r.returncode == 1 and len(lines) == 1, output
    assert lines[0] == "Error: --cluster-config queue 'nope' is not a SLURM partition here (sinfo lists: closed, debug)"


def test_jobs_pending_past_the_wait_end_the_run_with_squeues_reason(slurm, tmp_path):
    t = time.time()
    r = annotate("--out", tmp_path / "x.zarr", "--cluster", "slurm", "--cluster-config",
                 config(tmp_path, "closed", jobs=1), "--cluster-wait", 15)
    output = r.communicate(timeout=180)[0].decode()
    lines = [l for l in output.splitlines() if l.strip() and not l.startswith(("annotate:", "\r"))]
    assert r.returncode == 1 and lines[-1].startswith("Error: no SLURM worker job started within --cluster-wait 15 s "
                                                      "in partition 'closed'"), output
    assert "PartitionDown" in lines[-1] and time.time() - t < 120
    deadline = time.time() + 60
    while slurm.jobs() and time.time() < deadline:  # nothing is left queued
        time.sleep(1)
    assert slurm.jobs() == []
