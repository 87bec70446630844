"""Decoding: images with Pillow, video frames with PyAV, decoding only what the sampling needs."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .sampling import planned_indices

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


def read_video_frames(path: str, n_slots: int, threads: int = 0, sampling=None
                      ) -> tuple[np.ndarray, list[np.ndarray | DecodeError], int]:
    """Decode the n_slots frames that `sampling` (annotator/media/sampling.py; None: even) takes from the
    video at `path`.

    Returns (frame indices (n_slots,) int64, one HWC uint8 RGB frame or a DecodeError per slot, the
    container's display rotation: degrees clockwise (0/90/180/270) that make the stored frames upright,
    the convention of FFmpeg's `rotate` tag; frames are returned as stored).
    Only what the sampling needs is decoded: when the next sampled frame is far ahead the demuxer
    seeks to the keyframe before it, and while catching up to a sampled frame the decoder skips
    non-reference frames (nothing else depends on them), so a 250-frame video sampled at 10
    decodes a fraction of its frames. Frames are identified by their timestamps. threads: FFmpeg
    slice threads (0 = FFmpeg's choice; a worker process given one core passes 1).
    """

    n_frames = count_frames(path)
    if n_frames == 0:
        raise DecodeError("video has no frames")
    try:
        wanted = planned_indices(sampling, n_frames, n_slots)
    except ValueError as e:
        raise DecodeError(str(e)) from None
    targets = sorted(set(int(i) for i in wanted))
    container = _open(path)
    found: dict[int, np.ndarray] = {}
    seen: dict[str, int] = {}  # the decoders note the first decoded frame's display rotation here
    error: DecodeError | None = None
    try:
        stream = container.streams.video[0]
        # Slice threads only: frame threading makes every seek and skipped frame cost a pipeline flush.
        stream.thread_type = "SLICE"
        stream.thread_count = threads
        rate = stream.average_rate or stream.guessed_rate
        if rate is None or stream.time_base is None:
            found = _decode_sequential(container, stream, set(targets), seen)
        else:
            found = _decode_by_timestamp(container, stream, targets, Fraction(rate), seen)
    except _NoTimestamps:
        container.close()
        container = _open(path)
        stream = container.streams.video[0]
        found = _decode_sequential(container, stream, set(targets), seen)
    except DecodeError as e:
        error = e
    except Exception as e:  # FFmpeg errors on corrupt data come in many types
        error = DecodeError(f"cannot decode video: {e}")
    finally:
        container.close()
    if error is None and len(found) < len(targets):
        missing = min(set(targets) - set(found))
        error = DecodeError(f"video ended before frame {missing} (header says {n_frames} frames)")
    return wanted, [found.get(int(i), error) for i in wanted], clockwise(seen.get("rotation", 0))


def clockwise(counterclockwise: float) -> int:
    """A display matrix's counter-clockwise angle (PyAV's VideoFrame.rotation) as the clockwise
    rotation, snapped to 0/90/180/270, that makes the stored frame upright."""
    return int(round(-counterclockwise / 90.0)) % 4 * 90


def rotate(frame: np.ndarray | None, degrees: int) -> np.ndarray | None:
    """frame (HW or HWC) rotated clockwise by 0/90/180/270 degrees, contiguous."""
    if frame is None or degrees % 360 == 0:
        return frame
    return np.ascontiguousarray(np.rot90(frame, k=-(degrees // 90)))


class _NoTimestamps(Exception):
    pass


def to_rgb_array(frame) -> np.ndarray:
    """A decoded av.VideoFrame as HWC uint8 RGB. Limited-range 4:2:0 frames (nearly all video)
    convert with OpenCV's BT.601, as swscale does by default but 3x faster; others go through swscale."""
    if (frame.format.name == "yuv420p" and getattr(frame, "color_range", 0) != 2  # 2: full (JPEG) range
            and frame.width % 2 == 0 and frame.height % 2 == 0):
        planes = frame.to_ndarray()  # (H * 3 / 2, W): Y, then U and V
        if planes.shape == (frame.height * 3 // 2, frame.width):
            return cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420)
    return frame.to_ndarray(format="rgb24")


def _decode_by_timestamp(container, stream, targets: list[int], rate: Fraction, seen: dict) -> dict[int, np.ndarray]:
    tb, start = stream.time_base, stream.start_time or 0
    cc = stream.codec_context
    wanted = set(targets)

    def index(pts: int) -> int:
        return int(round(float((pts - start) * tb * rate)))

    found: dict[int, np.ndarray] = {}
    last = -1  # index of the latest frame decoded
    packets = container.demux(stream)
    for target in targets:
        if target in found:
            continue
        if target - last > _SEEK_GAP:
            container.seek(start + int(round(target / rate / tb)), stream=stream, backward=True, any_frame=False)
            packets = container.demux(stream)
        for packet in packets:
            needed = packet.pts is None or index(packet.pts) in wanted
            cc.skip_frame = "DEFAULT" if needed else "NONREF"
            for frame in packet.decode():
                if frame.pts is None:
                    raise _NoTimestamps
                i = index(frame.pts)
                last = max(last, i)
                seen.setdefault("rotation", frame.rotation)
                if i in wanted and i not in found:
                    found[i] = to_rgb_array(frame)
            if target in found or last > target:
                break
    return found


def _decode_sequential(container, stream, wanted: set[int], seen: dict) -> dict[int, np.ndarray]:
    found = {}
    for i, frame in enumerate(container.decode(stream)):
        seen.setdefault("rotation", frame.rotation)
        if i in wanted:
            found[i] = to_rgb_array(frame)
        if len(found) == len(wanted):
            break
    return found
