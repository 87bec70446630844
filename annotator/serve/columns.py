"""The catalog's column storage: text columns held compactly (Texts), meta columns cached on local
disk between server starts (ColumnCache), and a cheap test of whether a local folder changed
(FolderWatch), so that a look at an unchanged store costs one stat."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import numpy as np

from annotator.store import places
from annotator import store


class Texts:
    """A text column held compactly: one UTF-8 buffer and offsets (a 1,000,000-row sample_id column
    is ~30 MB here, several times that as Python strings)."""

    def __init__(self, buffer: bytes, offsets: np.ndarray):
        self.buffer, self.offsets = buffer, offsets

    @classmethod
    def of(cls, cache, name: str, read) -> "Texts":
        """The column `name` from the cache, else read() and encoded (then cached)."""
        offsets, buffer = cache.load(f"{name}.offsets"), cache.load(f"{name}.buffer")
        if offsets is None or buffer is None:
            encoded = [str(v).encode() for v in read()]
            offsets = np.zeros(len(encoded) + 1, np.int64)
            np.cumsum([len(b) for b in encoded], out=offsets[1:])
            buffer = np.frombuffer(b"".join(encoded), np.uint8)
            cache.save(f"{name}.offsets", offsets)
            cache.save(f"{name}.buffer", buffer)
        return cls(bytes(buffer), offsets)

    def replaced(self, parts: list[tuple[int, int, list]]) -> "Texts":
        """A copy with rows [a, b) set to values, for each (a, b, values) of parts (sorted, disjoint):
        one pass over the buffer, however many parts."""
        lengths = np.diff(self.offsets)
        pieces, at = [], 0
        for a, b, values in parts:
            encoded = [str(v).encode() for v in values]
            pieces += [self.buffer[self.offsets[at]:self.offsets[a]], *encoded]
            lengths[a:b] = [len(e) for e in encoded]
            at = b
        pieces.append(self.buffer[self.offsets[at]:])
        offsets = np.zeros_like(self.offsets)
        np.cumsum(lengths, out=offsets[1:])
        return Texts(b"".join(pieces), offsets)

    def __getitem__(self, i: int) -> str:
        return self.buffer[self.offsets[i]:self.offsets[i + 1]].decode()


def _digest(value) -> str:
    return hashlib.sha1(repr(value).encode()).hexdigest()[:20]


class ColumnCache:
    """Meta columns kept on local disk between runs of the server: zarr-python spends ~0.6 ms per
    chunk, so reading one column of a 1,000,000-row store of 32-row shards takes ~20 s, and a second
    start should not pay it again. Folder: $ANNOTATOR_CACHE or ~/.cache/fas-annotator, then
    serve/<store>/<state>/, where the state is the root metadata's and the commit markers' (the set of
    committed shards and the _shards folder's change time): the cached values of a row are trusted
    only while its shard is committed as it was when they were read, and a store still being written
    gets a new folder (the older ones of that store are removed). Nothing is cached where that cannot
    be written, nor for stores at non-local URLs."""

    def __init__(self, root, url: str | None, shards: frozenset[int] = frozenset()):
        self.folder = None
        path = places.local(url) if url is not None else None
        if path is None:
            return
        meta, markers = path / "zarr.json", path / store.SHARDS_DIR
        state = (meta.stat().st_size, meta.stat().st_mtime_ns,
                 markers.stat().st_mtime_ns if markers.is_dir() else 0, _digest(sorted(shards)))
        base = Path(os.environ.get("ANNOTATOR_CACHE") or Path.home() / ".cache" / "fas-annotator")
        mine = base / "serve" / _digest((root.attrs.get("store_id"), str(path)))
        folder = mine / _digest(state)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for old in mine.iterdir():  # states of this store that are gone: a run wrote on
                if old != folder:
                    shutil.rmtree(old, ignore_errors=True)
        except OSError:
            return
        self.folder = folder

    def detach(self) -> None:
        """Stop loading and saving: the columns in memory no longer match the state of the key."""
        self.folder = None

    def load(self, name: str) -> np.ndarray | None:
        path = self.folder / f"{name}.npy" if self.folder else None
        if path is None or not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None

    def save(self, name: str, value: np.ndarray) -> None:
        if self.folder is None:
            return
        try:
            tmp = self.folder / f"{name}.{os.getpid()}.part.npy"
            np.save(tmp, value, allow_pickle=False)
            tmp.replace(self.folder / f"{name}.npy")
        except OSError:
            pass

    def get(self, name: str, make) -> np.ndarray:
        """The array saved under name, else make(), saved for the next start."""
        value = self.load(name)
        if value is None:
            value = make()
            self.save(name, value)
        return value


class FolderWatch:
    """Whether a local folder may have changed since the last look, from its change time alone (an
    entry added, removed or renamed moves it; zarr and the commit markers write by rename), so that
    a look at a store of 30,000 shards that did not change costs one stat, not a listing. Within 2 s
    of a change the file system's clock may not tell two changes apart: then it says yes."""

    def __init__(self, path: Path | None):
        self.path, self.seen = path, None

    def changed(self) -> bool:
        if self.path is None:
            return True
        try:
            stamp = self.path.stat().st_mtime_ns
        except OSError:
            return True  # absent: the listing says so
        fresh = stamp != self.seen or time.time_ns() - stamp < 2_000_000_000
        self.seen = stamp
        return fresh
