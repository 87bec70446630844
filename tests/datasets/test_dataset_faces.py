"""--use-dataset-faces: the dataset's own face locations replace the detector, and the store says so."""

import numpy as np
import pytest
import zarr

from annotator.media.decode import read_video_frames
from annotator.face.annotations import box_for_frame, read_face_file
from annotator.face.detect import BlazeFaceDetector
from annotator.face.landmarks import FaceMeshLandmarker
from annotator.core.samples import Status
from helpers import sync_config


@pytest.fixture(scope="module")
def clip_faces(sample_root):
    """The bundled clip's bytes, and per sampled frame (2 slots) its detected box and eye centres."""
    path = sample_root / "bonafide" / "astronaut_pan.mp4"
    idx, frames, _ = read_video_frames(str(path), 2)
    det, mesh = BlazeFaceDetector(), FaceMeshLandmarker()
    info = []
    for i, f in zip(idx, frames):
        box = det(f)[0]
        lm = mesh(f, box)
        info.append((int(i), box.box, lm[468, :2], lm[473, :2]))
    return path.read_bytes(), info


def test_face_file_formats(tmp_path):
    f = tmp_path / "a.face"
    f.write_text("0 10 20 30 40\n5, 12, 22, 30, 40\n7 0 0 0 0\n")
    boxes = read_face_file(str(f), "xywh")
    assert sorted(boxes) == [0, 5] and boxes[0].box == (10, 20, 40, 60)
    assert box_for_frame(str(f), "xywh", 4).box == (12, 22, 42, 62)  # nearest annotated frame
    e = tmp_path / "e.txt"
    e.write_text("0,100,100,140,100\n")
    (x0, y0, x1, y1), = [b.box for b in read_face_file(str(e), "eyes").values()]
    assert (x1 - x0, y1 - y0) == (80, 80) and (x0 + x1) / 2 == 120 and (y0 + y1) / 2 == 116


def _replay_tree(root, clip, lines_good, lines_bad):
    real = root / "train" / "real"
    real.mkdir(parents=True)
    (real / "client001_session01_webcam_authenticate_adverse_1.mov").write_bytes(clip)
    (real / "client002_session01_webcam_authenticate_adverse_1.mov").write_bytes(clip)
    for g in ("devel", "test"):
        (root / g).mkdir()
    loc = root / "face-locations" / "train" / "real"
    loc.mkdir(parents=True)
    (loc / "client001_session01_webcam_authenticate_adverse_1.face").write_text(lines_good)
    (loc / "client002_session01_webcam_authenticate_adverse_1.face").write_text(lines_bad)


def test_replay_face_locations_replace_the_detector(tmp_path, clip_faces):
    from pipelines.run import run

    clip, info = clip_faces
    good = "".join(f"{i} {b[0]:.0f} {b[1]:.0f} {b[2] - b[0]:.0f} {b[3] - b[1]:.0f}\n" for i, b, _, _ in info)
    bad = "".join(f"{i} 2 2 40 40\n" for i, _, _, _ in info)  # a corner of the wall: no face there
    root = tmp_path / "replay"
    _replay_tree(root, clip, good, bad)
    out = str(tmp_path / "r.zarr")
    run(sync_config(dataset="replay-attack", root=str(root), frames_per_video=2, use_dataset_faces=True), out,
        cluster="none", progress=False)
    g = zarr.open_group(out, mode="r")
    assert g.attrs["config"]["use_dataset_faces"] is True
    assert g["meta/face_source"][:].tolist() == ["dataset"] * 4
    status = g["meta/status"][:].tolist()
    assert status[:2] == [Status.OK, Status.OK]
    assert status[2:] == [Status.NO_LANDMARKS, Status.NO_LANDMARKS]  # the bad box was used, not the detector
    out2 = str(tmp_path / "d.zarr")
    run(sync_config(dataset="replay-attack", root=str(root), frames_per_video=2), out2, cluster="none", progress=False)
    g2 = zarr.open_group(out2, mode="r")
    assert g2["meta/face_source"][:].tolist() == ["detector", "track"] * 2 and (g2["meta/status"][:] == 0).all()
    # with the true box the landmarks match the detector's run closely
    assert np.abs(g["landmarks"][:2] - g2["landmarks"][:2]).max() < 8


def test_oulu_eye_files(tmp_path, clip_faces):
    from pipelines.run import run

    clip, info = clip_faces
    root = tmp_path / "OULU"
    for folder in ("Train_files", "Dev_files", "Test_files"):
        (root / folder).mkdir(parents=True)
    (root / "Train_files" / "1_1_01_1.avi").write_bytes(clip)
    (root / "Train_files" / "1_1_01_1.txt").write_text(
        "".join(f"{i},{r[0]:.1f},{r[1]:.1f},{l[0]:.1f},{l[1]:.1f}\n" for i, _, r, l in info))
    (root / "Protocols" / "Protocol_1").mkdir(parents=True)
    (root / "Protocols" / "Protocol_1" / "Train.txt").write_text("+1,1_1_01_1\n")
    out = str(tmp_path / "o.zarr")
    run(sync_config(dataset="oulu-npu", root=str(root), frames_per_video=2, use_dataset_faces=True), out,
        cluster="none", progress=False)
    g = zarr.open_group(out, mode="r")
    assert g["meta/face_source"][:].tolist() == ["dataset", "dataset"]
    assert (g["meta/status"][:] == 0).all()
