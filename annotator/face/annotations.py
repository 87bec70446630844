"""Face locations shipped with datasets (used instead of the detector with --use-dataset-faces).

Formats (by SampleRef.media["faces_format"]):
- "xywh": one line per annotated frame `frame x y w h` (Replay-Attack `.face`); commas or spaces;
  frames without a line take the nearest annotated frame.
- "corners": `frame,x1,y1,x2,y2,eye1x,eye1y,eye2x,eye2y` (MSU-MFSD `.face`): the box's corners.
- "eyes": `frame,x_reye,y_reye,x_leye,y_leye` (OULU-NPU `.txt`); the box is derived from the eyes:
  side = 2 x the inter-ocular distance, centred 0.4 x that distance below the eye midpoint (about
  where BlazeFace puts its box).
"""

from __future__ import annotations

import functools
import re

import numpy as np

from .detect import FaceBox

_SPLIT = re.compile(r"[,\s]+")


@functools.lru_cache(maxsize=64)
def read_face_file(path: str, fmt: str) -> dict[int, FaceBox]:
    """frame index -> FaceBox (XYXY frame pixels); lines that do not parse or have a zero box are skipped."""
    out: dict[int, FaceBox] = {}
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


def box_for_frame(path: str, fmt: str, frame_index: int) -> FaceBox | None:
    """The annotated box of frame_index (or of the nearest annotated frame); None if the file has none."""
    boxes = read_face_file(path, fmt)
    if not boxes:
        return None
    if frame_index in boxes:
        return boxes[frame_index]
    keys = np.fromiter(boxes, dtype=np.int64)
    return boxes[int(keys[np.argmin(np.abs(keys - max(frame_index, 0)))])]
