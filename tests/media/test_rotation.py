"""Sideways recordings: container rotation metadata is honoured, and without it a sample's first
frame is turned until its face is upright; meta/rotation records the clockwise turn."""

import numpy as np
import pytest
import zarr
from PIL import Image

from annotator.media.decode import Orientation, clockwise, read_video_frames, rotate
from annotator.face.detect import FaceBox
from annotator.core.samples import Status
from annotator.shard import orient_box, upright_turn
from helpers import sync_config, write_video
from pipelines.run import run


def test_rotation_helpers():
    a = np.arange(6).reshape(2, 3)
    assert (rotate(a, 90) == np.rot90(a, -1)).all() and rotate(a, 90).flags["C_CONTIGUOUS"]
    assert (rotate(rotate(a, 90), 270) == a).all() and rotate(a, 0) is a
    assert [clockwise(d) for d in (0, 90, -90, 180, -180, 89.6)] == [0, 270, 90, 180, 180, 270]
    # a box follows its pixels through each turn
    frame = np.zeros((40, 60), np.uint8)
    frame[5:15, 10:30] = 1
    for deg in (0, 90, 180, 270):
        x0, y0, x1, y1 = orient_box(FaceBox((10, 5, 30, 15), 1.0), Orientation(deg), 40, 60).box
        turned = rotate(frame, deg)
        assert turned[int(y0):int(y1), int(x0):int(x1)].sum() == 200 == turned.sum(), deg


def test_upright_turn_of_the_landmarks(face_landmarks):
    h = 512
    assert upright_turn(face_landmarks) == 0
    lm = face_landmarks.copy()
    lm[:, 0], lm[:, 1] = face_landmarks[:, 1], h - face_landmarks[:, 0]  # the face turned 90 degrees anticlockwise
    assert upright_turn(lm) == 90


@pytest.fixture
def turned_images(tmp_path, face_image):
    root = tmp_path / "turned"
    (root / "bonafide").mkdir(parents=True)
    for k in (0, 1, 2, 3):  # np.rot90 turns anticlockwise: k quarter turns need 90 * k degrees clockwise back
        Image.fromarray(np.rot90(face_image, k)).save(root / "bonafide" / f"turn{k}.png")
    return root


def test_a_turned_image_is_found_and_turned_back(turned_images, tmp_path):
    out = str(tmp_path / "t.zarr")
    run(sync_config(dataset="folder", root=str(turned_images)), out, cluster="none", progress=False)
    g = zarr.open_group(out, mode="r")
    assert (g["meta/status"][:] == Status.OK).all()
    assert g["meta/rotation"][:].tolist() == [0, 90, 180, 270]
    image = g["image"][:].astype(int)
    for i in (1, 2, 3):  # quarter turns are lossless: the crops are the upright one exactly
        assert np.abs(image[i] - image[0]).max() == 0
    off = str(tmp_path / "off.zarr")
    run(sync_config(dataset="folder", root=str(turned_images), auto_rotate=False), off, cluster="none", progress=False)
    assert zarr.open_group(off, mode="r")["meta/rotation"][:].tolist() == [0, 0, 0, 0]


def test_container_rotation_is_honoured(tmp_path, face_image):
    root = tmp_path / "phone"
    (root / "bonafide").mkdir(parents=True)
    stored = np.ascontiguousarray(np.rot90(face_image, -1))  # the sensor's pixels: upright turned clockwise
    path = root / "bonafide" / "phone.mp4"
    # rotation 90: the player turns it 90 degrees anticlockwise to show it upright
    write_video(path, [stored] * 4, rate=10, rotation=90)
    _, frames, rotation = read_video_frames(str(path), 2)
    assert rotation == 270 and frames[0].shape == stored.shape
    out = str(tmp_path / "p.zarr")
    run(sync_config(dataset="folder", root=str(root), frames_per_video=2, auto_rotate=False), out,
        cluster="none", progress=False)
    g = zarr.open_group(out, mode="r")
    assert (g["meta/status"][:] == Status.OK).all() and g["meta/rotation"][:].tolist() == [270, 270]
    lm = g["landmarks"][0]
    assert upright_turn(lm) == 0  # the crop shows the face upright
