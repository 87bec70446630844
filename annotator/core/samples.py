"""Sample references (what an adapter yields) and per-sample status codes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# The codes of a protocol's groups (`protocols/<name>`: -1 = not in the protocol) and of meta/split.
SPLIT_CODES = {"train": 0, "dev": 1, "test": 2}
SPLITS = tuple(SPLIT_CODES)


class Status(enum.IntEnum):
    """`meta/status` values. 0 is a usable sample; any other value comes with an `meta/error` text."""

    OK = 0
    UNREADABLE = 1  # the file could not be decoded (missing, corrupt, truncated)
    NO_FACE = 2  # the detector found no face
    NO_LANDMARKS = 3  # a face was detected but FaceMesh found no landmarks on it
    TOO_SMALL = 4  # the image or face is below the minimum size
    FAILED = 5  # any other error while processing the sample
    LANDMARK_DISAGREEMENT = 6  # --landmark-check: FAN's 68 points and FaceMesh's differ beyond --max-landmark-nme


STATUS_CODES = {s.name.lower(): int(s) for s in Status}


@dataclass(frozen=True, slots=True)
class SampleRef:
    """One row of the store before it is processed.

    `path` is absolute; `source` is the same path relative to the dataset root. For a video,
    `slot` is the k-th of `n_slots` frames sampled evenly over the video (the frame index itself
    is resolved at decode time, so enumeration never opens media); for an image `slot` is -1.
    Rows of one video share their `extra`, `protocols` and `media` dicts (a million rows stay small).
    """

    sample_id: str
    path: str
    source: str
    video_id: str
    is_attack: bool
    attack_type: str
    dataset: str
    subject: str = ""
    pai: str = ""
    split: str = ""
    slot: int = -1
    n_slots: int = 1
    extra: dict[str, str] = field(default_factory=dict)
    protocols: dict[str, int] = field(default_factory=dict)
    # How to decode when the extension does not say (e.g. HDF5 layouts); never written to meta.
    media: dict[str, str] = field(default_factory=dict)

    @property
    def is_video(self) -> bool:
        return self.slot >= 0
