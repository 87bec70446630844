"""Where the face is in a frame: the dataset's own face files, the detector, the face followed from the previous sampled frame or found behind an instrument; the frame's upright turn; the crop around the landmarks."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from annotator.config import AnnotateConfig
from annotator.core.samples import SampleRef, Status
from annotator.face.annotations import REFERENCE_FRAMES, box_for_frame
from annotator.face.detect import FaceBox
from annotator.face.landmarks import square_crop_matrix
from annotator.face.layouts import layout_of
from annotator.face.track import TRACK_CONTEXT, box_from_landmarks, follows
from annotator.media.decode import UPRIGHT, Orientation, rotate


def dataset_faces(ref: SampleRef, frame_index: int, orientation: Orientation = UPRIGHT,
                  stored_hw: tuple[int, int] = (0, 0)) -> tuple[list, str] | None:
    """([the dataset's face box], "dataset") when the sample ships face locations, else None.

    The files give boxes in the stored frame's pixels; a frame shown upright by `orientation`
    (stored size stored_hw) gets its box mirrored and turned with it. A box in a reference frame
    (CelebA-Spoof's 224 x 224) is scaled to the frame as its dataset's own reader shows it: OpenCV's
    imread applies the EXIF turn first, so that box is already upright (docs/datasets.md)."""
    path = ref.media.get("faces")
    if not path:
        return None
    fmt = ref.media.get("faces_format", "xywh")
    upright = fmt in REFERENCE_FRAMES
    shown_hw = stored_hw if orientation.rotation % 180 == 0 else stored_hw[::-1]
    try:
        box = box_for_frame(path, fmt, frame_index, shown_hw if upright else stored_hw)
    except OSError:
        return None
    if box is None:
        return None
    return [box if upright else orient_box(box, orientation, *stored_hw)], "dataset"


def orient_box(face: FaceBox, orientation: Orientation, h: int, w: int) -> FaceBox:
    """An XYXY box of an h x w stored frame, in the pixels of that frame shown upright by orientation."""
    return FaceBox(orientation.box(face.box, h, w), face.score)


def output_crop(landmarks: np.ndarray, box_scale: float, size: int) -> np.ndarray:
    """2x3 frame->crop affine of the square around the landmarks' extent (with ibug-68's derived
    forehead: the crops of both layouts frame the same face), times box_scale."""
    xy = layout_of(landmarks).points(landmarks[:, :2])
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    side = box_scale * float(max(hi - lo))
    return square_crop_matrix(tuple((lo + hi) / 2), side, size)


def frame_to_crop(crop: np.ndarray, orientation: Orientation, stored_hw: tuple[int, int]) -> np.ndarray:
    """The row's `transform` (docs/store.md, "Mapping a crop back"): the 2x3 affine taking a pixel of
    the frame as stored (stored_hw: its height and width) to the crop's pixels; `crop` is the upright
    frame -> crop affine the crop was cut with (output_crop), composed after the orientation's exact
    stored -> upright map."""
    upright = np.vstack([orientation.matrix(*stored_hw), [0.0, 0.0, 1.0]])
    return (np.vstack([np.asarray(crop, dtype=np.float64), [0.0, 0.0, 1.0]]) @ upright)[:2]


@dataclass
class Located:
    """Where a frame's face is: (P, 3) landmarks in frame pixels and the box they were found in
    (both None when `status` is not OK; landmarks also None while a batched landmarker has yet to
    run), how many faces the detector saw, and where the box came from (detector / dataset / track)."""

    landmarks: np.ndarray | None
    face: FaceBox | None
    n_faces: int
    source: str
    status: Status = Status.OK
    error: str = ""


def locate(frame: np.ndarray, ref: SampleRef, frame_index: int, cfg: AnnotateConfig, detector, landmarker,
           previous: Located | None, seconds: dict[str, float], orientation: Orientation = UPRIGHT,
           fallback=None) -> Located:
    """The face of a frame (HWC uint8 RGB, already shown upright by `orientation`: mirrored, then
    turned), found with the config's detector and landmarker.

    A video frame first follows the face of the previous sampled frame of its video (no detector
    run); the detector (or the dataset's box) is used for the first frame and when following fails.
    landmarker None: only the box (a batched landmarker runs later over the shard's boxes).
    fallback: where the detector finds no face, what finds the face behind an instrument (its
    landmarks are FaceMesh's 478, kept as they are for a FaceMesh store; a batched landmarker gets its box).
    """
    if previous is not None and cfg.track and not cfg.use_dataset_faces:
        t = time.perf_counter()
        box = box_from_landmarks(previous.landmarks, previous.face.score)
        lm = landmarker(frame, box, context=TRACK_CONTEXT)
        seconds["landmarks"] += time.perf_counter() - t
        if lm is not None and follows(lm, box):
            return Located(lm, box, previous.n_faces, "track")
    t = time.perf_counter()
    found = None
    if cfg.use_dataset_faces:
        stored_hw = frame.shape[:2] if orientation.rotation % 180 == 0 else frame.shape[1::-1]
        found = dataset_faces(ref, frame_index, orientation, stored_hw)
    faces, source = found if found is not None else (detector(frame), "detector")
    t2 = time.perf_counter()
    seconds["detect"] += t2 - t

    def failed(status: Status, error: str) -> Located:
        return Located(None, None, len(faces), source, status, error)

    fallback = fallback if source == "detector" else None  # a dataset's own box is not second-guessed
    if not faces:
        behind = _behind(frame, cfg, landmarker, fallback, seconds)
        return behind if behind is not None else failed(Status.NO_FACE, "no face detected")
    side = max(faces[0].box[2] - faces[0].box[0], faces[0].box[3] - faces[0].box[1])
    if side < cfg.min_face:
        return failed(Status.TOO_SMALL, f"largest face is {side:.0f} px, smaller than {cfg.min_face} px")
    if landmarker is None:
        return Located(None, faces[0], len(faces), source)
    lm = landmarker(frame, faces[0])
    seconds["landmarks"] += time.perf_counter() - t2
    if lm is None:  # FaceMesh's own detection fails where an instrument hides the eyes
        behind = _behind(frame, cfg, landmarker, fallback, seconds)
        return behind if behind is not None else failed(Status.NO_LANDMARKS, "no landmarks found on the detected face")
    return Located(lm, faces[0], len(faces), source)


def _behind(frame: np.ndarray, cfg: AnnotateConfig, landmarker, fallback, seconds: dict[str, float]) -> Located | None:
    """The face the fallback finds (annotator/face/behind.py), or None: its FaceMesh points as they
    are for a FaceMesh store, its box for any other landmarker."""
    if fallback is None:
        return None
    t = time.perf_counter()
    hit = fallback(frame)
    seconds["detect"] += time.perf_counter() - t
    if hit is None:
        return None
    lm, box = hit
    if landmarker is None or cfg.landmark_layout.n_points == len(lm):
        return Located(None if landmarker is None else lm, box, 1, fallback.source)
    lm = landmarker(frame, box)
    return None if lm is None else Located(lm, box, 1, fallback.source)


def upright_turn(landmarks: np.ndarray) -> int:
    """Clockwise degrees (0/90/180/270) that turn the face of these frame-pixel landmarks upright:
    the chin-to-forehead direction snapped to the nearest quarter turn."""
    lay = layout_of(landmarks)
    p = lay.points(landmarks[:, :2])
    dx, dy = p[lay.forehead_top] - p[lay.chin]
    tilt = np.degrees(np.arctan2(dx, -dy))  # 0: forehead straight up; 90: pointing right
    return int(-round(tilt / 90.0)) % 4 * 90


def settle_rotation(frame: np.ndarray, ref: SampleRef, frame_index: int, cfg: AnnotateConfig, detector,
                    landmarker, seconds: dict[str, float], found: Located, fallback=None
                    ) -> tuple[int, np.ndarray, Located]:
    """(clockwise degrees, the frame turned by them, face) for the first frame of a sample stored
    without orientation metadata (a video's display rotation, an image's EXIF tag).

    Phone recordings are often stored sideways. A face found lying on its side is turned upright
    (the detector and FaceMesh find faces at any roll, but the crops must be upright); a frame with
    no face is tried at 90/180/270 degrees, and the first turn that shows an upright face is kept.
    (0, frame, found) when nothing better turns up."""
    if found.status == Status.OK:
        turns = [upright_turn(found.landmarks)]
        if turns == [0]:
            return 0, frame, found
    elif found.status == Status.NO_FACE:
        turns = [90, 180, 270]
    else:
        return 0, frame, found
    for degrees in turns:
        turned = rotate(frame, degrees)
        face = locate(turned, ref, frame_index, cfg, detector, landmarker, None, seconds, Orientation(degrees),
                      fallback)
        if face.status == Status.OK and upright_turn(face.landmarks) == 0:
            return degrees, turned, face
    return 0, frame, found
