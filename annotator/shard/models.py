"""The models one shard is annotated with, built from a config through the registries: detector, landmarker (and its checker), segmenter, face fallback, policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from annotator.config import AnnotateConfig
from annotator.face import DETECTORS, LANDMARKERS
from annotator.face.behind import FACE_FALLBACKS
from annotator.label import Policy
from annotator.segment import SEGMENTERS, Segmenter


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
