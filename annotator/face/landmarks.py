"""Landmarkers by name: (frame, face box) -> (P, 3) landmarks in frame pixels, P and the points'
meaning given by the layout each registers (annotator/face/layouts.py): "mediapipe" (FaceMesh, 478)
or "fan" (face-alignment's FAN, 68; a shard's faces go through it in batches: `batched`)."""

from __future__ import annotations

import cv2
import numpy as np

from annotator.core.registry import Registry
from annotator.core.tuning import TUNING
from .detect import FaceBox

N_LANDMARKS = 478
LANDMARKERS: Registry = Registry("landmarker")

# FaceMesh expects the face to fill about 60 % of its input; BlazeFace boxes are tight.
MESH_CONTEXT = TUNING.mesh_context
_MESH_INPUT = 256


def square_crop_matrix(center: tuple[float, float], side: float, size: int) -> np.ndarray:
    """2x3 affine taking frame pixels to the pixels of a size x size crop of the given square."""
    s = size / side
    cx, cy = center
    return np.array([[s, 0.0, size / 2 - s * cx], [0.0, s, size / 2 - s * cy]], dtype=np.float64)


def warp_crop(frame: np.ndarray, matrix: np.ndarray, size: int, interpolation=cv2.INTER_LINEAR) -> np.ndarray:
    """Crop of `frame` (HWC uint8) through a 2x3 frame->crop matrix; outside the frame is black."""
    return cv2.warpAffine(frame, matrix, (size, size), flags=interpolation, borderMode=cv2.BORDER_CONSTANT)


@LANDMARKERS.register("mediapipe", layout="mediapipe-478", check_with="fan")
class FaceMeshLandmarker:
    """MediaPipe FaceMesh with iris refinement (478 points), run on a square crop around the box.

    Returns landmarks as float32 (478, 3): x, y in frame pixels, z in the same pixel units with
    larger = nearer (FaceMesh's z is negated and scaled by the crop width), or None if no face.
    """

    batched = False

    def __init__(self):
        import mediapipe as mp

        self._model = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, refine_landmarks=True, max_num_faces=1, min_detection_confidence=0.5
        )

    def __call__(self, frame: np.ndarray, face: FaceBox, context: float = MESH_CONTEXT) -> np.ndarray | None:
        """frame: HWC uint8 RGB; face: XYXY box. FaceMesh sees the square of `context` times the
        box side around it, at a fixed number of pixels per box side (a wider context for a face
        that may have moved keeps the landmarks' resolution)."""
        x0, y0, x1, y1 = face.box
        side = context * max(x1 - x0, y1 - y0)
        n = int(round(_MESH_INPUT * context / MESH_CONTEXT))
        m = square_crop_matrix(((x0 + x1) / 2, (y0 + y1) / 2), side, n)
        crop = warp_crop(frame, m, n)
        result = self._model.process(crop)
        if not result.multi_face_landmarks:
            return None
        pts = np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=np.float64)
        scale = side / n  # crop pixel -> frame pixel
        out = np.empty((N_LANDMARKS, 3), dtype=np.float32)
        out[:, 0] = (pts[:, 0] * n - m[0, 2]) * scale
        out[:, 1] = (pts[:, 1] * n - m[1, 2]) * scale
        out[:, 2] = -pts[:, 2] * side
        return out

    def landmarks(self, items: list[tuple[np.ndarray, FaceBox]]) -> list[np.ndarray | None]:
        """(478, 3) landmarks (or None) per (frame, box), one after the other."""
        return [self(frame, face) for frame, face in items]


def _fan_prepare(options: dict) -> dict:
    from .fan import prepare_options

    return prepare_options(options)


def _fan_locate(options: dict, given: dict) -> dict:
    from .fan import locate_options

    return locate_options(options, given)


@LANDMARKERS.register("fan", layout="ibug-68", runtime=("device",), prepare=_fan_prepare, locate=_fan_locate,
                      check_with="mediapipe")
def _fan(type: str = "2d", checkpoint: str | None = None, depth_checkpoint: str | None = None,
         device: str | None = None, **_provenance):
    """face-alignment's FAN (annotator/face/fan.py; torch loads only when one is built) from the
    checked weights of a config's landmarker_options."""
    from .fan import FanLandmarker

    return FanLandmarker(type, checkpoint, depth_checkpoint, device)
