"""A shard's frames: each video or HDF5 recording opened once for all of its rows."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from annotator.core.samples import SampleRef
from annotator.media.decode import DecodeError, read_image, read_video_frames
from annotator.media.hdf5 import read_hdf5_frames


def load_frames(refs: list[SampleRef], decode_threads: int = 0, sampling=None
                ) -> list[tuple[int, np.ndarray | DecodeError, np.ndarray | None, int]]:
    """(frame index, HWC uint8 RGB frame or DecodeError, sensor depth (H, W) or None, the container's
    clockwise display rotation) per ref; frames as stored (not rotated).

    Each video or HDF5 recording is opened once for all of its rows in the shard.
    """
    out: list = [None] * len(refs)
    videos: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, r in enumerate(refs):
        if r.is_video:
            videos[(r.path, r.n_slots)].append(i)
        else:
            try:
                out[i] = (-1, read_image(r.path), None, 0)
            except DecodeError as e:
                out[i] = (-1, e, None, 0)
    for (path, n_slots), rows in videos.items():
        media = refs[rows[0]].media
        try:
            if media.get("kind"):
                indices, frames, depths = read_hdf5_frames(path, n_slots, media, sampling)
                rotation = 0
            else:
                indices, frames, rotation = read_video_frames(path, n_slots, decode_threads, sampling)
                depths = [None] * len(frames)
        except DecodeError as e:
            for i in rows:
                out[i] = (-1, e, None, 0)
            continue
        for i in rows:
            s = refs[i].slot
            out[i] = (int(indices[s]), frames[s], depths[s], rotation)
    return out
