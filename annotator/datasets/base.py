"""The adapter interface and helpers shared by adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator

from ..decode import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from ..errors import AnnotatorError
from ..registry import Registry
from ..samples import SampleRef


@dataclass
class Findings:
    """What an adapter noticed while reading a dataset root.

    strict (`annotate run`): a name that does not parse is an AnnotatorError, raised at once.
    Not strict (`annotate check-dataset`): it is recorded and the file is skipped, so that one
    report lists every problem. Notes are facts a user should hear once (e.g. "no protocol files").
    """

    strict: bool = True
    bad_names: list[tuple[str, str]] = field(default_factory=list)  # (file or list line, what was expected)
    notes: list[str] = field(default_factory=list)

    def bad_name(self, where: str | Path, message: str) -> None:
        if self.strict:
            raise AnnotatorError(f"{where}: {message}")
        self.bad_names.append((str(where), message))


class DatasetAdapter:
    """Base of every adapter: turns a dataset root into SampleRefs without decoding media.

    Built as ADAPTER(root=..., frames_per_video=..., protocol_dir=..., strict=...); raises
    AnnotatorError on a wrong root. Subclasses set `name`, `description` and, when they read
    protocol list files, `reads_protocol_files = True` (then --protocol-dir may point elsewhere).
    `listed` maps a protocol name to the ids its list files name (what check-dataset compares with
    the files on disk); `list_ids(ref)` are the ids by which a list may name a row.
    """

    name: str = ""
    description: str = ""  # one paragraph: the layout it expects and the protocols it writes
    reads_protocol_files = False

    def __init__(self, root: str | Path | None, frames_per_video: int = 10, protocol_dir: str | None = None,
                 strict: bool = True):
        self.root = require_dir(root, self.name)
        self.k = frames_per_video
        if protocol_dir and not self.reads_protocol_files:
            raise AnnotatorError(f"{self.name} reads no protocol files, so --protocol-dir does not apply; "
                                 "drop it")
        self.protocol_dir = require_dir(protocol_dir, f"{self.name} --protocol-dir") if protocol_dir else None
        self.findings = Findings(strict)
        self.listed: dict[str, set[str]] = {}
        self.protocols: dict[str, dict[str, int]] = {}  # protocol -> list id -> 0/1/2
        self.setup()

    def setup(self) -> None:
        """Check the root's layout and read list files (called by __init__)."""

    def samples(self) -> Iterator[SampleRef]:
        raise NotImplementedError

    def protocol_names(self) -> list[str]:
        return sorted(self.protocols)

    def list_ids(self, ref: SampleRef) -> set[str]:
        return {Path(ref.source).stem, ref.source}

    def attack_type_of(self, table: dict[str, str], native: str, where: str | Path) -> str | None:
        """The canonical attack type of a dataset-native id; an unmapped id is a bad name, never a guess."""
        if native in table:
            return table[native]
        self.findings.bad_name(where, f"{self.name}: native attack id {native!r} has no canonical mapping "
                                      f"(known: {', '.join(sorted(table))})")
        return None

    def protocol_codes(self, *keys: str) -> dict[str, int]:
        """protocol -> code of the first key a protocol's lists name (-1 when none does)."""
        out = {}
        for name, table in self.protocols.items():
            out[name] = next((table[k] for k in keys if k in table), -1)
        return out


DATASETS: Registry[DatasetAdapter] = Registry("dataset")


def require_dir(root: str | Path | None, what: str) -> Path:
    if not root:
        raise AnnotatorError(f"dataset {what} needs --root DIR pointing at the dataset")
    p = Path(root).expanduser()
    if not p.is_dir():
        raise AnnotatorError(f"{what} root {root} is not a directory; pass --root DIR pointing at the dataset")
    return p.resolve()


def safe_join(root: Path, rel: str, where: str) -> Path:
    """root / rel, refusing absolute paths and `..` that would leave root (paths read from list files)."""
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or not rel.strip():
        raise AnnotatorError(f"{where}: path {rel!r} must be relative to the dataset root without '..'")
    return root / Path(*pure.parts)


def media_kind(path: Path) -> str | None:
    ext = path.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    return None


def media_files(base: Path, kind: str | None = None) -> list[Path]:
    """Media files under base (recursively), sorted; kind "video" or "image" restricts them."""
    return sorted(p for p in base.rglob("*") if p.is_file() and (media_kind(p) == kind if kind else media_kind(p)))


def refs_for_file(path: Path, root: Path, frames_per_video: int, **fields) -> list[SampleRef]:
    """The rows of one media file: one for an image, frames_per_video slots for a video."""
    source = path.relative_to(root).as_posix()
    kind = "video" if fields.get("media") and fields["media"].get("kind") else media_kind(path)  # HDF5: video
    if kind == "video":
        return [SampleRef(sample_id=f"{source}#{k}", path=str(path), source=source, video_id=source,
                          slot=k, n_slots=frames_per_video, **fields) for k in range(frames_per_video)]
    return [SampleRef(sample_id=source, path=str(path), source=source, video_id=source, **fields)]
