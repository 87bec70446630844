"""Which frames of a video become rows: sampling rules by name (`annotate run --sampling SPEC`).

Rules (n = the video's frame count; indices 0-based, ascending; a short video repeats frames rather
than dropping rows where the rule has a fixed count, so every row has a frame):

- `even:K` (the default, K = --frames-per-video): K frames spread evenly, first and last included
  (K = 1: the middle frame).
- `first:K`: frames 0 .. K-1 (the last frame repeated when n < K).
- `every:N`: frames 0, N, 2N, ... below n: the row count follows the video's length.
- `all`: every frame.
- `ssdg-train`, `ssdg-test`: SSDG's `sample_frames` (github.com/taylover-pei/SSDG-CVPR2020,
  utils/utils.py) with its configs' counts: entry 6 + j * floor(n / K) of the video's frames, j < K,
  K = 1 per source video in training, 2 per target video in test (clipped to the last frame).
- `cdcn-test`: CDCN's and SSAN's evaluation loaders (Load_OULUNPU_valtest.py in github.com/ZitongYu/CDCN
  and github.com/wangzhuo2019/SSAN): 8 frames, j * floor(n / 10), j < 8 (at least 1 apart and clipped
  to the last frame for videos under 10 frames, where their code would read one frame 8 times).

- `flip-mcio`: FLIP's MCIO frames (github.com/koushiksrivats/FLIP, docs/datasets.md): another name
  for `ssdg-test` (frames 6 and 6 + floor(n / 2)).
- `flip-wcs`: FLIP's WCS frames, ten equidistant: j * n // 10, j < 10 (its WMCA lists name frames
  00, 05, ..., 45 of 50; `even:10` would take 0, 5, 11, ..., 49, its last frame included).

A rule with a fixed count knows its rows before any video is opened; `every` and `all` read each
video's frame count from its header when the run enumerates samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotator.core.errors import SettingError

PRESETS = ("ssdg-train", "ssdg-test", "cdcn-test", "flip-wcs")
ALIASES = {"flip-mcio": "ssdg-test"}  # other names of rules
USAGE = f"use even:K, first:K, every:N, all or a preset ({', '.join(PRESETS + tuple(ALIASES))})"


def even_frame_indices(n_frames: int, k: int) -> np.ndarray:
    """Indices of k frames spread evenly over a video of n_frames (first and last included).

    Shorter videos than k repeat frames rather than dropping rows, so every slot has a frame.
    """
    if n_frames <= 0:
        raise ValueError("video has no frames")
    if k == 1:
        return np.array([n_frames // 2])
    return np.round(np.linspace(0, n_frames - 1, k)).astype(np.int64)


@dataclass(frozen=True)
class Sampling:
    kind: str
    k: int = 0  # K or N; 0 for all and the presets

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.k}" if self.kind in ("even", "first", "every") else self.kind

    @property
    def slots(self) -> int | None:
        """Rows per video when the rule fixes them, else None (they follow the frame count)."""
        return {"even": self.k, "first": self.k, "ssdg-train": 1, "ssdg-test": 2, "cdcn-test": 8,
                "flip-wcs": 10}.get(self.kind)

    def indices(self, n: int) -> np.ndarray:
        """The frame indices (int64, ascending) this rule takes from a video of n frames."""
        if n <= 0:
            raise ValueError("video has no frames")
        last = n - 1
        if self.kind == "even":
            return even_frame_indices(n, self.k)
        if self.kind == "first":
            return np.minimum(np.arange(self.k), last).astype(np.int64)
        if self.kind == "every":
            return np.arange(0, n, self.k, dtype=np.int64)
        if self.kind == "all":
            return np.arange(n, dtype=np.int64)
        if self.kind in ("ssdg-train", "ssdg-test"):
            k = self.slots
            return np.minimum(6 + np.arange(k) * (n // k), last).astype(np.int64)
        if self.kind == "flip-wcs":
            return (np.arange(10) * n // 10).astype(np.int64)
        return np.minimum(np.arange(8) * max(1, n // 10), last).astype(np.int64)  # cdcn-test


def parse(spec: str, frames_per_video: int = 10) -> Sampling:
    """A sampling rule from its spec; `even` and `first` without K take frames_per_video. A bad spec
    is a one-line SettingError saying what is accepted."""
    text = (spec or "even").strip().lower()
    text = ALIASES.get(text, text)
    kind, _, arg = text.partition(":")
    if kind in PRESETS or kind == "all":
        if arg:
            raise SettingError("sampling", f"{kind} takes no number, got {spec!r}")
        return Sampling(kind)
    if kind not in ("even", "first", "every"):
        raise SettingError("sampling", f"unknown rule {spec!r}; {USAGE}")
    if not arg and kind == "every":
        raise SettingError("sampling", f"every needs a step, e.g. every:5; got {spec!r}")
    try:
        k = int(arg) if arg else frames_per_video
    except ValueError:
        raise SettingError("sampling", f"{kind} takes a whole number, got {spec!r}") from None
    if k < 1:
        raise SettingError("sampling", f"{kind} needs a number of at least 1, got {spec!r}")
    return Sampling(kind, k)


def planned_indices(sampling: Sampling | None, n_frames: int, n_slots: int) -> np.ndarray:
    """The frames of a video the run planned n_slots rows for (sampling None: even over n_slots).
    ValueError when the rule now gives another count (the video changed since enumeration)."""
    idx = (sampling or Sampling("even", n_slots)).indices(n_frames)
    if len(idx) != n_slots:
        raise ValueError(f"the video has {n_frames} frames now, which gives {len(idx)} rows under "
                         f"{sampling.spec}, not the {n_slots} planned; rerun with --overwrite")
    return idx
