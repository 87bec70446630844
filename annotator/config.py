"""The resolved settings of one annotation run. Stored in the store; a resume must match them."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from annotator.core.errors import SettingError
from annotator.label import PYRAMID_SIZES

# Bounds of the settings that size memory or work. Values past them are typos, not requests: each
# would allocate or enumerate without output until the machine gives out (README "Bounds").
MAX_FRAMES_PER_VIDEO = 10_000  # rows per video (--frames-per-video, even:K, first:K)
MAX_SIZE = 2048  # crop side; a 2048 px crop is already 12 MiB per image row
MAX_SHARD_SIZE = 4096  # rows per shard (= per task = per chunk of every array)
# A shard's rows are held whole in a worker and written as one chunk of every array: at most as
# many pixels as 4096 crops of 256 px (~2 GiB of arrays), so larger crops allow fewer rows.
MAX_SHARD_PIXELS = MAX_SHARD_SIZE * 256 * 256
WORKERS_PER_CORE = 4  # local worker processes or threads per core
# The segmenter of a new store: GrabCut prompted by the landmarks segments the instrument of partial
# attacks on the CPU and equals `geometry` for every other type (docs/labels.md, "The CPU segmenter").
DEFAULT_SEGMENTER = "grabcut"


def check_range(setting: str, value, low, high, why: str = "") -> None:
    """A SettingError saying which end of [low, high] `value` passed (NaN passes neither)."""
    if not value >= low:
        raise SettingError(setting, f"must be at least {low}, got {value}")
    if not value <= high:
        raise SettingError(setting, f"must be at most {high}{why}, got {value}")


def max_workers() -> int:
    return WORKERS_PER_CORE * (os.cpu_count() or 1)


def check_workers(workers: int | None, setting: str = "workers") -> None:
    """None (the default count) or 1 .. 4 x the cores: more processes or threads than that only
    fight over the cores and each holds its own models and buffers."""
    if workers is not None:
        check_range(setting, workers, 1, max_workers(), f" ({WORKERS_PER_CORE} x the {os.cpu_count() or 1} cores here)")


@dataclass(frozen=True)
class AnnotateConfig:
    dataset: str
    root: str
    frames_per_video: int = 10
    # Which frames of a video become rows (annotator/media/sampling.py); "" = even:<frames_per_video>.
    # Kept in its canonical form ("even:10"), so a store made before the setting existed compares equal.
    sampling: str = ""
    size: int = 256
    box_scale: float = 1.3
    detector: str = "blazeface"
    landmarker: str = "mediapipe"  # a LANDMARKERS name: "mediapipe" (FaceMesh, 478 points), "fan" (68); docs/labels.md
    # "" (and policy {}): the defaults for a new store (DEFAULT_SEGMENTER, the shipped policy), the
    # store's own when resuming one (pipelines/run.py settle_defaults), so that a rerun keeps them.
    segmenter: str = ""
    min_face: int = 16  # smallest accepted face box side, frame pixels
    use_dataset_faces: bool = False  # face locations shipped with the dataset instead of the detector
    track: bool = True  # video frames follow the previous sampled frame's face; detector when lost
    auto_rotate: bool = True  # no face in a sample's first frame: try it rotated by 90/180/270 degrees
    protocol_dir: str = ""  # where the adapter reads protocol lists ("" = its default places)
    # What to do with an id its lists put in two groups of one protocol, or a file a manifest lists
    # with contradicting labels or splits: "" refuses (train/test leakage), "drop" or "first".
    on_conflict: str = ""
    # Where the detector finds no face: "pose" (MediaPipe Holistic places the face from the body
    # pose: the face behind a paper strip or glasses; annotator/face/behind.py) or "" (none).
    face_fallback: str | None = None  # None: "pose" for a new store, the store's own on resume
    limit: int | None = None
    shard_size: int | None = None  # None: chosen from the number of samples
    policy: dict = field(default_factory=dict)  # resolved policy table (labels.Policy.table)
    # What the segmenter is built from (e.g. SAM checkpoint, model type, sha256): must match on resume.
    segmenter_options: dict = field(default_factory=dict)
    # How it runs (device, batch, compile): results agree across these, so a resume may change them.
    runtime: dict = field(default_factory=dict)
    # The output-changing constants of the code that made the store (annotator/core/tuning.py).
    tuning: dict = field(default_factory=dict)
    # --landmark-check: the checking landmarker's options as its backend prepared them (FAN's weights:
    # {"type", "checkpoint", "sha256", ...}; a checker without options: {"landmarker": its name}) and
    # "max_nme"; {} when off. Rows whose two landmark sets differ more fail as landmark_disagreement.
    landmark_check: dict = field(default_factory=dict)
    # The landmarker's build options as its backend prepared them (fan: its checked weights); {} for none.
    landmarker_options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.landmarker == "facemesh":  # the name before FAN came: such stores resume as "mediapipe"
            object.__setattr__(self, "landmarker", "mediapipe")
        if self.frames_per_video >= 1:  # else validate() says so
            from annotator.media.sampling import parse

            object.__setattr__(self, "sampling", parse(self.sampling, self.frames_per_video).spec)

    @property
    def landmark_layout(self):
        """The annotator.face.layouts.Layout its landmarker writes."""
        from annotator.face.landmarks import LANDMARKERS
        from annotator.face.layouts import layout_named

        return layout_named(LANDMARKERS.describe(self.landmarker).layout)

    @property
    def landmark_checker(self) -> str:
        """The landmarker --landmark-check runs beside its own (that landmarker's `check_with`)."""
        from annotator.face.landmarks import LANDMARKERS

        return LANDMARKERS.describe(self.landmarker).check_with

    @property
    def landmark_check_options(self) -> dict:
        """The checker's build options: landmark_check without the threshold and the name it records."""
        return {k: v for k, v in self.landmark_check.items() if k not in ("max_nme", "landmarker")}

    @property
    def video_slots(self) -> int | None:
        """Rows per video when the sampling fixes them (even, first, presets), else None."""
        from annotator.media.sampling import parse

        return parse(self.sampling, self.frames_per_video).slots

    def validate(self) -> None:
        from annotator.face.behind import FACE_FALLBACKS
        from annotator.face.detect import DETECTORS
        from annotator.face.landmarks import LANDMARKERS

        if self.detector not in DETECTORS:
            raise SettingError("detector", f"takes {' or '.join(DETECTORS.names())}, got {self.detector!r}")
        if self.landmarker not in LANDMARKERS:
            raise SettingError("landmarker", f"takes {' or '.join(LANDMARKERS.names())}, got {self.landmarker!r}")
        self._validate_sampling()
        self._validate_size()
        if not 1.0 <= self.box_scale <= 4.0:
            raise SettingError("box_scale", f"must be in [1, 4], got {self.box_scale}")
        if self.limit is not None and self.limit < 1:
            raise SettingError("limit", f"must be at least 1, got {self.limit}")
        self._validate_shard_size()
        if self.face_fallback and self.face_fallback not in FACE_FALLBACKS:
            raise SettingError("face_fallback", f"takes {' or '.join(FACE_FALLBACKS.names())} or none, "
                                                f"got {self.face_fallback!r}")
        if self.on_conflict not in ("", "drop", "first"):
            raise SettingError("on_conflict", f"takes drop or first, got {self.on_conflict!r}")

    def _validate_sampling(self) -> None:
        check_range("frames_per_video", self.frames_per_video, 1, MAX_FRAMES_PER_VIDEO)
        from annotator.media.sampling import parse

        slots = parse(self.sampling, self.frames_per_video).slots
        if slots is not None and slots > MAX_FRAMES_PER_VIDEO:
            raise SettingError("sampling", f"takes at most {MAX_FRAMES_PER_VIDEO} frames per video, got "
                                           f"{self.sampling!r}; use every:N or all for long videos")

    def _validate_size(self) -> None:
        top = max(PYRAMID_SIZES)
        if not top <= self.size <= MAX_SIZE or self.size % top:
            raise SettingError("size", f"must be a multiple of {top} (for the pyramid) in {top}..{MAX_SIZE}, "
                                       f"got {self.size}")

    def _validate_shard_size(self) -> None:
        if self.shard_size is None:
            return
        most = min(MAX_SHARD_SIZE, MAX_SHARD_PIXELS // (self.size * self.size))
        why = f" for crops of {self.size} px" if most < MAX_SHARD_SIZE else ""
        check_range("shard_size", self.shard_size, 1, most, f"{why} (a shard is held whole in memory; leave it "
                                                             "out to have it chosen)")

    def with_defaults(self) -> "AnnotateConfig":
        """The config with today's defaults where it chose no segmenter, policy or face fallback (a new store's)."""
        if self.segmenter and self.policy and self.face_fallback is not None:
            return self
        from annotator.label import Policy

        return dataclasses.replace(self, segmenter=self.segmenter or DEFAULT_SEGMENTER,
                                   policy=self.policy or Policy.default().table,
                                   face_fallback="pose" if self.face_fallback is None else self.face_fallback)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AnnotateConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        d = {"face_fallback": "", **d}  # a store from before the pose fallback found faces without it
        return cls(**{k: v for k, v in d.items() if k in names})

    def differences(self, other: "AnnotateConfig") -> list[str]:
        """Names of the settings that differ (what a resume on an existing store must not change).
        Protocols do not change labels, so protocol_dir and on_conflict may (a resume refuses rows whose
        codes they change)."""
        a, b = self.to_dict(), other.to_dict()
        # on_conflict decides protocol codes only, which a resume compares row by row (pipelines/listing.py)
        return [k for k in a if k not in ("runtime", "protocol_dir", "on_conflict") and a[k] != b.get(k)]

    def tuning_differences(self, other: "AnnotateConfig") -> list[str]:
        """The tuning constants whose values differ (all of them when one side recorded none)."""
        a, b = self.tuning, other.tuning
        return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
