"""WMCA in its preprocessed (RGB + CDIT HDF5 pairs) and raw layouts, built with h5py from a real face."""

import cv2
import h5py
import numpy as np
import pytest
import zarr

from annotator.datasets import DATASETS
from annotator.core.errors import AnnotatorError
from annotator.core.samples import Status

SIZE = 128


def face_frame(face_image):
    return cv2.resize(face_image[20:280, 110:370], (SIZE, SIZE), interpolation=cv2.INTER_AREA)  # HWC RGB


def dome():
    """Sensor distance: nearest (smallest) at the image centre; a corner without readings (0)."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    d = 100 + 0.01 * ((x - 64) ** 2 + (y - 64) ** 2)
    d[:10, :10] = 0
    return d.astype(np.uint8)


def write_pair(root, stem, face, frames=(0, 1, 2, 3), depth_frames=(0, 1, 3)):
    rel = f"WMCA/face-station/26.02.18/{stem}.hdf5"
    rgb = root / "WMCA_preprocessed_RGB" / rel
    rgb.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(rgb, "w") as f:
        for i in frames:
            f.create_dataset(f"Frame_{i}/array", data=face[..., ::-1].transpose(2, 0, 1))  # BGR CHW
    if depth_frames is not None:
        cdit = root / "WMCA_preprocessed_CDIT" / rel
        cdit.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(cdit, "w") as f:
            for i in depth_frames:
                gray = face.mean(axis=2).astype(np.uint8)
                f.create_dataset(f"Frame_{i}/array", data=np.stack([gray, dome(), gray, gray]))


@pytest.fixture
def wmca_root(tmp_path, face_image):
    root = tmp_path / "WMCA"
    face = face_frame(face_image)
    write_pair(root, "001_01_001_0_00", face)
    write_pair(root, "002_01_002_3_05", face)
    write_pair(root, "003_01_003_2_09", face, depth_frames=None)
    (root / "PROTOCOL-grandtest.csv").write_text(
        "path,label,group\n"
        "face-station/26.02.18/001_01_001_0_00,0,train\n"
        "face-station/26.02.18/002_01_002_3_05,1,dev\n"
        "face-station/26.02.18/003_01_003_2_09,1,eval\n")
    (root / "protocols").mkdir()
    (root / "protocols" / "PROTOCOL-LOO_prints.csv").write_text(
        "face-station/26.02.18/001_01_001_0_00,0,eval\nface-station/26.02.18/003_01_003_2_09,1,train\n")
    return root


def test_enumeration_types_and_protocols(wmca_root):
    adapter = DATASETS.create("wmca", root=str(wmca_root), frames_per_video=2)
    derived = ["LOO_fakehead", "LOO_flexiblemask", "LOO_glasses", "LOO_papermask", "LOO_replay", "LOO_rigidmask"]
    assert adapter.protocol_names() == sorted(["LOO_prints", "grandtest"] + derived)
    refs = list(adapter.samples())
    assert len(refs) == 6
    by = {r.pai: r for r in refs if r.slot == 0}
    assert (by["0_00"].attack_type, by["3_05"].attack_type, by["2_09"].attack_type) == ("bonafide", "replay", "paper_mask")
    assert by["0_00"].protocols["grandtest"] == 0 and by["0_00"].protocols["LOO_prints"] == 2  # its CSV
    assert by["3_05"].protocols["grandtest"] == 1 and by["3_05"].protocols["LOO_prints"] == -1
    assert by["2_09"].protocols["grandtest"] == 2 and by["2_09"].protocols["LOO_prints"] == 0
    # derived as bob.pad.face does: the left-out type is tested on grandtest's eval files only
    assert by["3_05"].protocols["LOO_replay"] == -1 and by["2_09"].protocols["LOO_papermask"] == 2
    assert by["0_00"].subject == "001" and by["0_00"].extra == {"session": "01", "presenter": "001"}
    assert "depth_file" in by["0_00"].media and "depth_file" not in by["2_09"].media


def test_canonical_table_spot_checks():
    from annotator.datasets.wmca import PAI_TYPES

    assert PAI_TYPES[(1, 10)] == "wig" and PAI_TYPES[(1, 16)] == "glasses" and PAI_TYPES[(1, 13)] == "rigid_mask"
    assert PAI_TYPES[(2, 18)] == "flexible_mask" and PAI_TYPES[(2, 80)] == "flexible_mask"
    assert PAI_TYPES[(3, 15)] == "replay" and PAI_TYPES[(3, 14)] == "print" and PAI_TYPES[(4, 18)] == "replay"
    assert (2, 50) not in PAI_TYPES and (0, 3) not in PAI_TYPES and (4, 19) not in PAI_TYPES
    from annotator.datasets.wmca import attack_type

    assert attack_type(5, 3) == attack_type(5, 139) == "makeup" and attack_type(2, 50) is None


def test_errors(wmca_root, face_image, tmp_path):
    write_pair(wmca_root, "004_01_004_0_07", face_frame(face_image))
    with pytest.raises(AnnotatorError, match=r"\(0, 07\) has no canonical mapping"):
        list(DATASETS.create("wmca", root=str(wmca_root)).samples())
    (wmca_root / "PROTOCOL-bad.csv").write_text("../../secret,0,train\n")
    with pytest.raises(AnnotatorError, match=r"without '\.\.'"):
        DATASETS.create("wmca", root=str(wmca_root))
    (wmca_root / "PROTOCOL-bad.csv").write_text("face-station/26.02.18/001_01_001_0_00,0,holdout\n")
    with pytest.raises(AnnotatorError, match="group train/dev/eval"):
        DATASETS.create("wmca", root=str(wmca_root))


def test_run_uses_the_sensor_depth(wmca_root, tmp_path):
    from helpers import sync_config
    from pipelines.run import run

    out = str(tmp_path / "wmca.zarr")
    run(sync_config(dataset="wmca", root=str(wmca_root), frames_per_video=2, size=128), out,
        cluster="none", progress=False)
    g = zarr.open_group(out, mode="r")
    status, src = g["meta/status"][:], g["meta/depth_source"][:]
    assert (status == Status.OK).all(), g["meta/error"][:]
    pai = g["meta/pai"][:]
    assert [s for p, s in zip(pai, src)] == ["sensor", "sensor", "sensor", "sensor", "pseudo", "pseudo"]
    # frames present in both files are 0, 1, 3: two evenly sampled ones are 0 and 3
    assert g["meta/frame_index"][:4].tolist() == [0, 3, 0, 3]
    assert g["protocols/grandtest"][:].tolist() == [0, 0, 1, 1, 2, 2]
    assert g["protocols/LOO_replay"][:].tolist() == [0, 0, -1, -1, -1, -1]
    depth, region = g["depth"][0].astype(float), g["region"][0]
    face = np.isin(region, (1, 2, 3, 4, 5))
    assert (depth[~face] == 0).all() and (depth[face] > 0).mean() > 0.9
    # the dome is nearest at the frame centre, which is near the face centre: depth falls outwards
    ys, xs = np.nonzero(face)
    dist = np.hypot(xs - xs.mean(), ys - ys.mean())
    near, far = depth[ys[dist < np.percentile(dist, 20)], xs[dist < np.percentile(dist, 20)]].mean(), \
        depth[ys[dist > np.percentile(dist, 80)], xs[dist > np.percentile(dist, 80)]].mean()
    assert near > far + 30
    label = g["label"][0]
    assert label[0].sum() == 0 and (label[1][face] == g["depth"][0][face]).all()  # bona fide: live = D


def test_raw_layout_stacks(tmp_path, face_image):
    root = tmp_path / "raw"
    p = root / "face-station" / "12.01.18" / "005_02_005_4_01.hdf5"
    p.parent.mkdir(parents=True)
    face = face_frame(face_image)
    with h5py.File(p, "w") as f:
        f.create_dataset("intelsr300_bgr", data=np.stack([face[..., ::-1]] * 5))
    (root / "PROTOCOL-grandtest.csv").write_text("face-station/12.01.18/005_02_005_4_01,1,train\n")
    refs = list(DATASETS.create("wmca", root=str(root), frames_per_video=2).samples())
    assert [r.attack_type for r in refs] == ["replay", "replay"] and refs[0].media["kind"] == "stacks"
    from annotator.shard import load_frames

    (i0, f0, d0, _), (i1, f1, d1, _) = load_frames(refs)
    assert (i0, i1) == (0, 4) and d0 is None and (f0 == face).all()


def test_loo_protocols_derived_from_grandtest(tmp_path, face_image):
    root = tmp_path / "WMCA"
    face = face_frame(face_image)
    stems = {"001_01_001_0_00": "train", "002_01_002_0_01": "eval", "003_01_003_3_01": "train",
             "004_01_004_3_02": "eval", "005_01_005_2_01": "dev", "006_01_006_2_02": "eval"}
    for stem in stems:
        write_pair(root, stem, face, frames=(0,), depth_frames=None)
    (root / "PROTOCOL-grandtest.csv").write_text(
        "".join(f"face-station/26.02.18/{s},{int(s[-4] != '0')},{g}\n" for s, g in stems.items()))
    (root / "PROTOCOL-LOO_glasses.csv").write_text(f"face-station/26.02.18/001_01_001_0_00,0,train\n")
    refs = {r.source.rsplit("/", 1)[-1][:-5]: r for r in DATASETS.create("wmca", root=str(root), frames_per_video=1).samples()}
    prints = {s: r.protocols["LOO_prints"] for s, r in refs.items()}
    # train and dev lose the prints (type 3); eval keeps grandtest's eval prints and bona fide only
    assert prints == {"001_01_001_0_00": 0, "002_01_002_0_01": 2, "003_01_003_3_01": -1, "004_01_004_3_02": 2,
                      "005_01_005_2_01": 1, "006_01_006_2_02": -1}
    fake = {s: r.protocols["LOO_fakehead"] for s, r in refs.items()}
    assert fake == {"001_01_001_0_00": 0, "002_01_002_0_01": 2, "003_01_003_3_01": 0, "004_01_004_3_02": -1,
                    "005_01_005_2_01": -1, "006_01_006_2_02": 2}
    assert refs["002_01_002_0_01"].protocols["LOO_glasses"] == -1  # its own CSV wins over derivation
    assert sorted(refs["001_01_001_0_00"].protocols) == sorted(
        ["grandtest", "LOO_glasses", "LOO_fakehead", "LOO_flexiblemask", "LOO_papermask", "LOO_prints",
         "LOO_replay", "LOO_rigidmask"])


@pytest.mark.parametrize("where", ["wmca-protocols-csv", "WMCA/wmca-protocols-csv", "WMCA/bob", "protocols", "."])
@pytest.mark.parametrize("header", [True, False])
def test_protocol_files_where_the_distribution_keeps_them(tmp_path, face_image, where, header):
    root = tmp_path / "WMCA"
    face = face_frame(face_image)
    write_pair(root, "001_01_001_0_00", face, frames=(0,), depth_frames=None)
    write_pair(root, "007_01_007_5_139", face, frames=(0,), depth_frames=None)  # makeup, three-digit pai
    d = root / where
    d.mkdir(parents=True, exist_ok=True)
    (d / "PROTOCOL-grandtest.csv").write_text(("path,label,group\n" if header else "")
                                              + "face-station/26.02.18/001_01_001_0_00,0,dev\n")
    refs = {r.pai: r for r in DATASETS.create("wmca", root=str(root), frames_per_video=1).samples()}
    assert refs["0_00"].protocols["grandtest"] == 1 and refs["5_139"].protocols["grandtest"] == -1
    assert refs["5_139"].attack_type == "makeup"


def test_no_protocol_files_annotates_without_protocols(tmp_path, face_image):
    root = tmp_path / "WMCA"
    write_pair(root, "001_01_001_0_00", face_frame(face_image), frames=(0,), depth_frames=None)
    a = DATASETS.create("wmca", root=str(root), frames_per_video=1)
    assert a.protocol_names() == [] and "no protocol files found" in a.findings.notes[0]
    assert [r.attack_type for r in a.samples()] == ["bonafide"]
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "PROTOCOL-grandtest.csv").write_text("face-station/26.02.18/001_01_001_0_00,0,train\n")
    b = DATASETS.create("wmca", root=str(root), frames_per_video=1, protocol_dir=str(lists))
    assert [r.protocols["grandtest"] for r in b.samples()] == [0]


def test_raw_release_h5_extension(tmp_path, face_image):
    root = tmp_path / "raw"
    p = root / "face-station" / "12.01.18" / "005_02_005_0_01.h5"
    p.parent.mkdir(parents=True)
    with h5py.File(p, "w") as f:
        f.create_dataset("intelsr300_bgr", data=np.stack([face_frame(face_image)[..., ::-1]] * 3))
    refs = list(DATASETS.create("wmca", root=str(root), frames_per_video=1).samples())
    assert [(r.source, r.attack_type) for r in refs] == [("face-station/12.01.18/005_02_005_0_01.h5", "bonafide")]
