"""Face locations shipped with datasets (used instead of the detector with --use-dataset-faces).

Formats (by SampleRef.media["faces_format"]):
- "xywh": one line per annotated frame `frame x y w h` (Replay-Attack `.face`); commas or spaces;
  frames without a line take the nearest annotated frame.
- "corners": `frame,x1,y1,x2,y2,eye1x,eye1y,eye2x,eye2y` (MSU-MFSD `.face`): the box's corners.
- "eyes": `frame,x_reye,y_reye,x_leye,y_leye` (OULU-NPU `.txt`); the box is derived from the eyes:
  side = 2 x the inter-ocular distance, centred 0.4 x that distance below the eye midpoint (about
  where BlazeFace puts its box).
- "bb224": one line `x y w h score` (CelebA-Spoof `<image stem>_BB.txt`): a box in a 224 x 224 frame,
  scaled to the image's width and height as the dataset's own client.py does (docs/datasets.md).
"""

from __future__ import annotations

import functools
import re

import numpy as np

from .detect import FaceBox

_SPLIT = re.compile(r"[,\s]+")
# Formats whose box is given in a square reference frame (its side), not in the frame's own pixels.
REFERENCE_FRAMES = {"bb224": 224}


@functools.lru_cache(maxsize=64)
def read_face_file(path: str, fmt: str) -> dict[int, FaceBox]:
    """frame index -> FaceBox (XYXY frame pixels); lines that do not parse or have a zero box are skipped."""
    out: dict[int, FaceBox] = {}
    if fmt == "bb224":
        box = _bb224(path)
        return {0: box} if box is not None else {}
    with open(path, errors="replace") as f:
        for line in f:
            parts = [p for p in _SPLIT.split(line.strip()) if p]
            try:
                vals = [float(p) for p in parts[:5]]
            except ValueError:
                continue
            if len(vals) < 5:
                continue
            frame = int(vals[0])
            if fmt == "eyes":
                r, l = np.array(vals[1:3]), np.array(vals[3:5])
                e = float(np.linalg.norm(l - r))
                if e <= 0:
                    continue
                c = (r + l) / 2 + np.array([0.0, 0.4 * e])
                out[frame] = FaceBox((c[0] - e, c[1] - e, c[0] + e, c[1] + e), 1.0)
            elif fmt == "corners":
                x0, y0, x1, y1 = vals[1:5]
                if x1 > x0 and y1 > y0:
                    out[frame] = FaceBox((x0, y0, x1, y1), 1.0)
            else:
                x, y, w, h = vals[1:5]
                if w > 0 and h > 0:
                    out[frame] = FaceBox((x, y, x + w, y + h), 1.0)
    return out


def box_for_frame(path: str, fmt: str, frame_index: int, frame_hw: tuple[int, int] = (0, 0)) -> FaceBox | None:
    """The annotated box of frame_index (or of the nearest annotated frame); None if the file has none.
    frame_hw: the frame's (height, width), which a format of REFERENCE_FRAMES needs to scale its box."""
    boxes = read_face_file(path, fmt)
    if not boxes:
        return None
    if frame_index in boxes:
        box = boxes[frame_index]
    else:
        keys = np.fromiter(boxes, dtype=np.int64)
        box = boxes[int(keys[np.argmin(np.abs(keys - max(frame_index, 0)))])]
    side = REFERENCE_FRAMES.get(fmt)
    if side is None:
        return box
    h, w = frame_hw
    if h <= 0 or w <= 0:
        raise ValueError(f"{fmt} face boxes are given in a {side} x {side} frame: scaling one needs the frame's size")
    # as CelebA-Spoof's client.py: each of x, y, w, h truncated to whole pixels after scaling
    x, y, bw, bh = box.box[0], box.box[1], box.box[2] - box.box[0], box.box[3] - box.box[1]
    x, bw = int(x * (w / side)), int(bw * (w / side))
    y, bh = int(y * (h / side)), int(bh * (h / side))
    return FaceBox((x, y, x + bw, y + bh), box.score)


def _bb224_values(line: str) -> tuple[int, int, int, int, float] | None:
    """x, y, w, h (whole numbers of the 224 frame, truncated as client.py reads them) and score of a
    `_BB.txt` line; None unless it holds exactly those five numbers with w, h > 0."""
    parts = line.split()
    if len(parts) != 5:
        return None
    try:
        x, y, w, h = (int(float(p)) for p in parts[:4])
        score = float(parts[4])
    except (ValueError, OverflowError):  # not a number; inf or nan as a coordinate
        return None
    return (x, y, w, h, score) if w > 0 and h > 0 and np.isfinite(score) else None


def _first_line(path: str) -> str:
    with open(path, errors="replace") as f:
        return next((line.strip() for line in f if line.strip()), "")


def _bb224(path: str) -> FaceBox | None:
    values = _bb224_values(_first_line(path))
    if values is None:
        return None
    x, y, w, h, score = values
    return FaceBox((x, y, x + w, y + h), min(max(score, 0.0), 1.0))  # FaceBox scores lie in [0, 1]


def face_file_problem(path: str, fmt: str) -> str:
    """Why a sample's face file gives no box ("" when nothing is wrong): missing or unreadable; for
    "bb224", a first line that is not `x y w h score` with w, h > 0. Other formats are not parsed here."""
    try:
        line = _first_line(path)
    except OSError as e:
        return f"face file {path}: {e.strerror or e}"
    if fmt == "bb224" and _bb224_values(line) is None:
        shown = line if len(line) <= 60 else line[:57] + "..."
        return (f"face file {path}: expected one line 'x y w h score' (a box in a 224 x 224 frame, w and h > 0), "
                f"got {shown!r}")
    return ""
