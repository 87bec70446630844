"""HDF5 frame sources (WMCA): colour frames and the depth stream registered to them.

Two layouts, chosen by SampleRef.media["kind"]:
- "frame-groups": groups `Frame_<i>` each holding a dataset `array` (3, H, W) BGR uint8; the depth
  comes from a twin file (media["depth_file"]) with `array` (C, H, W) whose channel
  media["depth_channel"] is depth. Only frames present in both files are used.
- "stacks": datasets media["color_key"] (N, H, W, 3) BGR and optionally media["depth_key"] (N, H, W).
Key names of the public raw release are unverified, hence configurable.
"""

from __future__ import annotations

import re

import numpy as np

from .decode import DecodeError
from .sampling import planned_indices

_FRAME = re.compile(r"^Frame_(\d+)$")


def _frame_ids(f) -> dict[int, str]:
    return {int(m.group(1)): k for k in f.keys() if (m := _FRAME.match(k))}


def _bgr_chw_to_rgb(a: np.ndarray) -> np.ndarray:
    if a.ndim != 3 or a.shape[0] != 3:
        raise DecodeError(f"expected a (3, H, W) BGR array, got shape {a.shape}")
    return np.ascontiguousarray(a[::-1].transpose(1, 2, 0), dtype=np.uint8)


def count_hdf5_frames(path: str, media: dict) -> int:
    """The number of frames read_hdf5_frames samples from (frame groups: those in both files)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if media.get("kind") == "stacks":
                key = media["color_key"]
                return int(f[key].shape[0]) if key in f else 0
            ids = set(_frame_ids(f))
            if media.get("depth_file"):
                with h5py.File(media["depth_file"], "r") as fd:
                    ids &= set(_frame_ids(fd))
            return len(ids)
    except (OSError, KeyError) as e:
        raise DecodeError(f"cannot read HDF5: {e}") from None


def read_hdf5_frames(path: str, n_slots: int, media: dict, sampling=None
                     ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray | None]]:
    """(frame indices, HWC uint8 RGB frames, (H, W) float depth or None per slot): the n_slots
    frames `sampling` (annotator/media/sampling.py; None: even) takes."""
    import h5py

    try:
        if media.get("kind") == "frame-groups":
            with h5py.File(path, "r") as fc:
                color_ids = _frame_ids(fc)
                depth_file = media.get("depth_file")
                if depth_file:
                    with h5py.File(depth_file, "r") as fd:
                        depth_ids = _frame_ids(fd)
                        common = sorted(set(color_ids) & set(depth_ids))
                        if not common:
                            raise DecodeError("no frame is present in both the colour and the depth file")
                        idx = [common[i] for i in planned_indices(sampling, len(common), n_slots)]
                        ch = int(media.get("depth_channel", 1))
                        depths = [fd[depth_ids[i]]["array"][ch].astype(np.float32) for i in idx]
                else:
                    common = sorted(color_ids)
                    if not common:
                        raise DecodeError("no Frame_<i> groups in the file")
                    idx = [common[i] for i in planned_indices(sampling, len(common), n_slots)]
                    depths = [None] * len(idx)
                frames = [_bgr_chw_to_rgb(fc[color_ids[i]]["array"][()]) for i in idx]
            return np.array(idx), frames, depths
        if media.get("kind") == "stacks":
            with h5py.File(path, "r") as f:
                key = media["color_key"]
                if key not in f:
                    raise DecodeError(f"no dataset {key!r} (found: {', '.join(sorted(f.keys()))[:200]}); "
                                      "set the WMCA key names if your release differs")
                color = f[key]
                n = color.shape[0]
                if n == 0:
                    raise DecodeError("colour stream has no frames")
                idx = planned_indices(sampling, n, n_slots)
                frames = [np.ascontiguousarray(color[int(i)][..., ::-1]) for i in idx]
                dkey = media.get("depth_key")
                depths = ([f[dkey][int(i)].astype(np.float32) for i in idx] if dkey and dkey in f
                          else [None] * len(idx))
            return idx, frames, depths
        raise DecodeError(f"unknown HDF5 layout {media.get('kind')!r}")
    except DecodeError:
        raise
    except (OSError, KeyError, ValueError, IndexError) as e:
        raise DecodeError(f"cannot read HDF5: {e}") from None


def sensor_depth(depth: np.ndarray, face: np.ndarray, nearer_is_smaller: bool = True) -> np.ndarray | None:
    """A sensor depth crop normalized within the face to [0, 1], nearer = larger, 0 outside the face.

    depth: (S, S) float sensor values aligned to the crop (0 = no reading); face: bool (S, S).
    None when fewer than 16 face pixels have a reading (the caller falls back to pseudo-depth).
    """
    valid = face & (depth > 0)
    if valid.sum() < 16:
        return None
    v = depth[valid]
    lo, hi = np.percentile(v, 1), np.percentile(v, 99)  # sensor speckle must not set the range
    span = max(hi - lo, 1e-6)
    d = (hi - depth) / span if nearer_is_smaller else (depth - lo) / span
    return np.where(valid, np.clip(d, 0.0, 1.0), 0.0).astype(np.float32)
