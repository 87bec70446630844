"""Annotate one shard: sample references in, the store's arrays for those rows out (plain numpy).

This is the unit of work of the pipeline. A sample that cannot be annotated becomes a row with
a non-zero status and an error text; only programming errors escape.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from annotator.config import AnnotateConfig
from annotator.core.samples import SampleRef, Status
from annotator.core.tuning import TUNING
from annotator.face.detect import FaceBox
from annotator.face.landmarks import warp_crop
from annotator.face.regions import FACE_REGIONS
from annotator.face.track import box_from_landmarks
from annotator.label import (box_iou, channel_shares, depth_to_uint8, prior_agreement, pyramid, render_depth,
                             temporal_consistency)
from annotator.media.decode import DecodeError, Orientation
from annotator.media.hdf5 import sensor_depth
from annotator.media.sampling import parse as parse_sampling
from annotator.segment import FaceItem
from annotator.store.schema import empty_meta, empty_rows

from .frames import load_frames
from .locate import Located, frame_to_crop, locate, output_crop, settle_rotation
from .models import Models

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
    from annotator.face.points68 import nme, to_68

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
            rows.arrays["transform"][i] = np.nan
        else:
            keep.append((i, it))
    rows.faced, rows.items = [i for i, _ in keep], [it for _, it in keep]
    rows.seconds["landmarks"] += time.perf_counter() - t


def crop_faces(refs: list[SampleRef], cfg: AnnotateConfig, models: Models) -> _Rows:
    """Decode refs and locate and crop each frame's face as the config says (no segmenter needed):
    rows.arrays image / landmarks / transform, rows.meta status / frame_index / rotation / mirrored /
    frame_height / frame_width, rows.boxes. What `annotate run` and `fas-train infer` share, so that
    both crop alike."""
    rows = _Rows(refs, empty_rows(len(refs), cfg.size, cfg.landmark_layout.n_points), new_meta(refs))
    t = time.perf_counter()
    frames = load_frames(refs, models.decode_threads, parse_sampling(cfg.sampling, cfg.frames_per_video))
    rows.seconds["decode"] += time.perf_counter() - t
    readable = []
    for i, (frame_index, frame, _, stored) in enumerate(frames):
        rows.meta["frame_index"][i] = frame_index
        if isinstance(frame, DecodeError):
            rows.fail(i, Status.UNREADABLE, str(frame))
            continue
        _record_frame(rows, i, frame, stored)
        if min(frame.shape[:2]) < MIN_IMAGE_SIDE:
            rows.fail(i, Status.TOO_SMALL, f"image is {frame.shape[1]}x{frame.shape[0]}, smaller than {MIN_IMAGE_SIDE} px")
        else:
            readable.append(i)
    if getattr(models.landmarker, "batched", False):
        _crop_batched(rows, frames, readable, cfg, models)
        return rows
    tracks: dict[str, Located] = {}  # video id -> its face in the latest sampled frame of the shard
    orientations: dict[str, Orientation] = {}  # video id -> how its frames are shown upright
    for i in readable:
        _, frame, depth_frame, stored = frames[i]
        try:
            ref, frame_index = refs[i], rows.meta["frame_index"][i]
            vid = ref.video_id
            orient = orientations.get(vid, stored)
            turned = orient.apply(frame)
            located = locate(turned, ref, frame_index, cfg, models.detector, models.landmarker, tracks.get(vid),
                             rows.seconds, orient, models.fallback)
            if vid not in orientations:  # the first frame of its video: settle the video's orientation once
                orient, turned, located = _settled(rows, i, frame, stored, turned, located, cfg, models)
                orientations[vid] = orient
            if located.status == Status.OK and ref.is_video:
                tracks[vid] = located
            _write_face(rows, i, turned, orient.apply(depth_frame), orient, frame.shape[:2], located, cfg)
        except Exception as e:  # a model failing on one odd frame must not sink the shard
            _failed(rows, i, e)
    return rows


def _settled(rows: _Rows, i: int, frame: np.ndarray, stored: Orientation, turned: np.ndarray, located: Located,
             cfg: AnnotateConfig, models: Models) -> tuple[Orientation, np.ndarray, Located]:
    """(orientation, upright frame, face) of row i, the first frame of its video: as its metadata
    (`stored`) shows it, or, where it has none and auto-rotate is on, turned as settle_rotation finds
    its face upright. `turned` and `located`: the frame shown by `stored` and the face found in it."""
    if not (cfg.auto_rotate and stored.is_identity):
        return stored, turned, located
    rot, turned, located = settle_rotation(frame, rows.refs[i], rows.meta["frame_index"][i], cfg, models.detector,
                                           models.landmarker, rows.seconds, located, models.fallback)
    return Orientation(rot), turned, located


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
    orientations: dict[str, Orientation] = {}
    for group in (first, rest):
        found = {}
        for i in group:
            ref, (_, frame, _, stored) = rows.refs[i], frames[i]
            try:
                orient = orientations.get(ref.video_id, stored)
                turned = orient.apply(frame)
                found[i] = (orient, turned, locate(turned, ref, rows.meta["frame_index"][i], cfg, models.detector,
                                                   None, None, rows.seconds, orient, models.fallback))
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
        for i, (orient, turned, located) in found.items():
            ref, (_, frame, depth_frame, stored) = rows.refs[i], frames[i]
            try:
                if group is first:
                    orient, turned, located = _settled(rows, i, frame, stored, turned, located, cfg, models)
                    orientations[ref.video_id] = orient
                _write_face(rows, i, turned, orient.apply(depth_frame), orient, frame.shape[:2], located, cfg)
            except Exception as e:
                _failed(rows, i, e)


def _record_frame(rows: _Rows, i: int, frame: np.ndarray, orientation: Orientation) -> None:
    """Row i's decoded frame as stored: its size and how it is shown upright (docs/store.md)."""
    meta = rows.meta
    meta["frame_height"][i], meta["frame_width"][i] = (int(v) for v in frame.shape[:2])
    meta["rotation"][i], meta["mirrored"][i] = orientation.rotation, orientation.mirrored


def _write_face(rows: _Rows, i: int, frame: np.ndarray, depth_frame: np.ndarray | None, orientation: Orientation,
                stored_hw: tuple[int, int], located: Located, cfg: AnnotateConfig) -> None:
    """Row i from its upright frame (HWC uint8 RGB; shown upright from the stored_hw frame by
    `orientation`) and face: the crop, its landmarks and its transform, or why not."""
    meta = rows.meta
    meta["rotation"][i], meta["mirrored"][i] = orientation.rotation, orientation.mirrored
    meta["n_faces"][i], meta["face_source"][i] = located.n_faces, located.source
    if located.status != Status.OK:
        rows.fail(i, located.status, located.error)
        return
    lm = located.landmarks
    meta["face_score"][i] = located.face.score
    meta["landmark_confidence"][i] = box_iou(box_from_landmarks(lm, 0.0).box, located.face.box)
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
    rows.arrays["transform"][i] = frame_to_crop(m, orientation, stored_hw)
    rows.items.append(FaceItem(frame, m, size, crop_lm, rows.refs[i].attack_type))
    rows.faced.append(i)


def segment_and_fuse(rows: _Rows, cfg: AnnotateConfig, models: Models) -> None:
    """Regions of every cropped face (one segmenter call), their depth (sensor or rendered), the
    three-channel label by the policy, and the pyramid of all rows."""
    t = time.perf_counter()
    segmented = models.segmenter.segment(rows.items) if rows.items else []
    rows.seconds["segment"] += time.perf_counter() - t
    for i, it, (region, how, *signals) in zip(rows.faced, rows.items, segmented):
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
        _row_signals(rows, i, signals[0] if signals else {})
        rows.seconds["fuse"] += time.perf_counter() - t2
    t = time.perf_counter()
    _temporal_signals(rows)
    for k, level in pyramid(rows.arrays["label"]).items():
        rows.arrays[f"pyramid/{k}"] = level
    rows.seconds["fuse"] += time.perf_counter() - t


def _row_signals(rows: _Rows, i: int, from_segmenter: dict) -> None:
    """Row i's quality signals from its label, regions and landmarks (annotator/label/quality.py),
    and those its segmenter gave."""
    meta = rows.meta
    for col, value in from_segmenter.items():
        meta[col][i] = value
    meta["share_attack"][i], meta["share_live"][i], meta["share_background"][i] = \
        channel_shares(rows.arrays["label"][i]).tolist()
    meta["prior_agreement"][i], meta["prior_worst_region"][i] = \
        prior_agreement(rows.arrays["region"][i], rows.arrays["landmarks"][i])


def _temporal_signals(rows: _Rows) -> None:
    """Each video's segmented rows in frame order against their neighbours (a video lies in one shard)."""
    by_video: dict[str, list[int]] = {}
    for i in rows.faced:
        if rows.refs[i].is_video and rows.meta["status"][i] == Status.OK:
            by_video.setdefault(rows.meta["video_id"][i], []).append(i)
    for idx in by_video.values():
        idx.sort(key=lambda i: rows.meta["frame_index"][i])
        values = temporal_consistency(rows.arrays["region"][idx], rows.arrays["landmarks"][idx])
        for i, v in zip(idx, values.tolist()):
            rows.meta["temporal_consistency"][i] = v
