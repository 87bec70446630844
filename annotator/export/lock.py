"""One writer per export folder, as pipelines/lock.py keeps one writer per store (annotator may not
import pipelines, so the same semantics live here, for a local folder).

`.export/lock.json` is created with O_EXCL, so of two exports started together exactly one gets it;
it holds the owner's host, pid, start and heartbeat times. A lock is stale when its owner's pid is
gone (same host) or its heartbeat is older than `stale_after` seconds (another host, where the pid
cannot be checked); a stale lock is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

from annotator.core.errors import AnnotatorError

LOCK = "lock.json"
STALE_AFTER = 3600.0
# A lock file still empty this long after its creation was left by an owner killed between the
# create and the write of its first line (a live owner writes it at once).
EMPTY_GRACE = 60.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _read(path: Path) -> dict | None:
    """The lock's content; None when missing; {} when it is being written or unreadable."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        info = json.loads(text)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _stale(path: Path, info: dict, stale_after: float) -> bool:
    if not info:  # empty or garbled: stale only once no live writer can still be filling it in
        try:
            return time.time() - path.stat().st_mtime > EMPTY_GRACE
        except FileNotFoundError:
            return True
    if info.get("host") == socket.gethostname():
        try:
            return not _alive(int(info.get("pid", -1)))
        except (TypeError, ValueError):
            return True
    return time.time() - float(info.get("heartbeat", 0) or 0) > stale_after


def _when(info: dict) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info.get("started", 0) or 0)))


class ExportLock:
    """Context manager: take `<folder>/.export/lock.json` or raise a one-line AnnotatorError naming
    the live holder; beat() refreshes the heartbeat; the lock is removed on exit."""

    def __init__(self, folder: Path, state: str = ".export", stale_after: float = STALE_AFTER):
        self.folder = Path(folder)
        self.path = self.folder / state / LOCK
        self.stale_after = stale_after
        self.started = time.time()
        self.token = uuid.uuid4().hex  # tells this owner's lock from a later owner's on release

    def _content(self) -> bytes:
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": self.started,
                           "heartbeat": time.time(), "token": self.token}).encode()

    def _create(self) -> bool:
        """True when this call created the lock file (O_EXCL: one creator among racers)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(self._content())
        return True

    def _take_over(self, seen: tuple[int, dict]) -> None:
        """Move a stale lock aside. Renamed, not deleted: of two exports taking over the same stale
        lock, the second renames the first's new lock, sees it is not the stale one, and puts it back."""
        grave = self.path.with_name(f"{LOCK}.stale-{uuid.uuid4().hex[:12]}")
        try:
            os.rename(self.path, grave)
        except FileNotFoundError:
            return  # someone else moved it: race for the create
        if (grave.stat().st_ino, _read(grave)) != seen:
            os.replace(grave, self.path)  # a live owner's lock: give it back
            return
        grave.unlink(missing_ok=True)

    def _held(self) -> tuple[int, dict] | None:
        """(inode, content) of the lock file now; None when there is none."""
        try:
            ino = self.path.stat().st_ino
        except FileNotFoundError:
            return None
        info = _read(self.path)
        return None if info is None else (ino, info)

    def __enter__(self) -> "ExportLock":
        for _ in range(5):
            if self._create():
                return self
            held = self._held()
            if held is None:
                continue  # released in between: try again
            if not _stale(self.path, held[1], self.stale_after):
                self._refuse(held[1])
            self._take_over(held)
        held = self._held()
        self._refuse(held[1] if held else {})

    def _refuse(self, info: dict) -> None:
        who = (f"pid {info.get('pid')} on {info.get('host')}, since {_when(info)}" if info
               else "a process that is taking the lock now")
        raise AnnotatorError(f"--out {self.folder} is being written by another annotate export ({who}); wait for "
                             f"it, or delete {self.path} if that export is gone")

    def beat(self) -> None:
        """Refresh the heartbeat (a unique temporary name, then a rename: readers never see half)."""
        tmp = self.path.with_name(f"{LOCK}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
        tmp.write_bytes(self._content())
        os.replace(tmp, self.path)

    def __exit__(self, *exc) -> None:
        info = _read(self.path)
        if info and info.get("token") == self.token:  # never remove a lock another export took over
            self.path.unlink(missing_ok=True)
