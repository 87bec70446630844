"""CelebA-Spoof (`celeba-spoof`) on a miniature release built from a real face: Data/ with JPEG
images and their _BB.txt boxes (224 x 224 frame), metas/ with the 44-integer label vectors."""

import json

import cv2
import numpy as np
import pytest
import zarr
from PIL import Image

from annotator.core.errors import AnnotatorError
from annotator.datasets import DATASETS
from annotator.datasets.celeba_spoof import (
    DEV_PROTOCOL,
    LABEL_CONFLICTS,
    SPOOF_TYPES,
    dev_subject,
    parse_fast,
    parse_json,
)
from annotator.datasets.check import check_dataset
from annotator.face.annotations import box_for_frame, face_file_problem
from annotator.label import ATTACK_TYPES
from helpers import assert_one_line_error, invoke

# split, subject, live/spoof, stem, label indices 40-43 (spoof type, illumination, environment, live/spoof),
# image width x height. Subject 6 is one of intra_test_dev's dev subjects (crc32("6") % 10 == 0), 7 is not.
IMAGES = [
    ("train", "6", "live", "000001", (0, 0, 0, 0), (240, 320)),
    ("train", "6", "spoof", "000002", (1, 1, 1, 1), (320, 240)),  # photo, normal light, indoor
    ("train", "6", "spoof", "000003", (8, 2, 2, 1), (256, 256)),  # pad, strong light, outdoor
    ("train", "7", "live", "000004", (0, 0, 0, 0), (256, 320)),
    ("train", "7", "spoof", "000005", (4, 3, 1, 1), (240, 320)),  # face mask, back light, indoor
    ("train", "7", "spoof", "000006", (6, 4, 2, 1), (320, 256)),  # region mask, dark, outdoor
    ("test", "10", "live", "000007", (0, 0, 0, 0), (240, 320)),
    ("test", "10", "spoof", "000008", (10, 1, 2, 1), (320, 240)),  # 3D mask, normal light, outdoor
]
EXPECTED = {  # stem -> attack type, meta/pai, illumination, environment
    "000001": ("bonafide", "live", "", ""), "000002": ("print", "photo", "normal", "indoor"),
    "000003": ("replay", "pad", "strong", "outdoor"), "000004": ("bonafide", "live", "", ""),
    "000005": ("paper_mask", "face_mask", "back", "indoor"), "000006": ("cut_print", "region_mask", "dark", "outdoor"),
    "000007": ("bonafide", "live", "", ""), "000008": ("rigid_mask", "3d_mask", "normal", "outdoor"),
}


def face_box(w, h):
    """Where the face is drawn in a w x h image (XYXY pixels)."""
    side = int(min(w, h) * 0.6)
    x0, y0 = int(w * 0.22), int(h * 0.18)
    return x0, y0, x0 + side, y0 + side


def vector(tail, k=0):
    attributes = [(k + i) % 2 if tail[0] == 0 else 0 for i in range(40)]  # CelebA's attributes: live images only
    return attributes + list(tail)


def bb_line(w, h):
    """The release's _BB.txt line for face_box: x y w h score in a 224 x 224 frame."""
    x0, y0, x1, y1 = face_box(w, h)
    return f"{x0 * 224 / w:.1f} {y0 * 224 / h:.1f} {(x1 - x0) * 224 / w:.1f} {(y1 - y0) * 224 / h:.1f} 0.998\n"


def write_labels(folder, entries):
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        part = {k: v for k, v in entries.items() if k.split("/")[1] == split}
        (folder / f"{split}_label.json").write_text(json.dumps(part))


@pytest.fixture(scope="module")
def face(face_image):
    return face_image[20:280, 110:370]  # the astronaut's head, 260 x 260


def build(root, face, images=IMAGES):
    """A miniature release under root: the images, their _BB.txt, metas/intra_test, metas/protocol1 (the
    train images of subject 6 and the test images) and metas/protocol2/test_on_low_quality_device."""
    entries = {}
    for k, (split, subject, kind, stem, tail, (w, h)) in enumerate(images):
        folder = root / "Data" / split / subject / kind
        folder.mkdir(parents=True, exist_ok=True)
        x0, y0, x1, y1 = face_box(w, h)
        canvas = np.full((h, w, 3), 118, np.uint8)
        canvas[y0:y1, x0:x1] = cv2.resize(face, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        Image.fromarray(canvas).save(folder / f"{stem}.jpg", quality=92)
        (folder / f"{stem}_BB.txt").write_text(bb_line(w, h))
        entries[f"Data/{split}/{subject}/{kind}/{stem}.jpg"] = vector(tail, k)
    write_labels(root / "metas" / "intra_test", entries)
    write_labels(root / "metas" / "protocol1", {k: v for k, v in entries.items() if "/6/" in k or "/test/" in k})
    write_labels(root / "metas" / "protocol2" / "test_on_low_quality_device",
                 {k: v for k, v in entries.items() if "/live/" in k or "/test/" in k})
    return root


@pytest.fixture
def mini(tmp_path, face):
    return build(tmp_path / "CelebA_Spoof", face)


def touch_dir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def rows(root, **kw):
    return list(DATASETS.create("celeba-spoof", root=str(root), **kw).samples())


def stem(ref):
    return ref.source.rsplit("/", 1)[1][:-4]


def test_rows_types_meta_splits_and_protocols(mini):
    adapter = DATASETS.create("celeba-spoof", root=str(mini))
    refs = list(adapter.samples())
    assert [stem(r) for r in refs] == [i[3] for i in IMAGES]  # train then test, by subject
    for r, (split, subject, kind, s, tail, _) in zip(refs, IMAGES):
        attack_type, pai, illumination, environment = EXPECTED[s]
        assert r.source == f"Data/{split}/{subject}/{kind}/{s}.jpg" == r.sample_id == r.video_id
        assert r.path == str(mini / r.source) and r.slot == -1 and not r.is_video
        assert (r.attack_type, r.pai, r.is_attack) == (attack_type, pai, kind == "spoof")
        assert r.extra == {"illumination": illumination, "environment": environment}
        assert (r.split, r.subject, r.dataset) == (split, subject, "celeba-spoof")
        assert r.media == {"faces": str(mini / f"Data/{split}/{subject}/{kind}/{s}_BB.txt"), "faces_format": "bb224"}
    assert adapter.protocol_names() == ["intra_test", "protocol1", "protocol2_test_on_low_quality_device",
                                        DEV_PROTOCOL]
    assert dev_subject("6") and not dev_subject("7")
    codes = {stem(r): r.protocols for r in refs}
    assert codes["000002"] == {"intra_test": 0, "protocol1": 0, "protocol2_test_on_low_quality_device": -1,
                               DEV_PROTOCOL: 1}  # subject 6's train images are dev in intra_test_dev
    assert codes["000004"] == {"intra_test": 0, "protocol1": -1, "protocol2_test_on_low_quality_device": 0,
                               DEV_PROTOCOL: 0}
    assert codes["000008"] == {"intra_test": 2, "protocol1": 2, "protocol2_test_on_low_quality_device": 2,
                               DEV_PROTOCOL: 2}
    assert not adapter.conflicts and not adapter.findings.bad_names and not adapter.findings.notes
    # rows with the same labels share their extra and protocols dicts (625,537 rows stay small)
    assert refs[0].extra is refs[3].extra


def test_every_spoof_type_maps_to_a_canonical_type():
    assert sorted(SPOOF_TYPES) == list(range(11))
    assert {t for _, t in SPOOF_TYPES.values()} <= set(ATTACK_TYPES)
    assert [k for k, (_, t) in SPOOF_TYPES.items() if t == "bonafide"] == [0]
    assert [n for n, _ in SPOOF_TYPES.values()] == ["live", "photo", "poster", "a4", "face_mask", "upper_body_mask",
                                                    "region_mask", "pc", "pad", "phone", "3d_mask"]


def test_the_dataset_box_scaled_from_224_lands_on_the_face(mini):
    from annotator.face.detect import BlazeFaceDetector
    from annotator.shard.locate import dataset_faces

    detector = BlazeFaceDetector()
    for r, (*_, (w, h)) in zip(rows(mini), IMAGES):
        drawn = face_box(w, h)
        box = box_for_frame(r.media["faces"], "bb224", 0, (h, w))
        # client.py's arithmetic: each value truncated in the 224 frame, then scaled and truncated again
        x, y, bw, bh = (int(float(v)) for v in open(r.media["faces"]).read().split()[:4])
        x, y, bw, bh = int(x * (w / 224)), int(y * (h / 224)), int(bw * (w / 224)), int(bh * (h / 224))
        assert box.box == (x, y, x + bw, y + bh)
        # so the corners lie within two truncations of the drawn box
        assert np.abs(np.subtract(box.box, drawn)).max() <= 2 * (max(w, h) / 224 + 1), (r.source, box.box, drawn)
        assert box.score == pytest.approx(0.998)
        (found,), how = dataset_faces(r, 0, stored_hw=(h, w))  # what annotate run --use-dataset-faces takes
        assert how == "dataset" and found.box == box.box
        # the detector's face (the inner face of the drawn head) lies within the dataset's box
        detected = detector(np.asarray(Image.open(r.path).convert("RGB")))[0].box
        inside = np.prod(np.clip(np.minimum(box.box[2:], detected[2:]) - np.maximum(box.box[:2], detected[:2]), 0, None))
        assert inside / np.prod(np.subtract(detected[2:], detected[:2])) > 0.95, (r.source, box.box, detected)
    with pytest.raises(ValueError, match="frame's size"):
        box_for_frame(rows(mini)[0].media["faces"], "bb224", 0)


def test_malformed_box_files(tmp_path):
    bad = ("", "10 20 30\n", "10 20 0 40 0.9\n", "a b c d e\n", "10 20 30 40 0.9 7\n", "nan 1 2 3 0.5\n")
    for i, text in enumerate(bad):
        f = tmp_path / f"{i}_BB.txt"
        f.write_text(text)
        assert "expected one line 'x y w h score'" in face_file_problem(str(f), "bb224")
        assert box_for_frame(str(f), "bb224", 0, (100, 100)) is None
    f = tmp_path / "good_BB.txt"
    f.write_text("22.4 44.8 112 112 0.7\n")
    assert face_file_problem(str(f), "bb224") == ""
    assert box_for_frame(str(f), "bb224", 0, (448, 224)).box == (22, 88, 134, 312)  # x by 1, y by 2, as client.py
    assert "No such file" in face_file_problem(str(tmp_path / "none_BB.txt"), "bb224")


def test_root_forms_and_protocol_dir(tmp_path, mini):
    parent = mini.parent  # the folder holding the release's CelebA_Spoof/
    refs = rows(parent)
    assert refs[0].source == "CelebA_Spoof/Data/train/6/live/000001.jpg" and refs[0].path == str(mini / "Data/train/6/live/000001.jpg")
    assert check_dataset(DATASETS.create("celeba-spoof", root=str(parent), strict=False), probe_media=False).problems == 0
    (mini / "metas").rename(tmp_path / "lists")
    with pytest.raises(AnnotatorError, match="no label files under .*metas.*--protocol-dir"):
        rows(mini)
    refs = rows(mini, protocol_dir=str(tmp_path / "lists"))
    assert len(refs) == 8 and refs[0].protocols["intra_test"] == 0


def test_bad_roots_are_one_line_errors(tmp_path, mini):
    out = tmp_path / "x.zarr"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(invoke("run", "--dataset", "celeba-spoof", "--root", empty, "--out", out),
                          "no Data/ folder", "--root")
    (empty / "Data" / "train_2").mkdir(parents=True)
    assert_one_line_error(invoke("run", "--dataset", "celeba-spoof", "--root", empty, "--out", out),
                          "neither Data/train/ nor Data/test/")
    (mini / "Data/train/7/spoof/000090.jpg").write_bytes((mini / "Data/train/7/spoof/000005.jpg").read_bytes())
    assert_one_line_error(invoke("run", "--dataset", "celeba-spoof", "--root", mini, "--out", out),
                          "000090.jpg: no usable entry 'Data/train/7/spoof/000090.jpg' in any label file",
                          "annotate check-dataset")
    (mini / "metas" / "intra_test" / "test_label.json").write_text('{"Data/test/10/live/000007.jpg": [0, 1')
    assert_one_line_error(invoke("check-dataset", "--dataset", "celeba-spoof", "--root", mini),
                          "test_label.json: not valid JSON", "re-extract metas/")


def test_label_files_in_other_forms(tmp_path):
    plain = {"Data/train/6/spoof/000002.jpg": vector((1, 1, 1, 1)), "Data/test/10/live/000007.jpg": vector((0, 0, 0, 0))}
    text = json.dumps(plain).encode()
    assert parse_fast(text, {}) == {k: tuple(v[40:]) for k, v in plain.items()} == parse_json(text, "x", {})
    assert parse_fast(b"{}", {}) == {} and parse_fast(b" { } \n", {}) == {}
    assert parse_fast(json.dumps(plain, indent=1).encode(), {}) == parse_fast(text, {})  # line breaks anywhere
    for broken in (text[:-1], text + b" x", text.replace(b", 1]", b", 1.0]", 1), text.replace(b"[", b"[1, ", 1)):
        assert parse_fast(broken, {}) is None  # the json module reads or refuses it
    pretty = json.dumps({"Data\\/train/6/spoof/000002.jpg": vector((1, 1, 1, 1)), "Data/x": [1, 2]}, indent=2).encode()
    assert parse_fast(pretty, {}) is None  # an escaped key: the json module reads it
    assert parse_json(pretty, "x", {})["Data\\/train/6/spoof/000002.jpg"] == (1, 1, 1, 1)
    assert parse_json(pretty, "x", {})["Data/x"].startswith("expected a list of 44 integers")


def test_check_dataset_reports_each_kind_of_problem(tmp_path, mini, face):
    labels = json.loads((mini / "metas/intra_test/train_label.json").read_text())
    labels["Data/train/7/live/000099.jpg"] = vector((0, 0, 0, 0))  # an entry without a file
    labels["Data/train/7/live/000004.jpg"] = vector((1, 1, 1, 1))  # a live/ image that the labels call a photo
    labels["Data/train/7/spoof/000005.jpg"] = vector((4, 3, 1, 1))[:43]  # 43 integers
    labels["Data/train/10/live/000079.jpg"] = vector((0, 0, 0, 0))  # subject 10 in train and test
    labels["Data/train/6/spoof/000003.jpg"] = vector((11, 1, 1, 1))  # on disk, a type with no mapping
    Image.fromarray(np.asarray(face)).save(touch_dir(mini / "Data/train/10/live") / "000079.jpg")
    (mini / "Data/train/10/live/000079_BB.txt").write_text("10 10 200 200 0.9\n")
    (mini / "metas/intra_test/train_label.json").write_text(json.dumps(labels))
    (mini / "Data/train/6/spoof/000002_BB.txt").write_text("12 30 80\n")  # malformed box
    (mini / "Data/train/6/live/000001_BB.txt").unlink()  # no box
    Image.fromarray(np.asarray(face)).save(mini / "Data/train/6/spoof/000077.jpg")  # no label
    Image.fromarray(np.asarray(face)).save(mini / "Data/train/6/000078.jpg")  # not in live/ or spoof/
    (mini / "Data/train/abc/live").mkdir(parents=True)  # not a subject id
    (mini / "Data/train/.DS_Store").write_bytes(b"\0")  # ignored, as are other hidden files
    test = json.loads((mini / "metas/protocol1/test_label.json").read_text())
    (mini / "metas/protocol1/train_label.json").write_text(json.dumps(test))  # test images in train too: leakage
    report = check_dataset(DATASETS.create("celeba-spoof", root=str(mini), strict=False))
    bad = dict(report.bad_names)
    assert any(k.endswith("train_label.json: Data/train/7/spoof/000005.jpg") and "44 integers" in v for k, v in bad.items())
    assert any(k.endswith("spoof/000005.jpg") and "no usable entry" in v for k, v in bad.items())  # so, no label
    assert any(k.endswith("spoof/000077.jpg") and "no usable entry" in v for k, v in bad.items())
    assert any(k.endswith("train/6/000078.jpg") and "outside live/ and spoof/" in v for k, v in bad.items())
    assert any(k.endswith("train/abc") and "CelebA identity" in v for k, v in bad.items())
    assert any(k.endswith("spoof/000003.jpg") and "spoof type (index 40) 11 has no canonical mapping" in v
               for k, v in bad.items())
    assert len(bad) == 6
    # on disk: reported once, as its type, never as "listed but not on disk"
    assert report.missing == {"intra_test": ["Data/train/7/live/000099.jpg"]}
    assert report.conflicts[LABEL_CONFLICTS] == {"Data/train/7/live/000004.jpg": (
        "intra_test/train_label.json: type 1 photo / live-spoof 1, protocol2_test_on_low_quality_device/"
        "train_label.json: type 0 live / live-spoof 0, folder live")}
    assert report.conflicts["protocol1"] == {"Data/test/10/live/000007.jpg": "train, test",
                                             "Data/test/10/spoof/000008.jpg": "train, test"}
    assert report.crossing == {"intra_test": ["10"], DEV_PROTOCOL: ["10"]}
    # a box file that gives no box is a warning (the detector stands in), not an unreadable image
    boxes = dict(report.face_files)
    assert report.unreadable == [] and sorted(boxes) == ["Data/train/6/live/000001.jpg", "Data/train/6/spoof/000002.jpg"]
    assert "000001_BB.txt" in boxes["Data/train/6/live/000001.jpg"]
    assert "expected one line 'x y w h score'" in boxes["Data/train/6/spoof/000002.jpg"]
    assert report.problems == 6 + 1 + 1 + 2 + 2
    res = invoke("check-dataset", "--dataset", "celeba-spoof", "--root", mini)
    assert res.exit_code == 1
    assert f"{report.files} media files, {report.rows} rows; 6 name(s) skipped (listed below)" in res.output
    assert "warning: face files that give no box (--use-dataset-faces falls back to the detector" in res.output
    assert "PROBLEM label vectors: images whose label vector contradicts their folder" in res.output
    assert "PROBLEM intra_test: listed but not on disk" in res.output and "000099.jpg" in res.output


def test_label_conflicts_are_refused_unless_settled(mini):
    labels = json.loads((mini / "metas/intra_test/train_label.json").read_text())
    labels["Data/train/7/live/000004.jpg"] = vector((1, 1, 1, 1))  # the folder says live
    labels["Data/train/6/spoof/000002.jpg"] = vector((1, 1, 1, 0))  # index 43 says live, index 40 photo
    (mini / "metas/intra_test/train_label.json").write_text(json.dumps(labels))
    other = json.loads((mini / "metas/protocol1/train_label.json").read_text())
    other["Data/train/6/spoof/000003.jpg"] = vector((9, 2, 2, 1))  # protocol1 says phone, intra_test pad
    (mini / "metas/protocol1/train_label.json").write_text(json.dumps(other))

    def settled(on_conflict):
        adapter = DATASETS.create("celeba-spoof", root=str(mini))
        adapter.settle_conflicts(on_conflict)
        return adapter.settle_rows(list(adapter.samples()), on_conflict), adapter

    with pytest.raises(AnnotatorError, match=r"3 image\(s\) whose label vector contradicts .*--on-conflict drop"):
        settled("")
    kept, adapter = settled("drop")
    assert sorted(stem(r) for r in kept) == ["000001", "000005", "000006", "000007", "000008"]
    assert "--on-conflict drop: 3 conflicting id(s) left out" in adapter.findings.notes[0]
    kept, _ = settled("first")
    types = {stem(r): (r.attack_type, r.pai, r.is_attack) for r in kept}
    assert types["000004"] == ("print", "photo", True) and types["000003"] == ("replay", "pad", True)
    assert types["000002"] == ("print", "photo", True)


def test_leakage_within_a_protocol_follows_on_conflict(mini):
    test = json.loads((mini / "metas/protocol1/test_label.json").read_text())
    (mini / "metas/protocol1/train_label.json").write_text(json.dumps(test))  # every test image in train too
    with pytest.raises(AnnotatorError, match=r"2 id\(s\) listed in two groups .*protocol1"):
        DATASETS.create("celeba-spoof", root=str(mini)).settle_conflicts("")
    for how, code in (("drop", -1), ("first", 0)):
        adapter = DATASETS.create("celeba-spoof", root=str(mini))
        adapter.settle_conflicts(how)
        got = {stem(r): r.protocols["protocol1"] for r in adapter.samples()}
        assert got["000007"] == got["000008"] == code and got["000004"] == -1


def test_annotate_run_with_dataset_faces(tmp_path, mini):
    out = tmp_path / "celeba.zarr"
    r = invoke("run", "--dataset", "celeba-spoof", "--root", mini, "--out", out, "--cluster", "none",
               "--segmenter", "geometry", "--use-dataset-faces")
    assert r.exit_code == 0, r.output
    g = zarr.open_group(str(out), mode="r")
    meta = {c: g[f"meta/{c}"][:].tolist() for c in ("source", "attack_type", "pai", "illumination", "environment",
                                                     "split", "subject", "face_source", "status", "is_attack")}
    order = [s.rsplit("/", 1)[1][:-4] for s in meta["source"]]
    assert order == [i[3] for i in IMAGES]
    assert [(meta["attack_type"][i], meta["pai"][i], meta["illumination"][i], meta["environment"][i])
            for i in range(8)] == [EXPECTED[s] for s in order]
    assert meta["split"] == [i[0] for i in IMAGES] and meta["subject"] == [i[1] for i in IMAGES]
    assert meta["is_attack"] == [i[2] == "spoof" for i in IMAGES]
    assert meta["face_source"] == ["dataset"] * 8 and meta["status"] == [0] * 8
    assert g["protocols/intra_test"][:].tolist() == [0] * 6 + [2] * 2
    assert g[f"protocols/{DEV_PROTOCOL}"][:].tolist() == [1, 1, 1, 0, 0, 0, 2, 2]
    assert g["protocols/protocol1"][:].tolist() == [0, 0, 0, -1, -1, -1, 2, 2]


def test_a_224_box_of_a_turned_image_stays_in_the_upright_frame(tmp_path):
    """client.py reads images with cv2.imread, which applies the EXIF turn, then scales the box by
    the upright size: a sideways-stored photo's box is upright already and is not turned again."""
    from annotator.core.samples import SampleRef
    from annotator.media.decode import Orientation
    from annotator.shard.locate import dataset_faces

    f = tmp_path / "1_BB.txt"
    f.write_text("22.4 44.8 112 56 0.9\n")
    ref = SampleRef(sample_id="s", path="x.jpg", source="x.jpg", video_id="x.jpg", is_attack=False,
                    attack_type="bonafide", dataset="celeba-spoof", media={"faces": str(f), "faces_format": "bb224"})
    # stored 200 high x 100 wide, EXIF 6 (turn 90 clockwise): shown 100 high x 200 wide
    (box,), _ = dataset_faces(ref, -1, Orientation(90), stored_hw=(200, 100))
    assert box.box == (int(22 * 200 / 224), int(44 * 100 / 224), int(22 * 200 / 224) + int(112 * 200 / 224),
                       int(44 * 100 / 224) + int(56 * 100 / 224))
    (plain,), _ = dataset_faces(ref, -1, Orientation(0), stored_hw=(100, 200))
    assert plain.box == box.box  # the same as for an image stored upright at that size


def test_annotate_run_hears_of_labelled_images_that_are_not_on_disk(mini):
    labels = json.loads((mini / "metas/intra_test/train_label.json").read_text())
    labels["Data/train/7/live/000099.jpg"] = vector((0, 0, 0, 0))
    labels["Data/train/7/live/000098.jpg"] = vector((0, 0, 0, 0))
    (mini / "metas/intra_test/train_label.json").write_text(json.dumps(labels))
    adapter = DATASETS.create("celeba-spoof", root=str(mini))
    assert len(list(adapter.samples())) == len(IMAGES)
    assert adapter.findings.notes == ["celeba-spoof: 2 labelled image(s) are not on disk (`annotate check-dataset` "
                                      "lists them)"]
