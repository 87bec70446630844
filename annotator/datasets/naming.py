"""Helpers shared by the adapters of the public datasets: native ids, list files, protocols."""

from __future__ import annotations

from pathlib import Path

from annotator.core.errors import AnnotatorError

from .base import safe_join


def read_lines(path: Path, dataset: str) -> list[str]:
    """Non-empty, stripped lines of a list/protocol file (LF or CRLF); a missing file is a one-line error."""
    if not path.is_file():
        raise AnnotatorError(f"{dataset}: expected the file {path}; the dataset root looks incomplete "
                             "(see `annotate datasets`)")
    return [l.strip() for l in path.read_text(errors="replace").splitlines() if l.strip()]


def list_entry(root: Path, entry: str, where: str) -> str:
    """A path named in a list file, checked to stay inside root; returned as given (posix)."""
    safe_join(root, entry, where)
    return entry.replace("\\", "/")


def require(path: Path, dataset: str, what: str) -> Path:
    if not path.exists():
        raise AnnotatorError(f"{dataset}: {what} {path} not found; is --root the top of the {dataset} distribution?")
    return path


def no_protocols_note(dataset: str, looked: list[Path]) -> str:
    where = ", ".join(str(p) for p in looked)
    return (f"{dataset}: no protocol files found (looked in {where}); annotating without protocols - "
            "add them later with `annotate protocols STORE --dataset ... --root ... [--protocol-dir DIR]`")
