"""`annotate run --landmarker fan`: stores of 68-point landmarks (ibug-68 layout), the batched
crop path, and --landmark-check with FaceMesh as the other landmarker.

FAN has only random weights here, so two stand-ins carry the real-value checks: MeshAs68 gives
FaceMesh's points through the 68 -> 478 map as a batched 68-point landmarker (so the store's labels
can be compared with FaceMesh's), and Batched runs FaceMesh itself through the batched path."""

import numpy as np
import pytest
import zarr
from helpers import SAMPLE, sync_config

from annotator.face.landmarks import FaceMeshLandmarker
from annotator.face.points68 import mesh_to_68
from annotator.core.samples import Status


class Batched:
    """FaceMesh through the batched-landmarker protocol (one `landmarks` call per group of faces)."""

    batched = True

    def __init__(self):
        self.mesh, self.calls = FaceMeshLandmarker(), []

    def __call__(self, frame, face, context=None):
        return self.mesh(frame, face)

    def landmarks(self, items):
        self.calls.append(len(items))
        return [self.mesh(f, b) for f, b in items]


class MeshAs68(Batched):
    """A 68-point landmarker: FaceMesh's points at the iBUG positions, z as FAN 2D would have it."""

    def __call__(self, frame, face, context=None):
        return self.landmarks([(frame, face)])[0]

    def landmarks(self, items):
        from annotator.face.layouts import fit_canonical_depth

        out = []
        for lm in super().landmarks(items):
            p = mesh_to_68(lm).copy()
            p[:, 2] = fit_canonical_depth(p)
            out.append(p)
        return out


def _models(landmarker):
    from annotator.face import DETECTORS
    from annotator.label import Policy
    from annotator.segment import SEGMENTERS
    from annotator.shard import Models

    return Models(DETECTORS.create("blazeface"), landmarker, SEGMENTERS.create("geometry"), Policy.default())


@pytest.fixture(scope="module")
def fan_store(tmp_path_factory, fan_weights):
    """The sample annotated with --landmarker fan, MeshAs68 standing in for FAN."""
    from pipelines.run import run

    out = str(tmp_path_factory.mktemp("fanstore") / "fan.zarr")
    cfg = sync_config(dataset="sample", root="", landmarker="fan", landmarker_options={"checkpoint": str(fan_weights)})
    run(cfg, out, cluster="none", progress=False, models=_models(MeshAs68()))
    return out


def test_a_fan_store_records_its_layout_and_its_labels_match_facemesh(fan_store, fan_weights, sample_store):
    from annotator.face.fan import sha256
    from annotator.store.verify import verify

    out = fan_store
    root, ref = zarr.open_group(out, mode="r"), zarr.open_group(sample_store[0], mode="r")
    assert root.attrs["landmark_layout"]["name"] == "ibug-68" and root.attrs["landmark_layout"]["points"] == 68
    assert ref.attrs["landmark_layout"]["name"] == "mediapipe-478"
    assert root["landmarks"].shape == (ref["landmarks"].shape[0], 68, 3)
    opts = root.attrs["config"]["landmarker_options"]
    assert opts["sha256"] == sha256(fan_weights) and root.attrs["provenance"]["landmarker"] == "fan"
    assert root.attrs["provenance"]["landmarker_sha256"] == opts["sha256"]
    assert verify(out, "full").problems == []
    from annotator.store.contents import read_contents

    assert "landmarks ibug-68" in read_contents(out).text().splitlines()[0]
    ok = (root["meta/status"][:] == 0) & (ref["meta/status"][:] == 0)
    assert ok.sum() >= 10
    lm, ref_lm = root["landmarks"][:][ok], ref["landmarks"][:][ok]
    # the same faces: FaceMesh's points at the 68 positions, in crops made from the 68 + derived points
    iod = np.linalg.norm(ref_lm[:, 263, :2] - ref_lm[:, 33, :2], axis=1)
    assert (np.abs(np.linalg.norm(lm[:, 45, :2] - lm[:, 36, :2], axis=1) / iod - 1) < 0.1).all()
    for reg, ref_reg, depth, ref_depth in zip(root["region"][:][ok], ref["region"][:][ok], root["depth"][:][ok],
                                              ref["depth"][:][ok]):
        a, b = np.bincount(ref_reg.ravel(), minlength=11), np.bincount(reg.ravel(), minlength=11)
        for rid in (1, 2, 3, 5, 6, 8):
            assert 0.7 < b[rid] / a[rid] < 1.3, (rid, a[rid], b[rid])
        assert 0.5 < b[4] / a[4] < 1.1
        assert abs((depth > 0).sum() / (ref_depth > 0).sum() - 1) < 0.15
    from annotator.label import Policy

    policy = Policy.default()  # each label is the policy's fusion of the row's own regions and depth
    for i in np.nonzero(ok)[0]:
        expected = policy.fuse(root["region"][i], root["depth"][i], str(root["meta/attack_type"][i]), root["landmarks"][i])
        assert np.array_equal(root["label"][i], expected)
    assert set(root["pyramid"].array_keys()) == set(ref["pyramid"].array_keys())


@pytest.mark.parametrize("which", ["fan", "mediapipe"])
def test_export_face_boxes_are_the_squares_the_crops_were_cut_around(which, fan_store, sample_store):
    """The box an export writes (CDCN's .dat) from a row's landmarks is the square the crop was cut
    around: centred, side = crop side / box scale (with ibug-68's derived forehead in the extent)."""
    from annotator.export.base import face_box

    root = zarr.open_group(fan_store if which == "fan" else sample_store[0], mode="r")
    size, scale = root["image"].shape[1], root.attrs["config"]["box_scale"]
    side = size / scale
    found = root["landmarks"][:][root["meta/status"][:] == 0]
    assert len(found) >= 10, f"only {len(found)} usable rows"
    for lm in found:
        np.testing.assert_allclose(face_box(lm, size), ((size - side) / 2, (size - side) / 2, side, side), atol=0.05)


def test_mcrea_augments_a_fan_store(fan_store, tmp_path):
    from annotator.augment.store import augment_store
    from annotator.store.verify import verify

    out = str(tmp_path / "aug.zarr")
    res = augment_store(fan_store, out, 1.0, 1, "integrated", 1, 0, False)
    root = zarr.open_group(out, mode="r")
    assert res["exchanges"] > 0 and root["landmarks"].shape[1:] == (68, 3)
    assert root.attrs["landmark_layout"]["name"] == "ibug-68"
    assert verify(out, "full").problems == []
    src = zarr.open_group(fan_store, mode="r")
    changed = (root["image"][:] != src["image"][:]).any(axis=(1, 2, 3))
    assert changed.sum() >= res["augmented"] > 0


def test_the_batched_path_equals_the_per_frame_one():
    """FaceMesh through the batched protocol writes what it writes frame by frame without
    following (--no-track): same crops, landmarks, rotations, statuses; in two landmarker calls."""
    from annotator.shard import crop_faces
    from pipelines.prepare import enumerate_samples

    cfg = sync_config(dataset="sample", root="", track=False)
    refs = enumerate_samples(cfg)[0]
    batched = Batched()
    a = crop_faces(refs, cfg, _models(batched))
    b = crop_faces(refs, cfg, _models(FaceMeshLandmarker()))
    assert any(r.is_video for r in refs) and len(batched.calls) == 2  # first frames, then the rest
    assert sum(batched.calls) == sum(s == 0 for s in a.meta["status"])
    for k in ("status", "rotation", "frame_index", "n_faces", "face_source"):
        assert a.meta[k] == b.meta[k], k
    assert np.array_equal(a.arrays["image"], b.arrays["image"])
    np.testing.assert_array_equal(a.arrays["landmarks"], b.arrays["landmarks"])
    assert set(a.faced) == set(b.faced)


def test_landmark_check_beside_fan_uses_facemesh(fan_weights):
    """With --landmarker fan the check's other landmarker is FaceMesh: the row's 68 points against
    FaceMesh's on the same box; a shifted face fails."""
    from annotator.shard import build_models, check_landmarks, crop_faces
    from pipelines.prepare import enumerate_samples

    cfg = sync_config(dataset="sample", root="", landmarker="fan",
                      landmarker_options={"checkpoint": str(fan_weights)}, landmark_check={"max_nme": 0.1})
    assert isinstance(build_models(cfg).checker, FaceMeshLandmarker)
    refs = [r for r in enumerate_samples(cfg)[0] if r.is_attack][:3]  # three images
    rows = crop_faces(refs, cfg, _models(MeshAs68()))
    assert rows.faced == [0, 1, 2]
    rows.arrays["landmarks"][1, :, 0] += 0.3 * np.linalg.norm(rows.arrays["landmarks"][1, 45, :2]
                                                             - rows.arrays["landmarks"][1, 36, :2])
    rows.items[1] = type(rows.items[1])(*[rows.arrays["landmarks"][1] if f == "landmarks" else getattr(rows.items[1], f)
                                          for f in ("frame", "crop_matrix", "size", "landmarks", "attack_type")])
    check_landmarks(rows, FaceMeshLandmarker(), 0.1)
    nme = np.array(rows.meta["landmark_nme"], float)
    assert nme[0] < 1e-3 and nme[2] < 1e-3 and nme[1] == pytest.approx(0.3, rel=0.05)
    assert rows.meta["status"] == [0, int(Status.LANDMARK_DISAGREEMENT), 0] and rows.faced == [0, 2]


def test_cli_runs_fan_with_its_weights_and_refuses_without(tmp_path, fan_weights):
    from click.testing import CliRunner

    from pipelines.cli import cli
    from annotator.store.verify import verify

    out = tmp_path / "f.zarr"
    r = CliRunner().invoke(cli, ["run", "--dataset", "sample", "--out", str(out), "--cluster", "none",
                                 "--landmarker", "fan", "--fan-checkpoint", str(tmp_path / "missing.pth.tar")])
    assert r.exit_code == 1 and "--fan-checkpoint 2DFAN4-11f355bf06.pth.tar is not at" in r.output, r.output
    assert "Traceback" not in r.output and not out.exists()
    r = CliRunner().invoke(cli, ["run", "--dataset", "sample", "--out", str(out), "--cluster", "none", "--limit", "2",
                                 "--landmarker", "fan", "--fan-checkpoint", str(fan_weights), "--device", "cpu",
                                 "--max-failure-rate", "1"])
    assert r.exit_code == 0, r.output
    root = zarr.open_group(str(out), mode="r")
    assert root["landmarks"].shape == (2, 68, 3) and root.attrs["config"]["landmarker"] == "fan"
    ok = root["meta/status"][:] == 0
    assert np.isfinite(root["landmarks"][:][ok]).all()  # random weights: points, not meaning (or none found)
    assert verify(str(out), "full").problems == []


def test_verify_reads_the_layout_from_the_store(tmp_path):
    from annotator import store
    from annotator.face.layouts import IBUG_68
    from annotator.store.verify import verify

    url = str(tmp_path / "v.zarr")
    store.create(url, 4, 32, 2, [], {"config": {}, "landmark_layout": IBUG_68.attrs()})
    assert zarr.open_group(url, mode="r")["landmarks"].shape == (4, 68, 3)
    assert not [p for p in verify(url, "quick").problems if "landmarks" in p.text]
    root = zarr.open_group(url, mode="r+")
    root.attrs["landmark_layout"] = {"name": "mediapipe-478", "points": 478}
    assert [p for p in verify(url, "quick").problems if p.text.startswith("landmarks")]
    for bad in ({"name": "dlib-5", "points": 5}, "ibug-68"):
        root.attrs["landmark_layout"] = bad
        assert [p for p in verify(url, "quick").problems if "landmark_layout" in p.text and "none of" in p.text]
