"""Decoding: images with Pillow, video frames with PyAV, decoding only what the sampling needs.

Frames are returned as stored in the file, with how the file says to show them: a video's display
matrix (its rotation) and an image's EXIF Orientation tag (a turn, and for four of its eight values a
mirror) are returned beside the pixels as an `Orientation`, never applied here, so that the caller can
record the stored frame -> upright frame transform (docs/store.md, "Mapping a crop back"). Pillow
never applies the EXIF tag by itself (OpenCV's imread would, unless IMREAD_IGNORE_ORIENTATION).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Orientation:
    """How a frame as stored becomes upright: mirrored left-right first (when `mirrored`), then turned
    clockwise by `rotation` degrees (0/90/180/270). meta/rotation and meta/mirrored record it."""

    rotation: int = 0
    mirrored: bool = False

    def __post_init__(self):
        if self.rotation not in (0, 90, 180, 270):
            raise ValueError(f"rotation must be 0, 90, 180 or 270 degrees clockwise, got {self.rotation!r}")

    @property
    def is_identity(self) -> bool:
        """The stored frame is already upright: nothing to turn or mirror."""
        return self.rotation == 0 and not self.mirrored

    def apply(self, frame: np.ndarray | None) -> np.ndarray | None:
        """frame (HW or HWC) as shown upright: mirrored, then turned; contiguous (the same array when
        there is nothing to do)."""
        if frame is None or self.is_identity:
            return frame
        if self.mirrored:
            frame = frame[:, ::-1]
        return np.ascontiguousarray(rotate(frame, self.rotation))

    def matrix(self, height: int, width: int) -> np.ndarray:
        """2x3 float64 affine taking a pixel (x, y, 1) of the stored height x width frame to the same
        pixel of the upright frame; integer coordinates are pixel centres (cv2.warpAffine's
        convention), so the map is exact on every pixel: apply(frame)[y', x'] == frame[y, x]."""
        h, w = int(height), int(width)
        mirror = np.array([[-1.0, 0.0, w - 1], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) if self.mirrored else np.eye(3)
        turn = {0: [[1, 0, 0], [0, 1, 0]], 90: [[0, -1, h - 1], [1, 0, 0]],
                180: [[-1, 0, w - 1], [0, -1, h - 1]], 270: [[0, 1, 0], [-1, 0, w - 1]]}[self.rotation]
        return (np.vstack([np.array(turn, dtype=np.float64), [0.0, 0.0, 1.0]]) @ mirror)[:2]

    def box(self, xyxy, height: int, width: int) -> tuple[float, float, float, float]:
        """An XYXY box of the stored height x width frame in pixel edges ((0, 0, width, height) is
        the whole frame), in the pixels of the upright frame: its corners through matrix(), which maps
        pixel centres, so half a pixel off and back on."""
        m = self.matrix(height, width)
        corners = np.asarray(xyxy, dtype=np.float64).reshape(2, 2) - 0.5
        mapped = corners @ m[:, :2].T + m[:, 2] + 0.5
        (x0, y0), (x1, y1) = mapped.min(axis=0), mapped.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)


UPRIGHT = Orientation()

# EXIF Orientation (tag 0x0112) -> the Orientation that shows the stored pixels upright, as Pillow's
# ImageOps.exif_transpose does: 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE,
# 6 ROTATE_270 (anticlockwise, so 90 clockwise), 7 TRANSVERSE, 8 ROTATE_90; 2, 4, 5 and 7 are mirrored.
EXIF_ORIENTATIONS = {1: UPRIGHT, 2: Orientation(0, True), 3: Orientation(180), 4: Orientation(180, True),
                     5: Orientation(270, True), 6: Orientation(90), 7: Orientation(90, True), 8: Orientation(270)}
EXIF_ORIENTATION_TAG = 0x0112
_QUARTER_TURNS = tuple(EXIF_ORIENTATIONS.values())  # the eight ways a frame lies: four turns, each mirrored or not


def read_image(path: str) -> np.ndarray:
    """Read an image file as HWC uint8 RGB (grayscale, palette, 16-bit and RGBA converted), its pixels
    as stored: the EXIF orientation is not applied (read_oriented_image returns it)."""
    return read_oriented_image(path)[0]


def read_oriented_image(path: str) -> tuple[np.ndarray, Orientation]:
    """(the image's pixels as stored, HWC uint8 RGB; the Orientation its EXIF tag asks for), from one
    decode. No tag, or a value outside 1..8 (which Pillow's exif_transpose ignores too): UPRIGHT."""
    try:
        with Image.open(path) as im:
            im.load()
            orientation = EXIF_ORIENTATIONS.get(_exif_orientation(im), UPRIGHT)
            if im.mode not in ("RGB", "L", "RGBA"):
                im = im.convert("RGB")
            return to_rgb(np.asarray(im)), orientation
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise DecodeError(f"cannot read image: {e}") from None


def _exif_orientation(im: Image.Image) -> int:
    """The EXIF Orientation value of an open image; 1 (as stored) when it has none."""
    try:
        value = im.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception as e:  # a damaged EXIF block raises whatever its parser meets
        raise DecodeError(f"cannot read the image's EXIF metadata: {type(e).__name__}: {e}") from None
    return value if isinstance(value, int) else 1


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
                      ) -> tuple[np.ndarray, list[np.ndarray | DecodeError], Orientation]:
    """Decode the n_slots frames that `sampling` (annotator/media/sampling.py; None: even) takes from the
    video at `path`.

    Returns (frame indices (n_slots,) int64, one HWC uint8 RGB frame or a DecodeError per slot, the
    Orientation its display matrix asks for (display_orientation); frames are returned as stored).
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
    seen: dict[str, Orientation] = {}  # the decoders note the first decoded frame's orientation here
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
    return wanted, [found.get(int(i), error) for i in wanted], seen.get("orientation", UPRIGHT)


def display_orientation(frame) -> Orientation:
    """How a decoded av.VideoFrame is shown upright by its display matrix, as FFmpeg's own tools
    autorotate it (docs/datasets.md, "Sideways and mirrored media").

    The matrix (FFmpeg side data: nine int32, a b u / c d v / x y w, a..d in 16.16 fixed point) maps
    a stored pixel (x, y) to (a x + c y, b x + d y) plus a shift: a quarter turn, with or without a
    mirror, is the Orientation whose matrix() has that linear part. Any other angle snaps to the
    nearest quarter turn, unmirrored. UPRIGHT without a matrix."""
    try:
        from av.sidedata.sidedata import Type

        data = frame.side_data.get(Type.DISPLAYMATRIX)
        raw = bytes(data) if data is not None else b""
    except (ImportError, AttributeError, TypeError, ValueError):  # a PyAV without side-data access: its angle only
        raw = b""
    if len(raw) != 36:
        return Orientation(clockwise(frame.rotation)) if getattr(frame, "rotation", 0) else UPRIGHT
    a, b, _, c, d, *_ = struct.unpack("=9i", raw)
    linear = np.array([[a, c], [b, d]], dtype=np.float64)
    scale = np.abs(linear).max()
    if scale > 0:
        signs = np.where(np.abs(linear) > 1e-3 * scale, np.sign(linear), 0.0)
        for orientation in _QUARTER_TURNS:
            if np.array_equal(orientation.matrix(1, 1)[:, :2], signs):
                return orientation
    return Orientation(clockwise(frame.rotation))


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
                if "orientation" not in seen:
                    seen["orientation"] = display_orientation(frame)
                if i in wanted and i not in found:
                    found[i] = to_rgb_array(frame)
            if target in found or last > target:
                break
    return found


def _decode_sequential(container, stream, wanted: set[int], seen: dict) -> dict[int, np.ndarray]:
    found = {}
    for i, frame in enumerate(container.decode(stream)):
        if "orientation" not in seen:
            seen["orientation"] = display_orientation(frame)
        if i in wanted:
            found[i] = to_rgb_array(frame)
        if len(found) == len(wanted):
            break
    return found
