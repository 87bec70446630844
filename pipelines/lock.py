"""One writer per store: a lock file that a crashed owner cannot leave behind for ever.

`_lock.json` holds the owner's host, pid and a heartbeat time refreshed as shards complete. A lock
is stale when its owner's pid is gone (same host) or its heartbeat is older than `stale_after`
seconds (another host, where the pid cannot be checked).
"""

from __future__ import annotations

import json
import os
import socket
import time

import fsspec

from annotator.core.errors import AnnotatorError
from annotator.store import LOCK_FILE as LOCK
from annotator.store import write_atomic


def _path(url: str) -> tuple:
    fs, path = fsspec.core.url_to_fs(url)
    return fs, f"{path.rstrip('/')}/{LOCK}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder(url: str, stale_after: float = 3600.0) -> dict | None:
    """The live lock holder of the store at url, or None (no lock, or a stale one)."""
    fs, path = _path(url)
    if not fs.exists(path):
        return None
    try:
        info = json.loads(fs.cat_file(path))
    except (ValueError, OSError):  # unreadable (a folder, a 0-byte file): nobody's lock; beat() replaces it
        return None
    if not isinstance(info, dict):
        return None
    if info.get("host") == socket.gethostname():
        return info if _alive(int(info.get("pid", -1))) and info.get("pid") != os.getpid() else None
    return info if time.time() - float(info.get("heartbeat", 0)) < stale_after else None


def check_free(url: str) -> None:
    info = holder(url)
    if info is not None:
        raise AnnotatorError(
            f"{url} is being written by another annotate run (pid {info.get('pid')} on {info.get('host')}, "
            f"since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(info.get('started', 0)))}); wait for it, "
            f"or delete {LOCK} in the store if that run is gone")


class StoreLock:
    """Context manager: take the lock (after check_free), refresh it with beat(), release on exit."""

    def __init__(self, url: str):
        self.url = url
        self.started = time.time()

    def beat(self) -> None:
        fs, path = _path(self.url)
        write_atomic(fs, path, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                           "started": self.started, "heartbeat": time.time()}).encode())

    def __enter__(self) -> "StoreLock":
        check_free(self.url)
        self.beat()
        return self

    def __exit__(self, *exc) -> None:
        fs, path = _path(self.url)
        try:
            fs.rm(path)
        except FileNotFoundError:
            pass
