"""A shard's frames: each video or HDF5 recording opened once for all of its rows."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from annotator.core.samples import SampleRef
from annotator.media.decode import UPRIGHT, DecodeError, Orientation, read_oriented_image, read_video_frames
from annotator.media.hdf5 import read_hdf5_frames


def load_frames(refs: list[SampleRef], decode_threads: int = 0, sampling=None
                ) -> list[tuple[int, np.ndarray | DecodeError, np.ndarray | None, Orientation]]:
    """(frame index, HWC uint8 RGB frame or DecodeError, sensor depth (H, W) or None, the file's own
    Orientation: a video's display rotation, an image's EXIF turn and mirror) per ref; frames as
    stored (not turned: the caller applies the Orientation, or the one it settles on).

    Each video or HDF5 recording is opened once for all of its rows in the shard.
    """
    out: list = [None] * len(refs)
    videos: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, r in enumerate(refs):
        if r.is_video:
            videos[(r.path, r.n_slots)].append(i)
        else:
            try:
                frame, orientation = read_oriented_image(r.path)
                out[i] = (-1, frame, None, orientation)
            except DecodeError as e:
                out[i] = (-1, e, None, UPRIGHT)
    for (path, n_slots), rows in videos.items():
        media = refs[rows[0]].media
        try:
            if media.get("kind"):
                indices, frames, depths = read_hdf5_frames(path, n_slots, media, sampling)
                orientation = UPRIGHT
            else:
                indices, frames, orientation = read_video_frames(path, n_slots, decode_threads, sampling)
                depths = [None] * len(frames)
        except DecodeError as e:
            for i in rows:
                out[i] = (-1, e, None, UPRIGHT)
            continue
        for i in rows:
            s = refs[i].slot
            out[i] = (int(indices[s]), frames[s], depths[s], orientation)
    return out
