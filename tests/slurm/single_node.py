"""A one-node SLURM for the tests: munged, slurmctld and slurmd of this host, with their own
configuration, sockets, state and logs in one folder, started and stopped (by pid) by the tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_if_missing() -> str | None:
    """None when the daemons are there (installing slurm-wlm and munge with apt-get when allowed),
    else why not."""
    if all(shutil.which(d) or Path(f"/usr/sbin/{d}").exists() for d in DAEMONS):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "slurm-wlm and munge are not installed and this user cannot apt-get install them"
    r = subprocess.run(["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"], capture_output=True, text=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=600)
    if r.returncode:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600)
        r = subprocess.run(["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"], capture_output=True, text=True,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=600)
    return None if r.returncode == 0 else f"apt-get install slurm-wlm munge failed: {r.stderr.strip()[-300:]}"


class SingleNodeSlurm:
    """Start with start(); `env` holds SLURM_CONF for the client commands (sbatch, squeue, scancel)."""

    def __init__(self, folder: Path, partitions: dict[str, str] | None = None):
        """partitions: name -> state (UP or DOWN); the first is the default."""
        self.dir, self.partitions = Path(folder), partitions or {"debug": "UP"}
        self.host = socket.gethostname().split(".")[0]
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf = self.dir / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _write_config(self) -> None:
        d = self.dir
        for sub in ("state", "spool", "munge", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        cpus = os.cpu_count() or 1
        mem_mb = int(int(open("/proc/meminfo").read().split()[1]) / 1024 * 0.8)
        sock = d / "munge" / "munge.socket"
        self.conf.write_text(f"""ClusterName=fastest
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={sock}
StateSaveLocation={d / 'state'}
SlurmdSpoolDir={d / 'spool'}
SlurmctldPidFile={d / 'slurmctld.pid'}
SlurmdPidFile={d / 'slurmd.pid'}
SlurmctldLogFile={d / 'log' / 'slurmctld.log'}
SlurmdLogFile={d / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
""" + "".join(f"PartitionName={name} Nodes=ALL Default={'YES' if i == 0 else 'NO'} MaxTime=INFINITE State={state}\n"
                    for i, (name, state) in enumerate(self.partitions.items())))
        key = d / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self.munge = ["munged", "--foreground", "--force", f"--socket={sock}", f"--key-file={key}",
                      f"--pid-file={d / 'munge' / 'munged.pid'}", f"--log-file={d / 'log' / 'munged.log'}",
                      f"--seed-file={d / 'munge' / 'munged.seed'}"]

    def start(self, timeout: float = 60.0) -> None:
        self._write_config()
        self.procs["munged"] = subprocess.Popen(self.munge, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        time.sleep(0.5)
        for d in ("slurmctld", "slurmd"):
            self.procs[d] = subprocess.Popen([d, "-D", "-f", str(self.conf)], env=self.env,
                                             stdout=open(self.dir / "log" / f"{d}.out", "w"), stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self.run("sinfo", "-h", "-o", "%t")
            if r.returncode == 0 and {"idle", "mix", "alloc"} & set(r.stdout.split()):
                return
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited: {self.logs()}")
            time.sleep(0.5)
        raise RuntimeError(f"the node did not become idle in {timeout:.0f} s: {self.logs()}")

    def run(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, timeout=60)

    def jobs(self) -> list[str]:
        """Ids of this cluster's jobs that are pending or running."""
        out = self.run("squeue", "-h", "-o", "%i").stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def logs(self) -> str:
        text = []
        for f in sorted((self.dir / "log").glob("*")):
            text.append(f"{f.name}: {f.read_text(errors='replace')[-800:]}")
        return " | ".join(text)

    def stop(self) -> None:
        """Cancel this cluster's jobs, wait until their steps are gone, then stop the daemons it started."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            for j in self.jobs():
                self.run("scancel", j)
            deadline = time.time() + 30
            while self.jobs() and time.time() < deadline:
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.pop(name, None)
            if p is None or p.poll() is not None:
                continue
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
