"""Following a video's face between sampled frames instead of detecting it in each one."""

import numpy as np
import zarr

from annotator.face.detect import FaceBox
from annotator.face.track import TRACK_CONTEXT, box_from_landmarks, follows
from helpers import sync_config, write_video


def test_box_from_landmarks_is_centred_and_detector_sized(face_landmarks):
    box = box_from_landmarks(face_landmarks, 0.9)
    x0, y0, x1, y1 = box.box
    lo, hi = face_landmarks[:, :2].min(axis=0), face_landmarks[:, :2].max(axis=0)
    np.testing.assert_allclose([(x0 + x1) / 2, (y0 + y1) / 2], (lo + hi) / 2, atol=1e-4)
    assert np.isclose(x1 - x0, y1 - y0) and 0.8 < (x1 - x0) / max(hi - lo) < 1.0
    assert box.score == 0.9


def test_follows_accepts_the_face_inside_and_rejects_it_at_the_border(face_landmarks):
    box = box_from_landmarks(face_landmarks, 1.0)
    side = box.box[2] - box.box[0]
    assert follows(face_landmarks, box)
    moved = face_landmarks.copy()
    moved[:, 0] += 0.5 * side  # still wholly inside the TRACK_CONTEXT-wide square
    assert follows(moved, box)
    moved[:, 0] += (TRACK_CONTEXT / 2 - 1.0) * side  # now past the square's border: extrapolated
    assert not follows(moved, box)
    big = face_landmarks.copy()
    centre = big[:, :2].mean(axis=0)
    big[:, :2] = centre + 1.6 * (big[:, :2] - centre)  # another face (or another scale) entirely
    assert not follows(big, box)
    far = FaceBox(tuple(np.asarray(box.box) + 10 * side), 1.0)
    assert not follows(face_landmarks, far)


def test_video_frames_follow_the_face_and_agree_with_detection(sample_store, tmp_path):
    from pipelines.run import run

    url, _ = sample_store
    g = zarr.open_group(url, mode="r")
    video = np.char.endswith(g["meta/video_id"][:].astype(str), ".mp4")
    assert video.sum() == 10
    sources = g["meta/face_source"][:][video].tolist()
    assert sources[0] == "detector" and sources[1:] == ["track"] * 9
    assert set(g["meta/face_source"][:][~video].tolist()) == {"detector"}  # images never follow

    out = str(tmp_path / "detect.zarr")
    run(sync_config(dataset="sample", root="", track=False), out, cluster="none", progress=False)
    d = zarr.open_group(out, mode="r")
    assert set(d["meta/face_source"][:].tolist()) == {"detector"}
    assert d["meta/sample_id"][:].tolist() == g["meta/sample_id"][:].tolist()
    # the same face, found two ways: landmarks within ~1 % of the 256 px crop, regions nearly equal
    diff = np.abs(g["landmarks"][:][video, :, :2] - d["landmarks"][:][video, :, :2]).mean(axis=(1, 2))
    assert diff.max() < 2.5, diff
    agree = (g["region"][:][video] == d["region"][:][video]).mean(axis=(1, 2))
    assert agree.min() > 0.95, agree


def test_a_face_that_jumps_away_is_found_again_by_the_detector(face_image, tmp_path):
    from pipelines.run import run

    # 2 sampled frames (0 and 19): the face in the top-left corner, then in the bottom-right one
    face = np.ascontiguousarray(face_image[0:240, 105:345])  # the astronaut's head, 240 x 240
    (tmp_path / "data" / "bonafide").mkdir(parents=True)
    frames = []
    for t in range(20):
        f = np.full((720, 960, 3), 180, np.uint8)
        y, x = (20, 20) if t < 10 else (460, 700)
        f[y:y + 240, x:x + 240] = face
        frames.append(f)
    write_video(tmp_path / "data" / "bonafide" / "jump.mp4", frames, rate=10)
    out = str(tmp_path / "jump.zarr")
    run(sync_config(dataset="folder", root=str(tmp_path / "data"), frames_per_video=2), out, cluster="none",
        progress=False)
    g = zarr.open_group(out, mode="r")
    assert g["meta/status"][:].tolist() == [0, 0]
    assert g["meta/frame_index"][:].tolist() == [0, 19]
    assert g["meta/face_source"][:].tolist() == ["detector", "detector"]
