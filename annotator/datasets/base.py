"""The adapter interface and helpers shared by adapters."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterator, Protocol

from ..decode import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from ..errors import AnnotatorError
from ..registry import Registry
from ..samples import SampleRef


class Adapter(Protocol):
    """Built as ADAPTER(root=..., frames_per_video=...); raises AnnotatorError on a wrong root."""

    name: str
    description: str  # one paragraph: the layout it expects

    def samples(self) -> Iterator[SampleRef]: ...

    def protocol_names(self) -> list[str]: ...


DATASETS: Registry[Adapter] = Registry("dataset")


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


def refs_for_file(path: Path, root: Path, frames_per_video: int, **fields) -> list[SampleRef]:
    """The rows of one media file: one for an image, frames_per_video slots for a video."""
    source = path.relative_to(root).as_posix()
    kind = "video" if fields.get("media") else media_kind(path)  # HDF5 recordings are videos
    if kind == "video":
        return [SampleRef(sample_id=f"{source}#{k}", path=str(path), source=source, video_id=source,
                          slot=k, n_slots=frames_per_video, **fields) for k in range(frames_per_video)]
    return [SampleRef(sample_id=source, path=str(path), source=source, video_id=source, **fields)]
