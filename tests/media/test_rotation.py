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
    _, frames, orientation = read_video_frames(str(path), 2)
    assert orientation == Orientation(270) and frames[0].shape == stored.shape
    out = str(tmp_path / "p.zarr")
    run(sync_config(dataset="folder", root=str(root), frames_per_video=2, auto_rotate=False), out,
        cluster="none", progress=False)
    g = zarr.open_group(out, mode="r")
    assert (g["meta/status"][:] == Status.OK).all() and g["meta/rotation"][:].tolist() == [270, 270]
    lm = g["landmarks"][0]
    assert upright_turn(lm) == 0  # the crop shows the face upright


ONE = 1 << 16  # 1.0 in a display matrix's 16.16 fixed point
# A display matrix's (a, b, c, d) -> the frame FFmpeg's own tools show (fftools' autorotate: the angle
# of the matrix, then its transpose / hflip / vflip filter), written as numpy on the stored frame.
FFMPEG_SHOWS = {
    (1, 0, 0, 1): lambda f: f,
    (-1, 0, 0, 1): lambda f: f[:, ::-1],  # 180 degrees, a < 0: hflip
    (1, 0, 0, -1): lambda f: f[::-1],  # 0 degrees, d < 0: vflip
    (-1, 0, 0, -1): lambda f: f[::-1, ::-1],  # 180 degrees: hflip, vflip
    (0, -1, 1, 0): lambda f: np.rot90(f, 1),  # 270, c > 0: transpose=cclock (set_display_rotation(90))
    (0, 1, -1, 0): lambda f: np.rot90(f, -1),  # 90, c < 0: transpose=clock
    (0, 1, 1, 0): lambda f: f.transpose(1, 0, 2),  # 90, c > 0: transpose=cclock_flip
    (0, -1, -1, 0): lambda f: f[::-1, ::-1].transpose(1, 0, 2),  # 270, c < 0: transpose=clock_flip
}


@pytest.mark.parametrize("abcd", list(FFMPEG_SHOWS), ids=lambda m: "_".join(map(str, m)))
def test_a_display_matrix_turns_and_mirrors_the_frame_as_ffmpeg_shows_it(tmp_path, abcd):
    a, b, c, d = abcd
    stored = np.zeros((48, 64, 3), np.uint8)
    stored[:24, :32], stored[:24, 32:], stored[24:, :32] = (250, 0, 0), (0, 250, 0), (0, 0, 250)
    path = tmp_path / "m.mp4"
    write_video(path, [stored] * 2, rate=10, matrix=[a * ONE, b * ONE, 0, c * ONE, d * ONE, 0, 0, 0, 1 << 30])
    _, frames, orientation = read_video_frames(str(path), 1)
    assert np.array_equal(orientation.apply(frames[0]), FFMPEG_SHOWS[abcd](frames[0])), orientation
    assert orientation.mirrored == (a * d - b * c < 0)


def test_a_mirrored_video_is_annotated_as_shown(tmp_path, face_image):
    """A front-camera recording stored mirrored, its display matrix flipping it back: annotated like
    the same recording stored as shown; meta/mirrored says so."""
    root = tmp_path / "selfie"
    (root / "bonafide").mkdir(parents=True)
    canvas = np.full((512, 704, 3), 90, np.uint8)
    canvas[:, 40:552] = face_image  # off-centre: a mirror moves the face
    write_video(root / "bonafide" / "a_shown.mp4", [canvas] * 2, rate=10)
    write_video(root / "bonafide" / "b_mirrored.mp4", [np.ascontiguousarray(canvas[:, ::-1])] * 2, rate=10,
                matrix=[-ONE, 0, 0, 0, ONE, 0, 0, 0, 1 << 30])
    out = str(tmp_path / "s.zarr")
    run(sync_config(dataset="folder", root=str(root), frames_per_video=1), out, cluster="none", progress=False)
    g = zarr.open_group(out, mode="r")
    assert (g["meta/status"][:] == Status.OK).all()
    assert g["meta/mirrored"][:].tolist() == [False, True] and g["meta/rotation"][:].tolist() == [0, 0]
    shown, mirrored = g["image"][0].astype(float), g["image"][1].astype(float)
    # two encodings and two landmark fits: ~5 grey levels apart; the face left mirrored: ~60
    assert np.abs(shown - mirrored).mean() < 15 < np.abs(shown - mirrored[:, ::-1]).mean()
    # each transform starts from its file's stored pixels: a point of the shown frame and its mirror
    # image in the stored one land on the same crop pixel (up to the two landmark fits)
    shown_xy = np.array([[100.0, 60.0, 1.0], [500.0, 60.0, 1.0], [300.0, 450.0, 1.0]])
    stored_xy = shown_xy * [-1, 1, 1] + [704 - 1, 0, 0]
    t = g["transform"][:]
    gap = np.abs(stored_xy @ t[1].T - shown_xy @ t[0].T).max()
    assert gap < 0.03 * g["image"].shape[1] < np.abs(shown_xy @ t[1].T - shown_xy @ t[0].T).max(), gap
