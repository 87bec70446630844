"""Annotate one shard: sample references in, the store's arrays for those rows out (plain numpy).

This is the unit of work of the pipeline. A sample that cannot be annotated becomes a row with
a non-zero status and an error text; only programming errors escape.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from annotator.config import AnnotateConfig
from annotator.media.decode import DecodeError, read_image, read_video_frames, rotate
from annotator.media.hdf5 import read_hdf5_frames, sensor_depth
from annotator.label import render_depth
from annotator.face import DETECTORS, LANDMARKERS
from annotator.face.behind import FACE_FALLBACKS
from annotator.face.detect import FaceBox
from annotator.face.landmarks import square_crop_matrix, warp_crop
from annotator.face.track import TRACK_CONTEXT, box_from_landmarks, follows
from annotator.face.annotations import box_for_frame
from annotator.face.layouts import layout_of
from annotator.face.regions import FACE_REGIONS
from annotator.label import Policy, depth_to_uint8, pyramid
from annotator.core.samples import SampleRef, Status
from annotator.media.sampling import parse as parse_sampling
from annotator.store.schema import empty_meta, empty_rows
from annotator.core.tuning import TUNING
from annotator.segment import SEGMENTERS, FaceItem, Segmenter

log = logging.getLogger(__name__)

MIN_IMAGE_SIDE = TUNING.min_image_side
STAGES = ("decode", "detect", "landmarks", "segment", "depth", "fuse")


@dataclass
class ShardResult:
    """Rows of one shard: arrays keyed by store path ("image", "pyramid/32", ...) and meta columns."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, list]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> np.ndarray:
        return np.asarray(self.meta["status"], dtype=np.int8)


@dataclass(frozen=True)
class Models:
    """What a shard is annotated with. Built by the caller (once per worker process: models load in
    seconds, shards take less) and passed in; the core looks nothing up."""

    detector: Callable
    landmarker: Callable
    segmenter: Segmenter
    policy: Policy
    decode_threads: int = 0  # FFmpeg slice threads per video (0 = FFmpeg's choice)
    checker: object = None  # --landmark-check: the other landmarker (FAN beside FaceMesh, or FaceMesh beside FAN)
    fallback: Callable | None = None  # finds the face where the detector does not (annotator/face/behind.py)


def build_landmarker(cfg: AnnotateConfig):
    """The config's landmarker from its checked options, with the run-time settings it takes (--device)."""
    return LANDMARKERS.describe(cfg.landmarker).create(cfg.landmarker_options, cfg.runtime)


def build_checker(cfg: AnnotateConfig):
    """--landmark-check: the landmarker that checks the config's (its `check_with`), or None."""
    if not cfg.landmark_check:
        return None
    checker = LANDMARKERS.describe(cfg.landmark_checker)
    return checker.create(cfg.landmark_check_options, cfg.runtime)


def build_models(cfg: AnnotateConfig, decode_threads: int = 0) -> Models:
    """The config's detector, landmarker, segmenter (from their registries) and policy."""
    cfg = cfg.with_defaults()
    segmenter = SEGMENTERS.describe(cfg.segmenter).create(cfg.segmenter_options, cfg.runtime)
    return Models(DETECTORS.create(cfg.detector), build_landmarker(cfg), segmenter, Policy.from_table(cfg.policy),
                  decode_threads, build_checker(cfg), build_fallback(cfg))


def build_fallback(cfg: AnnotateConfig):
    """What finds the face where the detector does not (annotator/face/behind.py), or None."""
    name = cfg.with_defaults().face_fallback
    return FACE_FALLBACKS.create(name) if name else None


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


def dataset_faces(ref: SampleRef, frame_index: int, rotation: int = 0,
                  stored_hw: tuple[int, int] = (0, 0)) -> tuple[list, str] | None:
    """([the dataset's face box], "dataset") when the sample ships face locations, else None.

    The files give boxes in the stored frame's pixels; a frame rotated clockwise by `rotation`
    degrees (stored size stored_hw) gets its box rotated with it."""
    path = ref.media.get("faces")
    if not path:
        return None
    try:
        box = box_for_frame(path, ref.media.get("faces_format", "xywh"), frame_index)
    except OSError:
        return None
    if box is None:
        return None
    return [rotate_box(box, rotation, *stored_hw)], "dataset"


def rotate_box(face: FaceBox, degrees: int, h: int, w: int) -> FaceBox:
    """An XYXY box of an h x w frame, in the pixels of that frame rotated clockwise by degrees."""
    x0, y0, x1, y1 = face.box
    corners = {0: (x0, y0, x1, y1), 90: (h - y1, x0, h - y0, x1), 180: (w - x1, h - y1, w - x0, h - y0),
               270: (y0, w - x1, y1, w - x0)}[degrees % 360]
    return FaceBox(corners, face.score)


def output_crop(landmarks: np.ndarray, box_scale: float, size: int) -> np.ndarray:
    """2x3 frame->crop affine of the square around the landmarks' extent (with ibug-68's derived
    forehead: the crops of both layouts frame the same face), times box_scale."""
    xy = layout_of(landmarks).points(landmarks[:, :2])
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    side = box_scale * float(max(hi - lo))
    return square_crop_matrix(tuple((lo + hi) / 2), side, size)


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
           previous: Located | None, seconds: dict[str, float], rotation: int = 0, fallback=None) -> Located:
    """The face of a frame (HWC uint8 RGB, already rotated clockwise by `rotation` degrees), found
    with the config's detector and landmarker.

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
        stored_hw = frame.shape[:2] if rotation % 180 == 0 else frame.shape[1::-1]
        found = dataset_faces(ref, frame_index, rotation, stored_hw)
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
    without rotation metadata.

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
        face = locate(turned, ref, frame_index, cfg, detector, landmarker, None, seconds, degrees, fallback)
        if face.status == Status.OK and upright_turn(face.landmarks) == 0:
            return degrees, turned, face
    return 0, frame, found


@dataclass
class _Rows:
    """The shard being built: its arrays and meta columns, stage timings, and the faces to segment."""

    refs: list[SampleRef]
    arrays: dict[str, np.ndarray]
    meta: dict[str, list]
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    items: list[FaceItem] = field(default_factory=list)  # faces to segment, one per row in `faced`
    faced: list[int] = field(default_factory=list)
    sensor: dict[int, np.ndarray] = field(default_factory=dict)  # row -> sensor depth cropped like the image
    boxes: dict[int, tuple] = field(default_factory=dict)  # row -> its face box, XYXY pixels of the upright frame

    def fail(self, i: int, status: Status, error: str) -> None:
        self.meta["status"][i] = int(status)
        self.meta["error"][i] = error
        log.info("%s: %s (%s)", self.refs[i].sample_id, status.name.lower(), error)


def new_meta(refs: list[SampleRef]) -> dict[str, list]:
    """The meta columns of the refs' rows before any processing: what the adapter knows."""
    meta = empty_meta(len(refs))
    for col in ("sample_id", "video_id", "subject", "attack_type", "pai", "dataset", "split", "source"):
        meta[col] = [getattr(r, col) for r in refs]
    meta["is_attack"] = [bool(r.is_attack) for r in refs]
    meta["frame_index"] = [-1] * len(refs)
    for key in sorted({k for r in refs for k in r.extra}):
        meta[key] = [r.extra.get(key, "") for r in refs]
    return meta


def annotate_shard(refs: list[SampleRef], cfg: AnnotateConfig, models: Models) -> ShardResult:
    """The store rows of refs: decode, then per frame locate and crop the face, then segment all faces
    of the shard at once, then depth, labels and the pyramid."""
    rows = crop_faces(refs, cfg, models)
    if models.checker is not None:
        check_landmarks(rows, models.checker, cfg.landmark_check["max_nme"])
    segment_and_fuse(rows, cfg, models)
    return ShardResult(rows.arrays, rows.meta, rows.seconds)


def check_landmarks(rows: _Rows, checker, max_nme: float) -> None:
    """The other landmarker's points of every cropped face (one batched call) against the row's, both
    in the 68-point layout (FaceMesh's through the 68 -> 478 map), normalised by FaceMesh's eye
    corners: meta/landmark_nme per row; a row above max_nme, or one where the other landmarker finds
    no face, fails as landmark_disagreement (and leaves the faces to segment)."""
    from annotator.face.points68 import to_68, nme

    if not rows.items:
        return
    t = time.perf_counter()
    found = checker.landmarks([(it.frame, FaceBox(rows.boxes[i], 1.0))
                               for i, it in zip(rows.faced, rows.items)])
    keep = []
    for i, it, pts in zip(rows.faced, rows.items, found):
        if pts is None:
            err, why = float("nan"), "the check's landmarker found no face in the box"
        else:
            m = it.crop_matrix  # its frame pixels -> the crop, where the row's points are
            crop_pts = pts[:, :2] @ m[:, :2].T + m[:, 2]
            mine, other = to_68(it.landmarks), to_68(crop_pts)
            err = nme(*((mine, other) if len(pts) == 68 else (other, mine)))
            why = f"FAN and FaceMesh landmarks disagree: NME {err:.3f} > {max_nme}"
        rows.meta["landmark_nme"][i] = err
        if not err <= max_nme:
            rows.fail(i, Status.LANDMARK_DISAGREEMENT, why)
            rows.arrays["image"][i], rows.arrays["landmarks"][i] = 0, np.nan  # a failed row's fill values
        else:
            keep.append((i, it))
    rows.faced, rows.items = [i for i, _ in keep], [it for _, it in keep]
    rows.seconds["landmarks"] += time.perf_counter() - t


def crop_faces(refs: list[SampleRef], cfg: AnnotateConfig, models: Models) -> _Rows:
    """Decode refs and locate and crop each frame's face as the config says (no segmenter needed):
    rows.arrays image / landmarks, rows.meta status / frame_index / rotation, rows.boxes. What
    `annotate run` and `fas-train infer` share, so that both crop alike."""
    rows = _Rows(refs, empty_rows(len(refs), cfg.size, cfg.landmark_layout.n_points), new_meta(refs))
    t = time.perf_counter()
    frames = load_frames(refs, models.decode_threads, parse_sampling(cfg.sampling, cfg.frames_per_video))
    rows.seconds["decode"] += time.perf_counter() - t
    readable = []
    for i, (frame_index, frame, _, _) in enumerate(frames):
        rows.meta["frame_index"][i] = frame_index
        if isinstance(frame, DecodeError):
            rows.fail(i, Status.UNREADABLE, str(frame))
        elif min(frame.shape[:2]) < MIN_IMAGE_SIDE:
            rows.fail(i, Status.TOO_SMALL, f"image is {frame.shape[1]}x{frame.shape[0]}, smaller than {MIN_IMAGE_SIDE} px")
        else:
            readable.append(i)
    if getattr(models.landmarker, "batched", False):
        _crop_batched(rows, frames, readable, cfg, models)
        return rows
    tracks: dict[str, Located] = {}  # video id -> its face in the latest sampled frame of the shard
    rotations: dict[str, int] = {}  # video id -> clockwise degrees its frames are turned by
    for i in readable:
        _, frame, depth_frame, container_rotation = frames[i]
        try:
            ref, frame_index = refs[i], rows.meta["frame_index"][i]
            vid = ref.video_id
            rot = rotations.get(vid, container_rotation)
            turned = rotate(frame, rot)
            located = locate(turned, ref, frame_index, cfg, models.detector, models.landmarker, tracks.get(vid),
                             rows.seconds, rot, models.fallback)
            if vid not in rotations:  # the first frame of its video: settle the video's rotation once
                if cfg.auto_rotate and container_rotation == 0:
                    rot, turned, located = settle_rotation(frame, ref, frame_index, cfg, models.detector,
                                                           models.landmarker, rows.seconds, located,
                                                           models.fallback)
                rotations[vid] = rot
            if located.status == Status.OK and ref.is_video:
                tracks[vid] = located
            _write_face(rows, i, turned, rotate(depth_frame, rot), rot, located, cfg)
        except Exception as e:  # a model failing on one odd frame must not sink the shard
            _failed(rows, i, e)
    return rows


def _failed(rows: _Rows, i: int, e: Exception) -> None:
    log.debug("sample %s failed", rows.refs[i].sample_id, exc_info=True)
    rows.fail(i, Status.FAILED, f"{type(e).__name__}: {e}")


def _crop_batched(rows: _Rows, frames: list, readable: list[int], cfg: AnnotateConfig, models: Models) -> None:
    """crop_faces with a batched landmarker (FAN): the detector (or the dataset's box) on every frame,
    then one landmarker call over the boxes; first the first frames of the videos (and the images),
    whose faces settle their videos' rotation, then all other frames. Faces are not followed from
    frame to frame: FAN needs a box per frame anyway."""
    first, rest, seen = [], [], set()
    for i in readable:
        vid = rows.refs[i].video_id
        (rest if vid in seen else first).append(i)
        seen.add(vid)
    rotations: dict[str, int] = {}
    for group in (first, rest):
        found = {}
        for i in group:
            ref, (_, frame, _, container_rotation) = rows.refs[i], frames[i]
            try:
                rot = rotations.get(ref.video_id, container_rotation)
                turned = rotate(frame, rot)
                found[i] = (rot, turned, locate(turned, ref, rows.meta["frame_index"][i], cfg, models.detector, None,
                                                None, rows.seconds, rot, models.fallback))
            except Exception as e:
                _failed(rows, i, e)
        boxed = [i for i, (_, _, loc) in found.items() if loc.status == Status.OK]
        t = time.perf_counter()
        points = models.landmarker.landmarks([(found[i][1], found[i][2].face) for i in boxed])
        rows.seconds["landmarks"] += time.perf_counter() - t
        for i, lm in zip(boxed, points):
            loc = found[i][2]
            if lm is None:
                loc.face, loc.status, loc.error = None, Status.NO_LANDMARKS, "no landmarks found on the detected face"
            loc.landmarks = lm
        for i, (rot, turned, located) in found.items():
            ref, (_, frame, depth_frame, container_rotation) = rows.refs[i], frames[i]
            try:
                if group is first:
                    if cfg.auto_rotate and container_rotation == 0:
                        rot, turned, located = settle_rotation(frame, ref, rows.meta["frame_index"][i], cfg,
                                                               models.detector, models.landmarker, rows.seconds, located,
                                                               models.fallback)
                    rotations[ref.video_id] = rot
                _write_face(rows, i, turned, rotate(depth_frame, rot), rot, located, cfg)
            except Exception as e:
                _failed(rows, i, e)


def _write_face(rows: _Rows, i: int, frame: np.ndarray, depth_frame: np.ndarray | None, rot: int, located: Located,
                cfg: AnnotateConfig) -> None:
    """Row i from its upright frame (HWC uint8 RGB) and face: the crop and its landmarks, or why not."""
    meta = rows.meta
    meta["rotation"][i] = rot
    meta["n_faces"][i], meta["face_source"][i] = located.n_faces, located.source
    if located.status != Status.OK:
        rows.fail(i, located.status, located.error)
        return
    lm = located.landmarks
    meta["face_score"][i] = located.face.score
    rows.boxes[i] = tuple(float(v) for v in located.face.box)
    size = cfg.size
    m = output_crop(lm, cfg.box_scale, size)
    crop_lm = lm.copy()
    crop_lm[:, :2] = lm[:, :2] @ m[:, :2].T + m[:, 2]
    crop_lm[:, 2] = lm[:, 2] * m[0, 0]
    rows.arrays["image"][i] = warp_crop(frame, m, size)
    if depth_frame is not None:
        rows.sensor[i] = warp_crop(depth_frame, m, size, interpolation=cv2.INTER_NEAREST)
    rows.arrays["landmarks"][i] = crop_lm
    rows.items.append(FaceItem(frame, m, size, crop_lm, rows.refs[i].attack_type))
    rows.faced.append(i)


def segment_and_fuse(rows: _Rows, cfg: AnnotateConfig, models: Models) -> None:
    """Regions of every cropped face (one segmenter call), their depth (sensor or rendered), the
    three-channel label by the policy, and the pyramid of all rows."""
    t = time.perf_counter()
    segmented = models.segmenter.segment(rows.items) if rows.items else []
    rows.seconds["segment"] += time.perf_counter() - t
    for i, it, (region, how) in zip(rows.faced, rows.items, segmented):
        t = time.perf_counter()
        depth = sensor_depth(rows.sensor[i], np.isin(region, FACE_REGIONS)) if i in rows.sensor else None
        rows.meta["depth_source"][i] = "sensor" if depth is not None else "pseudo"
        if depth is None:
            depth = render_depth(it.landmarks, cfg.size)
        t2 = time.perf_counter()
        rows.seconds["depth"] += t2 - t
        d8 = depth_to_uint8(depth)
        rows.arrays["region"][i] = region
        rows.arrays["depth"][i] = d8
        rows.arrays["label"][i] = models.policy.fuse(region, d8, it.attack_type, it.landmarks)
        rows.meta["segmenter"][i] = how
        rows.seconds["fuse"] += time.perf_counter() - t2
    t = time.perf_counter()
    for k, level in pyramid(rows.arrays["label"]).items():
        rows.arrays[f"pyramid/{k}"] = level
    rows.seconds["fuse"] += time.perf_counter() - t
