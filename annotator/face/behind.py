"""The face behind an instrument: a fallback for frames where the face detector finds none.

A paper strip over the eyes, paper glasses or a patch hide what BlazeFace looks for, and the sample
would drop out as no_face exactly where a fine-grained label matters most. MediaPipe Holistic
(bundled in the mediapipe 0.10.21 wheel) places its face landmark model from the body pose, not
from a face detection, so it finds the face behind the paper (docs/labels.md, "The face behind the
instrument", has the measurements that chose it over BlazeFace's short-range model, FaceMesh over the
whole frame, OpenCV's cascades and the pose keypoints alone). It runs only on a detector's miss, and
finds nothing on textures or photos without a person.
"""

from __future__ import annotations

import numpy as np

from annotator.core.registry import Registry

from .detect import FaceBox
from .track import box_from_landmarks

FACE_FALLBACKS: Registry = Registry("face fallback")  # `--face-fallback NAME`: finds the face the detector missed

POSE_FACE_POINTS = (0, 2, 5, 9, 10)  # nose, eyes, mouth corners of the pose model


@FACE_FALLBACKS.register("pose")
class PoseFace:
    """frame (HWC uint8 RGB) -> ((478, 3) float32 landmarks in frame pixels, z larger = nearer, as
    FaceMesh's; FaceBox around them, score = the least visibility of the pose's face keypoints) or None."""

    source = "pose"  # meta/face_source of a face found this way

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, FaceBox] | None:
        import mediapipe as mp

        # A fresh graph per frame: Holistic keeps state between frames even in static mode (the same
        # frame gave landmarks 9 px apart after another), and a frame's label must not depend on
        # the frames before it in its shard. ~0.16 s more per miss; frames the detector handles pay nothing.
        with mp.solutions.holistic.Holistic(static_image_mode=True, refine_face_landmarks=True,
                                            model_complexity=1) as model:
            result = model.process(frame)
        if result.face_landmarks is None or result.pose_landmarks is None:
            return None
        h, w = frame.shape[:2]
        pts = np.array([(p.x, p.y, p.z) for p in result.face_landmarks.landmark], dtype=np.float64)
        if len(pts) != 478:
            return None
        out = np.empty((478, 3), np.float32)
        out[:, 0], out[:, 1], out[:, 2] = pts[:, 0] * w, pts[:, 1] * h, -pts[:, 2] * w
        score = min(result.pose_landmarks.landmark[i].visibility for i in POSE_FACE_POINTS)
        return out, box_from_landmarks(out, float(score))
