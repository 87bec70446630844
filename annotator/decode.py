"""Decoding: images with Pillow, video frames with PyAV, decoding only what the sampling needs."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from PIL import Image, UnidentifiedImageError

VIDEO_EXTENSIONS = frozenset({".avi", ".mov", ".mp4", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

# Below this many frames ahead, decoding forward is cheaper than a seek (which restarts at a keyframe).
_SEEK_GAP = 24


class DecodeError(Exception):
    """The media could not be decoded; becomes a status row, never a crash."""


def to_rgb(frame: np.ndarray) -> np.ndarray:
    """Any of HW gray, HW1, HW3 RGB, HW4 RGBA (uint8) -> HWC uint8 RGB, contiguous."""
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise DecodeError(f"expected an HxW or HxWxC image with C in 1, 3, 4; got shape {frame.shape}")
    if frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    elif frame.shape[2] == 4:
        frame = frame[:, :, :3]
    return np.ascontiguousarray(frame, dtype=np.uint8)


def read_image(path: str) -> np.ndarray:
    """Read an image file as HWC uint8 RGB (grayscale, palette, 16-bit and RGBA converted)."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("RGB", "L", "RGBA"):
                im = im.convert("RGB")
            return to_rgb(np.asarray(im))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise DecodeError(f"cannot read image: {e}") from None


def _open(path: str):
    import av  # imported lazily: image-only datasets never load FFmpeg

    try:
        container = av.open(path)
    except Exception as e:  # PyAV raises many FFmpeg error types
        raise DecodeError(f"cannot open video: {e}") from None
    if not container.streams.video:
        container.close()
        raise DecodeError("file has no video stream")
    return container


def count_frames(path: str) -> int:
    """Number of frames of a video: from the header, else by demuxing (no decoding)."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        n = 0
        for packet in container.demux(stream):
            if packet.size:
                n += 1
        return n
    except DecodeError:
        raise
    except Exception as e:
        raise DecodeError(f"cannot read video: {e}") from None
    finally:
        container.close()


def read_video_frames(path: str, n_slots: int) -> tuple[np.ndarray, list[np.ndarray | DecodeError]]:
    """Decode the n_slots frames sampled evenly over the video at `path`.

    Returns (frame indices (n_slots,) int64, one HWC uint8 RGB frame or a DecodeError per slot).
    Frames are decoded in one forward pass, seeking to the nearest keyframe when the next
    sampled frame is far ahead, so a 250-frame video sampled at 10 decodes far fewer than 250.
    """
    from .samples import even_frame_indices

    n_frames = count_frames(path)
    if n_frames == 0:
        raise DecodeError("video has no frames")
    wanted = even_frame_indices(n_frames, n_slots)
    found: dict[int, np.ndarray] = {}
    container = _open(path)
    error: DecodeError | None = None
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        tb = stream.time_base
        start = stream.start_time or 0
        can_seek = rate is not None and tb is not None

        def index_of(frame, fallback: int) -> int:
            if frame.pts is None or not can_seek:
                return fallback
            return int(round(float((frame.pts - start) * tb * Fraction(rate))))

        targets = sorted(set(int(i) for i in wanted))
        pos = -1  # index of the last decoded frame
        t = 0
        frames = None
        while t < len(targets):
            target = targets[t]
            if frames is None or (can_seek and target - pos > _SEEK_GAP):
                if frames is not None or target > _SEEK_GAP:
                    pts = start + int(round(target / float(Fraction(rate)) / float(tb)))
                    container.seek(pts, stream=stream, backward=True, any_frame=False)
                    pos = -1 if target == 0 else None  # unknown until a frame's pts tells
                frames = container.decode(stream)
            frame = next(frames, None)
            if frame is None:
                error = DecodeError(f"video ended before frame {target} (header says {n_frames} frames)")
                break
            pos = index_of(frame, 0 if pos is None else pos + 1)
            while t < len(targets) and targets[t] <= pos:
                if targets[t] == pos or targets[t] not in found:
                    found[targets[t]] = frame.to_ndarray(format="rgb24")
                t += 1
    except DecodeError as e:
        error = e
    except Exception as e:
        error = DecodeError(f"cannot decode video: {e}")
    finally:
        container.close()
    frames_out: list[np.ndarray | DecodeError] = []
    for i in wanted:
        frames_out.append(found.get(int(i), error or DecodeError(f"frame {int(i)} not decoded")))
    return wanted, frames_out
