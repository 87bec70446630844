"""Miniature trees in each public dataset's exact layout: enumeration, metadata, protocols, errors."""

import numpy as np
import pytest
import zarr

from annotator.datasets import DATASETS
from annotator.errors import AnnotatorError
from annotator.samples import Status


@pytest.fixture(scope="module")
def clip(sample_root):
    """Bytes of a short real-face video (the bundled one); FFmpeg probes content, not extensions."""
    return (sample_root / "bonafide" / "astronaut_pan.mp4").read_bytes()


def touch(path, data=b""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def rows(name, root, k=1):
    return list(DATASETS.create(name, root=str(root), frames_per_video=k).samples())


@pytest.mark.parametrize("name", [n for n in DATASETS.names() if n != "sample"])
def test_every_adapter_describes_itself_and_rejects_a_wrong_root(name, tmp_path):
    assert len(DATASETS.get(name).description) > 60
    with pytest.raises(AnnotatorError):
        DATASETS.create(name, root=str(tmp_path / "missing"), frames_per_video=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnnotatorError):
        list(DATASETS.create(name, root=str(tmp_path / "empty"), frames_per_video=1).samples())


def oulu_tree(root, clip):
    for folder, users in (("Train_files", ("01", "02")), ("Dev_files", ("21",)), ("Test_files", ("36",))):
        for u in users:
            for f in (1, 2, 5):
                touch(root / folder / f"1_3_{u}_{f}.avi", clip)
    p = root / "Protocols"
    touch(p / "Protocol_1" / "Train.txt", b"+1,1_3_01_1\n-1,1_3_01_2\n")
    touch(p / "Protocol_1" / "Dev.txt", b"+1,1_3_21_1\n")
    touch(p / "Protocol_1" / "Test.txt", b"+1,1_3_36_1\n-1,1_3_36_5\n")
    touch(p / "Protocol_3" / "Train_2.txt", b"+1,1_3_02_1\n")
    touch(p / "Protocol_3" / "Test_2.txt", b"-1,1_3_36_2\n")
    return root


def test_oulu_npu(tmp_path, clip):
    root = oulu_tree(tmp_path / "OULU", clip)
    refs = rows("oulu-npu", root, k=2)
    assert len(refs) == 4 * 3 * 2
    by = {r.sample_id: r for r in refs}
    r = by["Train_files/1_3_01_2.avi#1"]
    assert (r.attack_type, r.is_attack, r.pai, r.subject, r.split) == ("print", True, "2", "01", "train")
    assert r.extra == {"phone": "1", "session": "3"} and r.slot == 1 and r.n_slots == 2
    assert by["Test_files/1_3_36_5.avi#0"].attack_type == "replay"
    assert by["Dev_files/1_3_21_1.avi#0"].attack_type == "bonafide"
    assert DATASETS.create("oulu-npu", root=str(root)).protocol_names() == ["Protocol_1", "Protocol_3_2"]
    p1 = {r.source: r.protocols["Protocol_1"] for r in refs}
    assert p1["Train_files/1_3_01_1.avi"] == 0 and p1["Dev_files/1_3_21_1.avi"] == 1
    assert p1["Test_files/1_3_36_5.avi"] == 2 and p1["Train_files/1_3_02_1.avi"] == -1
    p32 = {r.source: r.protocols["Protocol_3_2"] for r in refs}
    assert p32["Train_files/1_3_02_1.avi"] == 0 and p32["Test_files/1_3_36_2.avi"] == 2
    assert sum(v != -1 for v in p32.values()) == 2


def test_oulu_errors(tmp_path, clip):
    root = oulu_tree(tmp_path / "OULU", clip)
    touch(root / "Train_files" / "1_3_01_6.avi", clip)
    with pytest.raises(AnnotatorError, match=r"native attack id '6' has no canonical mapping"):
        rows("oulu-npu", root)
    (root / "Train_files" / "1_3_01_6.avi").unlink()
    touch(root / "Protocols" / "Protocol_2" / "Train.txt", b"+1,../../etc/passwd\n")
    with pytest.raises(AnnotatorError, match=r"without '\.\.'"):
        rows("oulu-npu", root)
    touch(root / "Protocols" / "Protocol_2" / "Train.txt", b"+1,/etc/passwd\n")
    with pytest.raises(AnnotatorError, match=r"without '\.\.'"):
        rows("oulu-npu", root)
    import shutil

    shutil.rmtree(root / "Protocols")
    with pytest.raises(AnnotatorError, match="protocol folder .* not found"):
        rows("oulu-npu", root)


def test_casia_fasd(tmp_path, clip):
    root = tmp_path / "CASIA"
    for rel, subj in (("train_release", "1"), ("test_release", "12")):
        for f in ("1", "4", "HR_3", "HR_4"):
            touch(root / rel / subj / f"{f}.avi", clip)
    refs = rows("casia-fasd", root)
    got = {(r.split, r.subject, r.pai): (r.attack_type, r.extra["quality"], r.protocols["train_test"]) for r in refs}
    assert got[("train", "train_1", "1")] == ("bonafide", "low", 0)
    assert got[("train", "train_1", "4")] == ("print", "normal", 0)
    assert got[("test", "test_12", "HR_3")] == ("print", "high", 2)
    assert got[("test", "test_12", "HR_4")] == ("replay", "high", 2)
    touch(root / "train_release" / "1" / "9.avi", clip)
    with pytest.raises(AnnotatorError, match="native attack id '9'"):
        rows("casia-fasd", root)


def test_replay_attack(tmp_path, clip):
    root = tmp_path / "replay"
    touch(root / "train/real/client001_session01_webcam_authenticate_adverse_1.mov", clip)
    touch(root / "train/attack/hand/attack_print_client001_session01_highdef_photo_adverse.mov", clip)
    touch(root / "devel/attack/fixed/attack_mobile_client003_session01_mobile_video_controlled.mov", clip)
    touch(root / "test/attack/fixed/attack_highdef_client009_session01_highdef_photo_controlled.mov", clip)
    refs = {r.source.split("/")[-1][:18]: r for r in rows("replay-attack", root)}
    real, pr = refs["client001_session0"], refs["attack_print_clien"]
    mob, hd = refs["attack_mobile_clie"], refs["attack_highdef_cli"]
    assert (real.attack_type, real.split, real.subject, real.extra["light"]) == ("bonafide", "train", "001", "adverse")
    assert (pr.attack_type, pr.pai, pr.extra["support"]) == ("print", "print_photo", "hand")
    assert (mob.attack_type, mob.split, mob.pai) == ("replay", "dev", "mobile_video")
    assert hd.attack_type == "replay" and hd.split == "test"
    assert real.protocols == {p: 0 for p in ("grandtest", "print", "mobile", "highdef", "photo", "video")}
    assert pr.protocols["print"] == 0 and pr.protocols["mobile"] == -1 and pr.protocols["photo"] == 0
    assert mob.protocols["mobile"] == 1 and mob.protocols["video"] == 1 and mob.protocols["print"] == -1
    touch(root / "test/attack/attack_print_client001_session01_highdef_photo_adverse.mov", clip)
    with pytest.raises(AnnotatorError, match="fixed|hand"):
        rows("replay-attack", root)


def test_msu_mfsd(tmp_path, clip):
    root = tmp_path / "msu"
    touch(root / "real/real_client002_android_SD_scene01.mp4", clip)
    touch(root / "attack/attack_client002_laptop_SD_printed_photo_scene01.mov", clip)
    touch(root / "attack/attack_client035_android_SD_ipad_video_scene01.mp4", clip)
    touch(root / "train_sub_list.txt", b"2\n3\n")
    touch(root / "test_sub_list.txt", b"35\n")
    refs = {r.source: r for r in rows("msu-mfsd", root)}
    r = refs["real/real_client002_android_SD_scene01.mp4"]
    assert (r.attack_type, r.split, r.extra["camera"], r.protocols["train_test"]) == ("bonafide", "train", "android", 0)
    a = refs["attack/attack_client035_android_SD_ipad_video_scene01.mp4"]
    assert (a.attack_type, a.pai, a.split, a.protocols["train_test"]) == ("replay", "ipad_video", "test", 2)
    assert refs["attack/attack_client002_laptop_SD_printed_photo_scene01.mov"].attack_type == "print"
    (root / "test_sub_list.txt").unlink()
    with pytest.raises(AnnotatorError, match="test_sub_list.txt"):
        rows("msu-mfsd", root)


def test_siw_m_and_v2(tmp_path, clip):
    root = tmp_path / "siwm"
    for name in ("Live_3.mov", "Mask_Half_12.mov", "Partial_Funnyeye_2.mov", "Paper_1.mov", "Makeup_Ob_4.mov"):
        touch(root / name, clip)
    got = {r.pai: (r.attack_type, r.subject) for r in rows("siw-m", root)}
    assert got == {"Live": ("bonafide", "3"), "Mask_Half": ("half_mask", "12"), "Partial_Funnyeye": ("glasses", "2"),
                   "Paper": ("print", "1"), "Makeup_Ob": ("makeup", "4")}
    touch(root / "Hologram_1.mov", clip)
    with pytest.raises(AnnotatorError, match="'Hologram'"):
        rows("siw-m", root)
    v2 = tmp_path / "siwmv2"
    touch(v2 / "Live/007_live.mp4", clip)
    touch(v2 / "Spoof/Mannequin/010_m.mp4", clip)
    touch(v2 / "Spoof/Partial_PaperGlasses/011_g.mp4", clip)
    got = sorted((r.pai, r.attack_type, r.subject) for r in rows("siw-mv2", v2))
    assert got == [("Live", "bonafide", "007"), ("Mannequin", "fake_head", "010"),
                   ("Partial_PaperGlasses", "glasses", "011")]
    touch(v2 / "Spoof/Deepfake/1.mp4", clip)
    with pytest.raises(AnnotatorError, match="'Deepfake'"):
        rows("siw-mv2", v2)


def test_oulu_run_writes_protocols_and_status_rows(tmp_path, clip):
    from conftest import sync_config
    from pipelines.run import run

    root = oulu_tree(tmp_path / "OULU", clip)
    (root / "Train_files" / "1_3_02_2.avi").write_bytes(clip[: len(clip) // 5])  # truncated
    (root / "Train_files" / "1_3_02_5.avi").write_bytes(b"")  # empty file
    out = str(tmp_path / "oulu.zarr")
    run(sync_config(dataset="oulu-npu", root=str(root), frames_per_video=2), out, cluster="none", progress=False)
    g = zarr.open_group(out, mode="r")
    src, status = g["meta/source"][:], g["meta/status"][:]
    st = {s: int(v) for s, v in zip(src, status)}
    assert st["Train_files/1_3_01_1.avi"] == Status.OK
    assert st["Train_files/1_3_02_5.avi"] == Status.UNREADABLE
    assert Status.UNREADABLE in [int(v) for s, v in zip(src, status) if s == "Train_files/1_3_02_2.avi"]
    p1 = g["protocols/Protocol_1"][:]
    assert p1.dtype == np.int8
    expected = [{"Train_files/1_3_01_1.avi": 0, "Train_files/1_3_01_2.avi": 0, "Dev_files/1_3_21_1.avi": 1,
                 "Test_files/1_3_36_1.avi": 2, "Test_files/1_3_36_5.avi": 2}.get(s, -1) for s in src]
    assert p1.tolist() == expected
    assert sorted(k for k, _ in g["protocols"].arrays()) == ["Protocol_1", "Protocol_3_2"]
    assert g["meta/phone"][:].tolist() == ["1"] * len(src)


def test_siw_mv2_protocol_lists(tmp_path, clip):
    v2 = tmp_path / "siwmv2"
    touch(v2 / "Live/007_live.mp4", clip)
    touch(v2 / "Spoof/Print/010_p.mp4", clip)
    touch(v2 / "Spoof/Replay/011_r.mp4", clip)
    touch(v2 / "Protocols/Unknown_Print/train.txt", b"Live/007_live.mp4\nSpoof/Replay/011_r.mp4\n")
    touch(v2 / "Protocols/Unknown_Print/test.txt", b"010_p 1\n")
    adapter = DATASETS.create("siw-mv2", root=str(v2), frames_per_video=1)
    assert adapter.protocol_names() == ["Unknown_Print"]
    got = {r.source: r.protocols["Unknown_Print"] for r in adapter.samples()}
    assert got == {"Live/007_live.mp4": 0, "Spoof/Print/010_p.mp4": 2, "Spoof/Replay/011_r.mp4": 0}
    touch(v2 / "Protocols/Bad/dev.txt", b"../outside.mp4\n")
    with pytest.raises(AnnotatorError, match=r"without '\.\.'"):
        DATASETS.create("siw-mv2", root=str(v2))
