"""Crops that map back (docs/store.md, "Mapping a crop back"): each row's `transform` takes the
frame as stored to the crop, so that labels land back on the frame; verify checks the arrays where a
store has them, and stores without them (written before) still open, verify, resume and export."""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import zarr

from annotator import store
from annotator.media.decode import read_image, read_video_frames
from annotator.shard import output_crop
from helpers import SAMPLE, assert_same_store, invoke, problems, sync_config


def to_frame(transform: np.ndarray, xy: np.ndarray) -> np.ndarray:
    inverse = cv2.invertAffineTransform(transform)
    return xy @ inverse[:, :2].T + inverse[:, 2]


def row_of(root, source: str) -> int:
    return root["meta/source"][:].tolist().index(source)


def test_a_crops_landmarks_map_back_onto_the_frame(sample_store, face_landmarks):
    url, _ = sample_store
    root = zarr.open_group(url, mode="r")
    assert root["transform"].shape == (root["image"].shape[0], 2, 3) and root["transform"].dtype == np.float64
    i = row_of(root, "bonafide/astronaut.jpg")
    assert root["meta/rotation"][i] == 0 and not root["meta/mirrored"][i]
    assert (root["meta/frame_height"][i], root["meta/frame_width"][i]) == (512, 512)
    back = to_frame(root["transform"][i], root["landmarks"][i][:, :2].astype(np.float64))
    # FaceMesh run on the frame itself (the fixture) finds the same points the row's crop holds
    err = np.linalg.norm(back - face_landmarks[:, :2], axis=1)
    assert err.max() < 0.01, err.max()


def test_a_label_pasted_back_with_the_inverse_lands_on_the_face(sample_store, face_landmarks):
    """docs/store.md's recipe: warp the crop's label channel with the inverse transform into the frame."""
    url, _ = sample_store
    root = zarr.open_group(url, mode="r")
    i = row_of(root, "bonafide/astronaut.jpg")
    h, w = int(root["meta/frame_height"][i]), int(root["meta/frame_width"][i])
    live = root["label"][i, 1]
    on_frame = cv2.warpAffine(live, root["transform"][i], (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_NEAREST)
    nose = np.rint(face_landmarks[4, :2]).astype(int)  # FaceMesh's nose tip, in frame pixels
    assert on_frame[nose[1], nose[0]] > 0
    scale = root["transform"][i][0, 0]  # crop pixels per frame pixel (no turn here)
    assert abs((on_frame > 0).sum() * scale ** 2 / (live > 0).sum() - 1) < 0.05  # the same area, scaled back
    x0, y0 = face_landmarks[:, :2].min(axis=0) - 0.3 * np.ptp(face_landmarks[:, :2], axis=0)
    x1, y1 = face_landmarks[:, :2].max(axis=0) + 0.3 * np.ptp(face_landmarks[:, :2], axis=0)
    ys, xs = np.nonzero(on_frame)
    assert xs.min() >= x0 and xs.max() <= x1 and ys.min() >= y0 and ys.max() <= y1  # around the face
    # and the frame warped forward is the row's crop
    frame = read_image(str(SAMPLE / "bonafide" / "astronaut.jpg"))
    size = root["image"].shape[1]
    assert np.abs(cv2.warpAffine(frame, root["transform"][i], (size, size)).astype(int) - root["image"][i]).max() == 0
    # docs/store.md's recrop: k times the context at side S2 is what the cropper cuts with box_scale * k
    k, s2 = 1.5, 96
    a = s2 / (size * k)
    new = a * root["transform"][i]
    new[:, 2] = a * (root["transform"][i][:, 2] - size / 2) + s2 / 2
    box_scale = root.attrs["config"]["box_scale"]
    assert np.allclose(new, output_crop(face_landmarks, box_scale * k, s2), atol=1e-6)


class OneFrame:
    """A sampling rule (annotator/media/sampling.py's interface) that takes one given frame."""

    def __init__(self, index: int):
        self.index, self.spec = index, f"frame {index}"

    def indices(self, n: int) -> np.ndarray:
        return np.array([self.index], np.int64)


def test_a_video_rows_transform_starts_from_its_decoded_frame(sample_store):
    url, _ = sample_store
    root = zarr.open_group(url, mode="r")
    i = row_of(root, "bonafide/astronaut_pan.mp4") + 3
    _, frames, orientation = read_video_frames(str(SAMPLE / "bonafide" / "astronaut_pan.mp4"), 1,
                                            sampling=OneFrame(int(root["meta/frame_index"][i])))
    frame = frames[0]
    assert orientation.is_identity and frame.shape[:2] == (root["meta/frame_height"][i], root["meta/frame_width"][i])
    size = root["image"].shape[1]
    assert np.abs(cv2.warpAffine(frame, root["transform"][i], (size, size)).astype(int) - root["image"][i]).max() == 0


def test_failed_rows_have_nan_transforms_and_the_frame_size_when_decoded(messy_root, tmp_path):
    from pipelines.run import run

    out = str(tmp_path / "m.zarr")
    run(sync_config(dataset="folder", root=str(messy_root)), out, cluster="none", progress=False)
    g = zarr.open_group(out, mode="r")
    ok = g["meta/status"][:] == 0
    t = g["transform"][:]
    assert ok.any() and (~ok).any()
    assert np.isfinite(t[ok]).all() and np.isnan(t[~ok]).all()
    sources = g["meta/source"][:].tolist()
    sizes = dict(zip(sources, zip(g["meta/frame_height"][:].tolist(), g["meta/frame_width"][:].tolist())))
    assert sizes["bonafide/d_noface.png"] == (240, 320)  # decoded, no face: its size all the same
    assert sizes["bonafide/c_corrupt.jpg"] == (0, 0)  # never decoded
    assert problems(out) == []


# ------------------------------------------------------------------ verify, older stores


@pytest.fixture
def copy(sample_store, tmp_path) -> Path:
    url = tmp_path / "c.zarr"
    shutil.copytree(sample_store[0], url)
    return url


def make_old(url: Path) -> None:
    """The store as a release before the transform wrote it: no `transform`, no frame columns."""
    for name in ("transform", "meta/mirrored", "meta/frame_height", "meta/frame_width"):
        shutil.rmtree(url / name)
    store.finalize(str(url))


def test_a_store_without_the_arrays_verifies_inspects_exports_augments_and_resumes(copy, tmp_path):
    from annotator.export import export_store

    make_old(copy)
    assert problems(str(copy)) == []
    r = invoke("inspect", copy)
    assert r.exit_code == 0 and "2 of 2 shards committed" in r.output, r.output
    res = export_store(str(copy), "folder", str(tmp_path / "exported"), protocol="all", progress=False)
    assert len(list((tmp_path / "exported").rglob("*.png"))) == 15 * 4, res
    r = invoke("augment", copy, "--out", tmp_path / "aug.zarr")  # its copy has no transform either
    assert r.exit_code == 0 and "transform" not in zarr.open_group(str(tmp_path / "aug.zarr"), mode="r"), r.output
    assert problems(str(tmp_path / "aug.zarr")) == []
    (copy / store.SHARDS_DIR / "000001.json").unlink()  # a resume writes its rows without the new arrays
    from pipelines.run import run

    summary = run(sync_config(dataset="sample", root=""), str(copy), cluster="none", progress=False)
    assert summary.skipped_shards == 1
    g = zarr.open_group(str(copy), mode="r")
    assert "transform" not in g and "frame_height" not in g["meta"]
    assert problems(str(copy)) == []


def test_verify_checks_the_transform_and_frame_size_values(copy):
    root = zarr.open_group(str(copy), mode="r+")
    with zarr.config.set(store.WRITE_CONFIG):
        t = root["transform"][10:15]
        t[1, 0, 0] = np.nan  # row 11: usable, non-finite
        t[2, :, :2] = 0  # row 12: usable, maps the frame onto a point
        root["transform"][10:15] = t
        h = root["meta/frame_width"][10:15]
        h[3] = 0  # row 13: usable, no frame size
        h[4] = -5  # row 14: negative
        root["meta/frame_width"][10:15] = h
    found = problems(str(copy))
    where = "chunk 1 (shard 1, rows 10-14)"
    assert sorted(found) == [
        f"meta/frame_width {where}: rows [13, 14] with status 0 and a transform record no frame size",
        f"meta/frame_width {where}: rows [14] have a negative frame size",
        f"transform {where}: rows [11] with status 0 have non-finite transforms",
        f"transform {where}: rows [12]: the transform is not invertible",
    ], found


def test_verify_wants_nan_transforms_on_failed_rows(copy):
    root = zarr.open_group(str(copy), mode="r+")
    with zarr.config.set(store.WRITE_CONFIG):
        status = root["meta/status"][10:15]
        status[0] = 2
        root["meta/status"][10:15] = status
    found = [p for p in problems(str(copy)) if p.startswith("transform")]
    assert found == ["transform chunk 1 (shard 1, rows 10-14): failed rows [10]: transforms are not NaN"]


def test_a_deleted_transform_is_damage_that_repair_and_a_rerun_mend(sample_store, copy):
    shutil.rmtree(copy / "transform")
    assert problems(str(copy)) == ["missing array 'transform'"]  # the consolidated copy still lists it
    r = invoke("verify", copy, "--repair")
    assert "recreated transform empty" in r.output, r.output
    from pipelines.run import run

    run(sync_config(dataset="sample", root=""), str(copy), cluster="none", progress=False)
    assert_same_store(copy, sample_store[0])
