import os

import pytest

from single_node import SingleNodeSlurm, install_if_missing


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A one-node SLURM on this machine for the session (skipped outside CI when it cannot start)."""
    def unavailable(why: str):
        if os.environ.get("CI"):
            pytest.fail(f"SLURM is needed in CI: {why}")
        pytest.skip(f"no SLURM here: {why}")

    why = install_if_missing()
    if why:
        unavailable(why)
    cluster = SingleNodeSlurm(tmp_path_factory.mktemp("slurm"), partitions={"debug": "UP", "closed": "DOWN"})
    try:
        cluster.start()
    except (RuntimeError, OSError) as e:
        cluster.stop()
        unavailable(str(e)[:500])
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)  # sbatch, squeue and scancel of dask-jobqueue find it
    yield cluster
    cluster.stop()
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old
