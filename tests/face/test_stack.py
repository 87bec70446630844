import numpy as np
import pytest

from annotator.face import DETECTORS, LANDMARKERS, N_LANDMARKS


@pytest.mark.parametrize("name", DETECTORS.names())
def test_every_detector_finds_the_real_face(face_image, name):
    faces = DETECTORS.create(name)(face_image)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].box
    # the astronaut's face is around x 170-280, y 70-200 in the 512 px photo
    assert 140 < x0 < 200 and 240 < x1 < 310 and 40 < y0 < 110 and 160 < y1 < 240
    assert faces[0].score > 0.7


@pytest.mark.parametrize("name", DETECTORS.names())
def test_every_detector_finds_no_face_in_noise(name):
    noise = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    assert DETECTORS.create(name)(noise) == []


# FAN has no weights here (tests give it random ones: tests/face/test_fan.py checks its contract),
# so only the landmarkers that ship their weights can be checked on a real face.
@pytest.mark.parametrize("name", [n for n in LANDMARKERS.names() if n != "fan"])
def test_landmarks_in_frame_pixels_nearer_is_larger(face_image, name):
    from annotator.face.detect import BlazeFaceDetector

    face = BlazeFaceDetector()(face_image)[0]
    lm = LANDMARKERS.create(name)(face_image, face)
    assert lm.shape == (N_LANDMARKS, 3) and lm.dtype == np.float32
    x0, y0, x1, y1 = face.box
    # nose tip (1) is inside the detected box; the oval's side points are farther than the nose tip
    assert x0 < lm[1, 0] < x1 and y0 < lm[1, 1] < y1
    assert lm[1, 2] > lm[234, 2] + 10 and lm[1, 2] > lm[454, 2] + 10
    # the same face shifted by (40, 30) gives landmarks shifted by (40, 30)
    shifted = np.zeros((600, 600, 3), np.uint8)
    shifted[30:542, 40:552] = face_image
    face2 = BlazeFaceDetector()(shifted)[0]
    lm2 = LANDMARKERS.create(name)(shifted, face2)
    assert np.abs(np.median(lm2[:, :2] - lm[:, :2], axis=0) - (40, 30)).max() < 3

