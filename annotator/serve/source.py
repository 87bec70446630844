"""Source frames of failed rows for the QA page: a row whose status is not ok holds a black crop, so the
page shows the frame the run could not label instead, decoded on demand from the dataset.

The one place the server reads outside the store: only the file `meta/source` names under the dataset
root the store's config records (`config["root"]`; for the `sample` dataset an empty root is the
shipped sample data), and only for failed rows. A source that is absolute, climbs out with `..` or
resolves (through symlinks) outside the root is refused (403), a root or file that is gone is a 404,
and a file that does not decode a 422: each a one-line message. Frames are downscaled to the asked
side and sent as JPEG; the encoded tiles are kept in a bounded cache."""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from PIL import Image

from annotator.core.samples import STATUS_CODES
from annotator.media.decode import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, DecodeError, Orientation,
                                    read_oriented_image, read_video_frames)

from .catalog import QueryError
from .render import Cache

SIDES = (32, 1024)  # the tile sides the route takes


class _OneFrame:
    """A sampling rule (annotator/media/sampling.py's interface) that takes one given frame."""

    def __init__(self, index: int):
        self.index, self.spec = index, f"frame {index}"

    def indices(self, n: int) -> np.ndarray:
        return np.array([self.index], np.int64)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class SourceFrames:
    """Failed rows' source frames of the store `root` (an open zarr group)."""

    def __init__(self, root, cached: int = 256):
        config = root.attrs.get("config") or {}
        self.root_text, self.dataset = str(config.get("root") or ""), str(config.get("dataset") or "")
        self.meta = root["meta"]
        self._tiles = Cache(cached)

    def forget(self) -> None:
        """Drop the cached tiles: a shard was reopened, and its rows will change."""
        self._tiles.clear()

    def dataset_root(self) -> Path:
        """The dataset root, resolved (symlinks followed); 404 when the config records none or it is gone."""
        if self.root_text:
            where = Path(self.root_text).expanduser()  # a relative root: from where the server runs
        elif self.dataset == "sample":
            from annotator.datasets.sample import sample_root

            where = sample_root()
        else:
            raise QueryError(f"the store's config records no dataset root (dataset {self.dataset!r}): "
                             "no source frames to show", 404)
        if not where.is_dir():
            raise QueryError(f"the dataset root {where} recorded in the store's config is not here "
                             "(moved, unmounted or another machine's): no source frames to show", 404)
        return where.resolve()

    def path(self, row: int) -> Path:
        """The row's source file under the dataset root; 403 for one that leaves it, 404 for one gone."""
        source = str(self.meta["source"][row]) if "source" in self.meta else ""
        if not source:
            raise QueryError(f"row {row} records no source file", 404)
        parts = PurePosixPath(source.replace("\\", "/")).parts
        if (PurePosixPath(source).is_absolute() or PureWindowsPath(source).is_absolute() or ".." in parts
                or "\0" in source):
            raise QueryError(f"row {row}'s source {source!r} is not a path inside the dataset root: refused", 403)
        base = self.dataset_root()
        found = (base / source).resolve()
        if not found.is_relative_to(base):
            raise QueryError(f"row {row}'s source {source!r} leads outside the dataset root (a symlink): refused", 403)
        if not found.is_file():
            raise QueryError(f"row {row}'s source {source!r} is not under the dataset root {base} any more", 404)
        return found

    def tile(self, row: int, side: int, status: int) -> bytes:
        """JPEG of the failed row's source frame, its longer side at most `side`; status: the row's
        (the catalog holds it: no store read for a cached tile)."""
        if not SIDES[0] <= side <= SIDES[1]:
            raise QueryError(f"side must be {SIDES[0]} .. {SIDES[1]}, got {side}")
        if status == STATUS_CODES["ok"]:
            raise QueryError(f"row {row} is usable: the page shows its crop; source frames are served for "
                             "failed rows only", 404)
        return self._tiles.get((row, side), lambda: _jpeg(self._frame(row), side))

    def _frame(self, row: int) -> np.ndarray:
        path = self.path(row)
        suffix = path.suffix.lower()
        try:
            if suffix in IMAGE_EXTENSIONS:
                frame, orientation = read_oriented_image(str(path))
                return self._as_run_saw(row, frame, orientation)
            if suffix not in VIDEO_EXTENSIONS:
                raise QueryError(f"row {row}'s source {path.name} is neither an image nor a video the page "
                                 "decodes", 415)
            index = int(self.meta["frame_index"][row]) if "frame_index" in self.meta else -1
            if index < 0:
                raise QueryError(f"row {row} records no frame index of {path.name} (the video did not "
                                 "decode in the run): no frame to show", 404)
            _, frames, orientation = read_video_frames(str(path), 1, threads=1, sampling=_OneFrame(index))
        except DecodeError as e:
            raise QueryError(f"cannot decode row {row}'s source {path.name}: {_one_line(e)}", 422) from None
        if isinstance(frames[0], DecodeError):
            raise QueryError(f"cannot decode frame {index} of {path.name}: {_one_line(frames[0])}", 422)
        return self._as_run_saw(row, frames[0], orientation)

    def _as_run_saw(self, row: int, frame: np.ndarray, recorded: Orientation) -> np.ndarray:
        """The frame (HWC uint8 RGB, as stored in its file) shown upright as the run showed it:
        meta/rotation and meta/mirrored where the row records its decode (a frame without orientation
        metadata may have been turned by auto-rotate), else `recorded`, what the file's metadata says
        (an older store, or a frame the run never decoded)."""
        meta = self.meta
        if "frame_height" in meta and int(meta["frame_height"][row]) > 0:
            recorded = Orientation(int(meta["rotation"][row]), bool(meta["mirrored"][row]))
        return recorded.apply(frame)


def _jpeg(frame: np.ndarray, side: int) -> bytes:
    img = Image.fromarray(np.ascontiguousarray(frame))
    img.thumbnail((side, side), Image.BILINEAR)  # downscale only, the frame's aspect kept
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85)
    return out.getvalue()
