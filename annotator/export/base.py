"""What an export format provides: the files of one row, written from plain numpy arrays, and the
list files of all rows. The driver (run.py) plans rows, runs shards in parallel and resumes."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from annotator.core.errors import AnnotatorError
from annotator.core.registry import Registry

EXPORTERS: Registry = Registry("export format")


@dataclass(frozen=True)
class Row:
    """One exported store row. `group`: train, dev, test (or all); `video`: a file-system-safe name
    of its video; `number`: its rank (0-based) among the exported frames of its video and group, in
    frame order; `count`: how many frames of its video and group are exported; `frame_index`: the
    frame of the source video (-1 for an image)."""

    row: int
    group: str
    video: str
    video_id: str
    number: int
    frame_index: int
    is_attack: bool
    attack_type: str
    sample_id: str
    dataset: str
    count: int = 1


class Exporter:
    """One export format. `write` gets the row's arrays in the store layouts: image (S, S, 3) uint8
    RGB, label (3, S, S) uint8 (attack, live, background), landmarks (P, 3) float32 crop pixels (the
    store's landmark layout: 478 or 68 points)."""

    name = ""
    #: README lines: the format's source, polarity, value ranges, and how its reader finds files.
    about = ""

    def __init__(self, size: int):
        self.size = size  # the store's crop side S

    def prepare(self, root, rows: list[Row], options: dict) -> None:
        """Check the store and the format's options before anything is written (options: `lists`, a
        folder of list files, and `size`, the output side; only formats that take them accept them)."""
        given = [k for k, v in options.items() if v is not None and v != ""]
        if given:
            raise AnnotatorError(f"--{given[0]} is for the flip-mcio and flip-wcs formats, not {self.name}")

    def files(self, r: Row) -> list[str]:
        """Paths (relative to the export folder) that write() creates for row r."""
        raise NotImplementedError

    def images(self, r: Row) -> list[str]:
        """The image files of row r (more than one where a reader needs a frame repeated), for frames.csv."""
        return self.files(r)[:1]

    def write(self, r: Row, image: np.ndarray, label: np.ndarray, landmarks: np.ndarray, out: Path) -> None:
        raise NotImplementedError

    def lists(self, rows: list[Row], out: Path) -> list[str]:
        """Write the list / index files of all rows; returns their relative paths."""
        raise NotImplementedError


class SlottedExporter(Exporter):
    """A format whose reader counts a video's numbered files (annotator/export/slots.py): a row's
    files are those of every slot that shows its frame; the first slot's are written, the others
    linked to them."""

    #: count -> the frame each file slot shows (a function of annotator/export/slots.py)
    slot_map = staticmethod(lambda count: list(range(count)))

    def slots(self, r: Row) -> list[int]:
        return [s for s, frame in enumerate(self.slot_map(r.count)) if frame == r.number]

    def slot_files(self, r: Row, slot: int) -> list[str]:
        """The paths of one slot, the image first."""
        raise NotImplementedError

    def write_slot(self, paths: list[str], image: np.ndarray, label: np.ndarray, landmarks: np.ndarray,
                   out: Path) -> None:
        raise NotImplementedError

    def files(self, r: Row) -> list[str]:
        return [p for s in self.slots(r) for p in self.slot_files(r, s)]

    def images(self, r: Row) -> list[str]:
        return [self.slot_files(r, s)[0] for s in self.slots(r)]

    def write(self, r: Row, image: np.ndarray, label: np.ndarray, landmarks: np.ndarray, out: Path) -> None:
        first, *others = self.slots(r)
        paths = self.slot_files(r, first)
        self.write_slot(paths, image, label, landmarks, out)
        for s in others:
            for source, path in zip(paths, self.slot_files(r, s)):
                link(out / source, out / path)


def link(source: Path, path: Path) -> None:
    """path becomes a hard link to source (a copy where the file system has no hard links), through
    a temporary name like every file of an export."""
    import shutil

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = part_name(path)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    tmp.replace(path)


def safe_name(text: str) -> str:
    """A file name for text: unchanged when already safe, else its unsafe characters replaced and
    a short hash of the original appended (so two ids never share a name)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", text).strip(".") or "_"
    return safe if safe == text else f"{safe}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def face_box(landmarks: np.ndarray, size: int) -> tuple[float, float, float, float]:
    """(x, y, w, h) crop pixels of the square around the landmarks' extent (the face box the crop
    was cut around, before the store's box scale; with ibug-68's derived forehead), clipped to the crop."""
    from annotator.face.layouts import layout_of

    xy = layout_of(landmarks).points(landmarks[:, :2])
    lo, hi = np.nanmin(xy, axis=0), np.nanmax(xy, axis=0)
    side = float(max(hi - lo))
    cx, cy = (lo + hi) / 2
    x0, y0 = max(0.0, cx - side / 2), max(0.0, cy - side / 2)
    return x0, y0, min(float(size), cx + side / 2) - x0, min(float(size), cy + side / 2) - y0


def save(path: Path, pixels: np.ndarray, quality: int | None = None) -> None:
    """A PNG, or a JPEG at `quality` when given; written to a temporary name, then renamed, so a
    crash never leaves half a file under the final name."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = part_name(path)
    img = Image.fromarray(np.ascontiguousarray(pixels))
    if quality is None:
        img.save(tmp, format="PNG", compress_level=1)
    else:
        img.save(tmp, format="JPEG", quality=quality, subsampling=0 if quality >= 95 else 2)
    tmp.replace(path)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = part_name(path)
    tmp.write_text(text)
    tmp.replace(path)


def part_name(path: Path) -> Path:
    """The temporary name `path` is written under before its rename: one per writer (pid and a
    random part), so that two writers of one file never write, or rename away, each other's."""
    return path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
