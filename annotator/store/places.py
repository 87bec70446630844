"""Where commands may write: output places checked before any work, so that no command destroys
what it did not write and an unwritable place is a one-line error, not a traceback."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from annotator.core.errors import AnnotatorError


def normalize(url: str) -> str:
    """A local `file://` URL as its plain path (it then behaves exactly like that path); others unchanged."""
    return url[len("file://"):] if url.startswith("file://") else url


def local(url: str) -> Path | None:
    """The resolved local path of a path or file:// URL; None for other fsspec URLs (memory://, s3://)."""
    url = normalize(url)
    if "://" in url:
        return None
    return Path(url).expanduser().resolve()


def refuse_overlap(out: str, other: str, what: str) -> None:
    """Refuse an output that equals, contains or lies inside `other` (the dataset root, the input store)."""
    a, b = local(out), local(other)
    if a is None or b is None:  # remote URLs: compare their paths as text
        a, b = (Path("/" + normalize(u).replace("://", "/", 1).strip("/")) for u in (out, other))
    relation = "is" if a == b else "lies inside" if b in a.parents else "contains" if a in b.parents else ""
    if relation:
        raise AnnotatorError(f"--out {out} {relation} {what} {other}; write the output somewhere else")


def require_writable(out: str, what: str = "--out", parent_must_exist: bool = False) -> None:
    """A local output place must be creatable: its nearest existing folder writable (checked by
    creating and removing a probe file there). Remote URLs are left to their filesystem."""
    path = local(out)
    if path is None:
        return
    folder = path if path.is_dir() else path.parent
    if parent_must_exist and not folder.is_dir():
        raise AnnotatorError(f"{what} {out}: the folder {folder} does not exist; create it first")
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise AnnotatorError(f"{what} {out}: {folder} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".annotate-write-probe-"):
            pass
    except OSError as e:
        raise AnnotatorError(f"{what} {out}: cannot write in {folder} ({e.strerror or e}); choose a writable "
                             "place") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise AnnotatorError(f"{what} {out}: {path} is not writable; choose a writable place")
