"""Miniature trees in each public dataset's real download layout: rows, meta, protocols, errors.

The layouts follow the releases as they ship (and as Idiap's bob.db packages and the SiW-Mv2 code
read them): see docs/datasets.md. Media files are empty unless a test decodes them: enumeration
never opens media.
"""

import pytest

from annotator.datasets import DATASETS
from annotator.core.errors import AnnotatorError


def touch(path, data=b""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def rows(name, root, k=1, **kw):
    return list(DATASETS.create(name, root=str(root), frames_per_video=k, **kw).samples())


def by_stem(refs):
    return {r.source.rsplit("/", 1)[-1].rsplit(".", 1)[0]: r for r in refs if r.slot <= 0}


@pytest.mark.parametrize("name", [n for n in DATASETS.names() if n != "sample"])
def test_every_adapter_describes_itself_and_rejects_a_wrong_root(name, tmp_path):
    assert len(DATASETS.get(name).description) > 60
    with pytest.raises(AnnotatorError):
        DATASETS.create(name, root=str(tmp_path / "missing"), frames_per_video=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnnotatorError):
        list(DATASETS.create(name, root=str(tmp_path / "empty"), frames_per_video=1).samples())


@pytest.mark.parametrize("name", ["casia-fasd", "replay-attack", "siw-m", "folder", "sample"])
def test_protocol_dir_is_refused_where_no_lists_are_read(name, tmp_path):
    with pytest.raises(AnnotatorError, match="--protocol-dir does not apply"):
        DATASETS.create(name, root=None if name == "sample" else str(tmp_path), protocol_dir=str(tmp_path))


# ---------------------------------------------------------------- OULU-NPU
def oulu_tree(root, clip=b"", crlf=False):
    for folder, users in (("Train_files", ("01", "02")), ("Dev_files", ("21",)), ("Test_files", ("36",))):
        for u in users:
            for f in (1, 2, 5):
                touch(root / folder / f"1_3_{u}_{f}.avi", clip)
    p = root / "Protocols"
    nl = b"\r\n" if crlf else b"\n"
    touch(p / "Protocol_1" / "Train.txt", nl.join([b"+1,1_3_01_1", b"-1,1_3_01_2"]) + nl)
    touch(p / "Protocol_1" / "Dev.txt", b"+1,1_3_21_1" + nl)
    touch(p / "Protocol_1" / "Test.txt", nl.join([b"+1,1_3_36_1", b"-2,1_3_36_5"]) + nl)
    touch(p / "Protocol_3" / "Train_2.txt", b"+1,1_3_02_1" + nl)
    touch(p / "Protocol_3" / "Test_2.txt", b"-1,1_3_36_2" + nl)
    return root


@pytest.mark.parametrize("crlf", [False, True])
def test_oulu_npu(tmp_path, crlf):
    root = oulu_tree(tmp_path / "OULU", crlf=crlf)
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


def test_oulu_protocol_dir_and_no_protocols(tmp_path):
    root = oulu_tree(tmp_path / "OULU")
    elsewhere = tmp_path / "lists"
    (root / "Protocols").rename(elsewhere)
    a = DATASETS.create("oulu-npu", root=str(root), frames_per_video=1)
    assert a.protocol_names() == [] and "no protocol files found" in a.findings.notes[0]
    assert len(list(a.samples())) == 12
    assert DATASETS.create("oulu-npu", root=str(root), protocol_dir=str(elsewhere)).protocol_names() == [
        "Protocol_1", "Protocol_3_2"]


def test_oulu_errors(tmp_path):
    root = oulu_tree(tmp_path / "OULU")
    touch(root / "Train_files" / "1_3_01_6.avi")
    with pytest.raises(AnnotatorError, match=r"native attack id '6' has no canonical mapping"):
        rows("oulu-npu", root)
    (root / "Train_files" / "1_3_01_6.avi").unlink()
    touch(root / "Protocols" / "Protocol_2" / "Train.txt", b"+1,../../etc/passwd\n")
    with pytest.raises(AnnotatorError, match=r"without '\.\.'"):
        rows("oulu-npu", root)
    touch(root / "Protocols" / "Protocol_2" / "Train.txt", b"+1,/etc/passwd\n")
    with pytest.raises(AnnotatorError, match=r"without '\.\.'"):
        rows("oulu-npu", root)


# ---------------------------------------------------------------- CASIA-FASD
def test_casia_fasd(tmp_path):
    root = tmp_path / "CASIA"
    for rel, subj in (("train_release", "1"), ("test_release", "12")):
        for f in ("1", "2", "4", "5", "6", "HR_3", "HR_4"):
            touch(root / rel / subj / f"{f}.avi")
    refs = rows("casia-fasd", root)
    got = {(r.split, r.subject, r.pai): (r.attack_type, r.extra["quality"], r.protocols["train_test"]) for r in refs}
    assert got[("train", "train_1", "1")] == ("bonafide", "normal", 0)
    assert got[("train", "train_1", "2")] == ("bonafide", "low", 0)
    assert got[("train", "train_1", "4")] == ("print", "low", 0)
    assert got[("train", "train_1", "5")] == ("cut_print", "normal", 0)
    assert got[("train", "train_1", "6")] == ("cut_print", "low", 0)
    assert got[("test", "test_12", "HR_3")] == ("cut_print", "high", 2)
    assert got[("test", "test_12", "HR_4")] == ("replay", "high", 2)
    touch(root / "train_release" / "1" / "9.avi")
    with pytest.raises(AnnotatorError, match="native attack id '9'"):
        rows("casia-fasd", root)


def test_cut_print_policy_keeps_the_eyes_live():
    import numpy as np

    from annotator.face.regions import REGION_IDS
    from annotator.label import Policy

    region = np.zeros((8, 8), np.uint8)
    region[0:2] = REGION_IDS["eyes"]
    region[2:4] = REGION_IDS["skin"]
    region[4:6] = REGION_IDS["pai_surface"]
    depth = np.full((8, 8), 200, np.uint8)
    label = Policy.default().fuse(region, depth, "cut_print")
    assert (label[1][0:2] == 200).all() and label[1][2:].sum() == 0  # live = the eyes only
    assert (label[0][2:4] == 200).all() and label[0][0:2].sum() == 0  # attack = the photo around them
    assert (label[2][6:] == 255).all()


# ---------------------------------------------------------------- Replay-Attack
def test_replay_attack(tmp_path):
    root = tmp_path / "replay"
    touch(root / "train/real/client001_session01_webcam_authenticate_adverse_1.mov")
    touch(root / "train/attack/hand/attack_print_client001_session01_highdef_photo_adverse.mov")
    touch(root / "devel/attack/fixed/attack_mobile_client003_session01_mobile_video_controlled.mov")
    touch(root / "devel/attack/fixed/attack_mobile_client003_session01_mobile_photo_controlled.mov")
    touch(root / "test/attack/fixed/attack_highdef_client009_session01_highdef_photo_controlled.mov")
    touch(root / "enroll/client001_session01_enroll_adverse_1.mov")  # face recognition only: not read
    refs = by_stem(rows("replay-attack", root))
    assert len(refs) == 5
    real = refs["client001_session01_webcam_authenticate_adverse_1"]
    pr = refs["attack_print_client001_session01_highdef_photo_adverse"]
    mv = refs["attack_mobile_client003_session01_mobile_video_controlled"]
    mp = refs["attack_mobile_client003_session01_mobile_photo_controlled"]
    hd = refs["attack_highdef_client009_session01_highdef_photo_controlled"]
    assert (real.attack_type, real.split, real.subject, real.extra["light"]) == ("bonafide", "train", "001", "adverse")
    assert (pr.attack_type, pr.pai, pr.extra["support"]) == ("print", "print_photo", "hand")
    assert (mv.attack_type, mv.split, mv.pai) == ("replay", "dev", "mobile_video")
    assert hd.attack_type == "replay" and hd.split == "test"
    names = ("grandtest", "print", "mobile", "highdef", "photo", "video", "digitalphoto")
    assert real.protocols == {p: 0 for p in names}
    assert pr.protocols == {"grandtest": 0, "print": 0, "mobile": -1, "highdef": -1, "photo": 0, "video": -1,
                            "digitalphoto": -1}
    assert mv.protocols["mobile"] == 1 and mv.protocols["video"] == 1 and mv.protocols["digitalphoto"] == -1
    assert mp.protocols["digitalphoto"] == 1 and mp.protocols["photo"] == 1 and mp.protocols["video"] == -1
    assert hd.protocols["digitalphoto"] == 2 and hd.protocols["highdef"] == 2
    touch(root / "test/attack/attack_print_client001_session01_highdef_photo_adverse.mov")
    with pytest.raises(AnnotatorError, match="fixed|hand"):
        rows("replay-attack", root)


# ---------------------------------------------------------------- MSU-MFSD
def msu_tree(top, publish=True):
    media = (top / "MSU-MFSD-Publish" / "scene01") if publish else top / "scene01"
    touch(media / "real/real_client002_android_SD_scene01.mp4")
    touch(media / "real/real_client035_laptop_SD_scene01.mov")
    touch(media / "attack/attack_client002_laptop_SD_printed_photo_scene01.mov")
    touch(media / "attack/attack_client035_android_SD_ipad_video_scene01.mp4")
    touch(top / "train_sub_list.txt", b"02\r\n03\r\n")
    touch(top / "test_sub_list.txt", b"35\r\n")
    return media


@pytest.mark.parametrize("publish", [True, False])
def test_msu_mfsd(tmp_path, publish):
    media = msu_tree(tmp_path / "msu", publish)
    refs = by_stem(rows("msu-mfsd", tmp_path / "msu"))
    r = refs["real_client002_android_SD_scene01"]
    assert (r.attack_type, r.split, r.extra["camera"], r.protocols["train_test"]) == ("bonafide", "train", "android", 0)
    a = refs["attack_client035_android_SD_ipad_video_scene01"]
    assert (a.attack_type, a.pai, a.split, a.protocols["train_test"]) == ("replay", "ipad_video", "test", 2)
    assert refs["attack_client002_laptop_SD_printed_photo_scene01"].attack_type == "print"
    assert refs["real_client035_laptop_SD_scene01"].subject == "035"
    # --root may also be the folder holding scene01/ (the lists then come with --protocol-dir)
    inner = rows("msu-mfsd", media.parent, protocol_dir=str(tmp_path / "msu"))
    assert sorted(r.protocols["train_test"] for r in inner) == [0, 0, 2, 2]


def test_msu_mfsd_errors(tmp_path):
    msu_tree(tmp_path / "msu")
    (tmp_path / "msu" / "test_sub_list.txt").unlink()
    a = DATASETS.create("msu-mfsd", root=str(tmp_path / "msu"))
    assert a.protocol_names() == [] and "no protocol files" in a.findings.notes[0]
    (tmp_path / "other").mkdir()
    with pytest.raises(AnnotatorError, match="no scene01/real/ and scene01/attack/"):
        DATASETS.create("msu-mfsd", root=str(tmp_path / "other"))


def test_msu_face_file_is_corners(tmp_path):
    from annotator.face.annotations import box_for_frame

    media = msu_tree(tmp_path / "msu")
    face = touch(media / "real/real_client002_android_SD_scene01.face",
                 b"0,100,50,300,290,150,120,250,121\r\n1,102,52,302,292,152,122,252,123\r\n")
    ref = by_stem(rows("msu-mfsd", tmp_path / "msu"))["real_client002_android_SD_scene01"]
    assert ref.media == {"faces": str(face), "faces_format": "corners"}
    assert box_for_frame(str(face), "corners", 0).box == (100, 50, 300, 290)
    assert box_for_frame(str(face), "corners", 7).box == (102, 52, 302, 292)


# ---------------------------------------------------------------- SiW-M
SIWM_FILES = [
    "Live/Train/Live_1.mov", "Live/Train/Live_2.mov", "Live/Test/Live_40.mov",
    "Makeup/Cosmetic/Makeup_Co_3.mov", "Mask/MannequinHead/Mask_Mann_7.mov", "Paper/Paper_1.mov",
    "Partial/PaperCut/Partial_Eye_2.mov", "Partial/PaperCut/Partial_Mouth_5.mov",
    "Partial/FunnyeyeGlasses/Partial_Funnyeye_4.mov", "Replay/Replay_9.mov",
]


def test_siw_m(tmp_path):
    root = tmp_path / "SiW-M"
    for f in SIWM_FILES:
        touch(root / f)
    refs = by_stem(rows("siw-m", root))
    got = {s: (r.attack_type, r.split, r.subject) for s, r in refs.items()}
    assert got["Live_1"] == ("bonafide", "train", "") and got["Live_40"] == ("bonafide", "test", "")
    assert got["Partial_Eye_2"][0] == "partial_eye" and got["Partial_Mouth_5"][0] == "partial_mouth"
    assert got["Mask_Mann_7"] == ("fake_head", "", "") and got["Partial_Funnyeye_4"][0] == "glasses"
    names = DATASETS.create("siw-m", root=str(root)).protocol_names()
    assert len(names) == 13 and "LOO_Partial_PaperCut" in names and "LOO_Partial_Eye" not in names
    loo = {s: r.protocols["LOO_Partial_PaperCut"] for s, r in refs.items()}
    assert loo == {"Live_1": 0, "Live_2": 0, "Live_40": 2, "Makeup_Co_3": 0, "Mask_Mann_7": 0, "Paper_1": 0,
                   "Partial_Eye_2": 2, "Partial_Mouth_5": 2, "Partial_Funnyeye_4": 0, "Replay_9": 0}
    rep = {s: r.protocols["LOO_Replay"] for s, r in refs.items()}
    assert rep["Replay_9"] == 2 and rep["Live_40"] == 2 and rep["Partial_Eye_2"] == 0 and rep["Live_2"] == 0
    touch(root / "Hologram/Hologram_1.mov")
    with pytest.raises(AnnotatorError, match="'Hologram'"):
        rows("siw-m", root)


# ---------------------------------------------------------------- SiW-Mv2
V2_RELEASES = {
    "readme": ["Live/Live_1.mov", "Live/Live_2.mov", "Live/Live_3.mov", "Spoof/Print/Paper_9.mov",
               "Spoof/Mannequin/Mask_Mann_3.mov", "Spoof/Silicone/Mask_Silicone_4.mp4",
               "Spoof/Partial_FunnyeyeGlasses/Partial_Funnyeye_1.mov", "Spoof/Replay/Replay_2.mov"],
    "archive": ["Live/Train/Live_1.mov", "Live/Train/Live_2.mov", "Live/Test/Live_3.mov", "Spoof/Paper/Paper_9.mov",
                "Spoof/Mask_MannequinHead/Mask_Mann_3.mov", "Spoof/Mask_SiliconeMask/Mask_Silicone_4.mp4",
                "Spoof/Partial_FunnyeyeGlasses/Partial_Funnyeye_1.mov", "Spoof/Replay/Replay_2.mov"],
}
V2_LISTS = {  # pro_3_text/ of the SiW-Mv2 code: one stem per line, repeats allowed
    "trainlist_live.txt": "Live_1\nLive_2\nLive_1\n", "testlist_live.txt": "Live_3\n",
    "trainlist_all.txt": "Paper_9\nMask_Mann_3\nMask_Mann_3\n", "testlist_all.txt": "Replay_2\nPartial_Funnyeye_1\n",
    "train_A_pretrain.txt": "Live_1\nPaper_9\n", "test_A_pretrain.txt": "Live_2\n",
    "test_B_spoof.txt": "Partial_Funnyeye_1\n", "test_C_race.txt": "Live_3\n", "test_D_age.txt": "Live_3\n",
    "test_E_ill.txt": "Replay_2\n",
}


def siwmv2_tree(root, release, lists_at="pro_3_text"):
    for f in V2_RELEASES[release]:
        touch(root / f)
    for name, text in V2_LISTS.items():
        touch(root / lists_at / name, text.replace("\n", "\r\n").encode())
    return root


@pytest.mark.parametrize("release", list(V2_RELEASES))
def test_siw_mv2_types_by_stem_in_every_release(tmp_path, release):
    root = siwmv2_tree(tmp_path / "v2", release)
    refs = by_stem(rows("siw-mv2", root))
    got = {s: (r.attack_type, r.pai, r.subject) for s, r in refs.items()}
    assert got == {"Live_1": ("bonafide", "Live", ""), "Live_2": ("bonafide", "Live", ""),
                   "Live_3": ("bonafide", "Live", ""), "Paper_9": ("print", "Paper", ""),
                   "Mask_Mann_3": ("fake_head", "Mask_Mann", ""), "Mask_Silicone_4": ("flexible_mask", "Mask_Silicone", ""),
                   "Partial_Funnyeye_1": ("glasses", "Partial_Funnyeye", ""), "Replay_2": ("replay", "Replay", "")}
    if release == "archive":
        assert refs["Live_1"].split == "train" and refs["Live_3"].split == "test"


def test_siw_mv2_protocols(tmp_path):
    root = siwmv2_tree(tmp_path / "v2", "readme")
    adapter = DATASETS.create("siw-mv2", root=str(root), frames_per_video=1)
    names = adapter.protocol_names()
    assert "Protocol_I" in names and "Protocol_III" in names and len([n for n in names if "_II_" in n]) == 14
    assert {"Protocol_III_A", "Protocol_III_E"} <= set(names)
    refs = by_stem(adapter.samples())
    code = lambda p: {s: r.protocols[p] for s, r in refs.items()}  # noqa: E731
    assert code("Protocol_I") == {"Live_1": 0, "Live_2": 0, "Live_3": 2, "Paper_9": 0, "Mask_Mann_3": 0,
                                  "Replay_2": 2, "Partial_Funnyeye_1": 2, "Mask_Silicone_4": -1}
    # protocol II leaves Mask_Mann out of training and tests on every Mask_Mann video
    assert code("Protocol_II_Mask_Mann") == {"Live_1": 0, "Live_2": 0, "Live_3": 2, "Paper_9": 0, "Mask_Mann_3": 2,
                                             "Replay_2": -1, "Partial_Funnyeye_1": -1, "Mask_Silicone_4": -1}
    assert code("Protocol_II_Mask_Silicone")["Mask_Silicone_4"] == 2
    assert code("Protocol_III") == {"Live_1": 0, "Paper_9": 0, "Live_2": 2, "Partial_Funnyeye_1": 2, "Live_3": 2,
                                    "Replay_2": 2, "Mask_Mann_3": -1, "Mask_Silicone_4": -1}
    assert code("Protocol_III_B") == {**dict.fromkeys(refs, -1), "Live_1": 0, "Paper_9": 0, "Partial_Funnyeye_1": 2}
    # the lists may also sit at ROOT or in --protocol-dir
    flat = siwmv2_tree(tmp_path / "flat", "archive", lists_at=".")
    assert "Protocol_I" in DATASETS.create("siw-mv2", root=str(flat)).protocol_names()
    bare = tmp_path / "bare"
    for f in V2_RELEASES["readme"]:
        touch(bare / f)
    assert DATASETS.create("siw-mv2", root=str(bare)).protocol_names() == []
    assert DATASETS.create("siw-mv2", root=str(bare), protocol_dir=str(root / "pro_3_text")).protocol_names() == names


def test_siw_mv2_unknown_prefix(tmp_path):
    root = siwmv2_tree(tmp_path / "v2", "readme")
    touch(root / "Spoof/Deepfake/Deepfake_1.mov")
    with pytest.raises(AnnotatorError, match="'Deepfake'"):
        rows("siw-mv2", root)
