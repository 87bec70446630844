"""The resolved settings of one annotation run. Stored in the store; a resume must match them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .errors import AnnotatorError, SettingError
from .labels import PYRAMID_SIZES


@dataclass(frozen=True)
class AnnotateConfig:
    dataset: str
    root: str
    frames_per_video: int = 10
    # Which frames of a video become rows (annotator/sampling.py); "" = even:<frames_per_video>.
    # Kept in its canonical form ("even:10"), so a store made before the setting existed compares equal.
    sampling: str = ""
    size: int = 256
    box_scale: float = 1.3
    detector: str = "blazeface"
    landmarker: str = "mediapipe"  # "mediapipe" (FaceMesh, 478 points) or "fan" (68); docs/labels.md
    segmenter: str = "geometry"
    min_face: int = 16  # smallest accepted face box side, frame pixels
    use_dataset_faces: bool = False  # face locations shipped with the dataset instead of the detector
    track: bool = True  # video frames follow the previous sampled frame's face; detector when lost
    auto_rotate: bool = True  # no face in a sample's first frame: try it rotated by 90/180/270 degrees
    protocol_dir: str = ""  # where the adapter reads protocol lists ("" = its default places)
    limit: int | None = None
    shard_size: int | None = None  # None: chosen from the number of samples
    policy: dict = field(default_factory=dict)  # resolved policy table (labels.Policy.table)
    # What the segmenter is built from (e.g. SAM checkpoint, model type, sha256): must match on resume.
    segmenter_options: dict = field(default_factory=dict)
    # How it runs (device, batch, compile): results agree across these, so a resume may change them.
    runtime: dict = field(default_factory=dict)
    # The output-changing constants of the code that made the store (annotator/tuning.py).
    tuning: dict = field(default_factory=dict)
    # --landmark-check: FAN's weights ({"type", "checkpoint", "sha256", ...} after checking) and
    # "max_nme"; {} when off. Rows whose FAN and FaceMesh points differ more fail as landmark_disagreement.
    landmark_check: dict = field(default_factory=dict)
    # --landmarker fan: its weights ({"type", "checkpoint", "sha256", ...} after checking); {} otherwise.
    landmarker_options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.landmarker == "facemesh":  # the name before FAN came: such stores resume as "mediapipe"
            object.__setattr__(self, "landmarker", "mediapipe")
        if self.frames_per_video >= 1:  # else validate() says so
            from .sampling import parse

            object.__setattr__(self, "sampling", parse(self.sampling, self.frames_per_video).spec)

    @property
    def landmark_layout(self):
        """The annotator.face.layouts.Layout its landmarker writes."""
        from .face.landmarks import LAYOUT_OF
        from .face.layouts import layout_named

        return layout_named(LAYOUT_OF[self.landmarker])

    @property
    def video_slots(self) -> int | None:
        """Rows per video when the sampling fixes them (even, first, presets), else None."""
        from .sampling import parse

        return parse(self.sampling, self.frames_per_video).slots

    def validate(self) -> None:
        from .face.landmarks import LAYOUT_OF

        if self.landmarker not in LAYOUT_OF:
            raise SettingError("landmarker", f"takes {' or '.join(LAYOUT_OF)}, got {self.landmarker!r}")
        if self.frames_per_video < 1:
            raise SettingError("frames_per_video", f"must be at least 1, got {self.frames_per_video}")
        top = max(PYRAMID_SIZES)
        if self.size < top or self.size % top:
            raise SettingError("size", f"must be a positive multiple of {top} (for the pyramid), got {self.size}")
        if not 1.0 <= self.box_scale <= 4.0:
            raise SettingError("box_scale", f"must be in [1, 4], got {self.box_scale}")
        if self.limit is not None and self.limit < 1:
            raise SettingError("limit", f"must be at least 1, got {self.limit}")
        if self.shard_size is not None and self.shard_size < 1:
            raise SettingError("shard_size", f"must be at least 1, got {self.shard_size}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AnnotateConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def differences(self, other: "AnnotateConfig") -> list[str]:
        """Names of the settings that differ (what a resume on an existing store must not change).
        Protocols do not change labels and are rewritten whole on every run, so protocol_dir may."""
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if k not in ("runtime", "protocol_dir") and a[k] != b.get(k)]

    def tuning_differences(self, other: "AnnotateConfig") -> list[str]:
        """The tuning constants whose values differ (all of them when one side recorded none)."""
        a, b = self.tuning, other.tuning
        return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
