"""Face detectors by name. A detector maps an HWC uint8 RGB frame to face boxes, largest first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotator.core.registry import Registry


@dataclass(frozen=True)
class FaceBox:
    """A detected face: `box` is XYXY in frame pixels (float), `score` in [0, 1]."""

    box: tuple[float, float, float, float]
    score: float

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


DETECTORS: Registry = Registry("face detector")


@DETECTORS.register("blazeface")
class BlazeFaceDetector:
    """MediaPipe BlazeFace full-range (model_selection=1), bundled in the mediapipe 0.10.21 wheel."""

    def __init__(self, min_confidence: float = 0.5):
        import mediapipe as mp

        self._model = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_confidence
        )

    def __call__(self, frame: np.ndarray) -> list[FaceBox]:
        """frame: HWC uint8 RGB. Returns faces sorted by box area, largest first."""
        h, w = frame.shape[:2]
        result = self._model.process(frame)
        faces = []
        for det in result.detections or ():
            rb = det.location_data.relative_bounding_box
            x0, y0 = rb.xmin * w, rb.ymin * h
            faces.append(FaceBox((x0, y0, x0 + rb.width * w, y0 + rb.height * h), float(det.score[0])))
        return sorted(faces, key=lambda f: f.area, reverse=True)
