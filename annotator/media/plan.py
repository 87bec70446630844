"""The sampling rules applied to the files: each video's rows planned from the frame count in its
header (sampling.py holds the rules themselves, which need no media library)."""

from __future__ import annotations

import dataclasses

from .decode import DecodeError, count_frames
from .hdf5 import count_hdf5_frames
from .sampling import Sampling


def sampled(refs, sampling: Sampling):
    """SampleRefs with each video's slots re-planned by the sampling rule: its fixed count, or
    (every, all) as many as the rule takes from the frame count in the video's header. A video whose
    header cannot be read keeps one row, which fails at decode with the reason."""
    for r in refs:
        if not r.is_video:
            yield r
            continue
        if r.slot != 0:  # the adapter's other slots of this video: re-planned with slot 0
            continue
        n = sampling.slots
        if n is None:
            try:
                n = len(sampling.indices(frame_count(r))) or 1
            except (DecodeError, ValueError):
                n = 1
        base = r.sample_id.rsplit("#", 1)[0]
        for j in range(n):
            yield dataclasses.replace(r, sample_id=f"{base}#{j}", slot=j, n_slots=n)


def frame_count(r) -> int:
    """Frames of a video row's media, from its header (HDF5: the frames the decoder samples from)."""
    if r.media.get("kind"):
        return count_hdf5_frames(r.path, r.media)
    return count_frames(r.path)
