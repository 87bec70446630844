"""`annotate export`: each format read back by a reader written to that format's own conventions."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from annotator import store
from annotator.core.errors import AnnotatorError
from annotator.export import EXPORTERS, export_store
from annotator.export.base import face_box
from pipelines.cli import cli


@pytest.fixture(scope="module")
def exported(sample_store, tmp_path_factory):
    """The sample store exported once in every format: (store url, {format: folder})."""
    url, _ = sample_store
    base = tmp_path_factory.mktemp("exports")
    # FLIP's layouts take stores sampled with --sampling flip-mcio / flip-wcs: tests/export/test_flip.py
    return url, {f: _export(url, f, base / f) for f in EXPORTERS.names() if not f.startswith("flip-")}


def _export(url, fmt, folder, **kw) -> Path:
    export_store(url, fmt, str(folder), protocol="all", progress=False, **kw)
    return folder


def _store_rows(url):
    root = store.open_store(url)
    meta = store.read_meta(root, ["sample_id", "video_id", "frame_index", "is_attack", "status"])
    return root, meta


def _grey(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.int16)


def _rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def _frames(folder) -> dict[str, dict]:
    """frames.csv: first file of each exported row -> its line."""
    return {r["file"]: r for r in csv.DictReader(open(folder / "frames.csv"))}


def _video_list(path) -> list[tuple[int, str]]:
    """A `label,video` list without header, as CDCN's and SSAN's pandas.read_csv(header=None) reads it."""
    return [(int(a), b) for a, b in csv.reader(open(path))]


def test_cdcn_layout_reads_back_with_cdcn_conventions(exported):
    url, folders = exported
    folder = folders["cdcn"]
    root, meta = _store_rows(url)
    frames = _frames(folder)
    videos = _video_list(folder / "Protocol" / "All.txt")
    assert len(videos) == 6 and all(label in (1, -1) for label, _ in videos)
    seen, deep = set(), 0
    for label, video in videos:
        # CDCN: frames_total = files in the map folder; ids 1-based, "_%03d"
        total = len(list((folder / "All_depth" / video).iterdir()))
        for image_id in range(1, total + 1):
            scene = f"All_images/{video}/{video}_{image_id:03d}_scene.jpg"
            row = int(frames[scene]["row"])
            assert (label == 1) == (not meta["is_attack"][row])  # CDCN: 1 = real
            lines = open(folder / (scene[:-len(".jpg")] + ".dat")).read().split()
            y1, x1, w, h = (float(v) for v in lines[:4])  # CDCN's names: the first value is the column
            assert (y1, x1, w, h) == pytest.approx(face_box(root["landmarks"][row], 256), abs=0.06)
            assert np.abs(_rgb(folder / scene) - root["image"][row]).mean() < 3  # JPEG 95
            depth = _grey(folder / f"All_depth/{video}/{video}_{image_id:03d}_depth1D.jpg")
            live = root["label"][row][1].astype(np.int16)
            assert depth.shape == (256, 256) and np.abs(depth - live).mean() < 1.5  # JPEG 100
            assert (depth[live == 0] < 16).mean() > 0.99  # polarity: the map is the live channel, not its inverse
            if (live > 128).any() and row not in seen:
                assert depth[live > 128].mean() > 100
                deep += 1
            seen.add(row)
    assert len(seen) == int((meta["status"] == 0).sum()) and deep >= 10


def test_ssdg_lists_read_back_with_ssdg_conventions(exported):
    url, folders = exported
    folder = folders["ssdg"]
    root, meta = _store_rows(url)
    frames = _frames(folder)
    entries = json.load(open(folder / "data_label" / "sample" / "all_label.json"))
    real = json.load(open(folder / "data_label" / "sample" / "real_label.json"))
    fake = json.load(open(folder / "data_label" / "sample" / "fake_label.json"))
    assert len(entries) == len(real) + len(fake)
    assert len({frames[str(Path(e["photo_path"]).relative_to(folder))]["row"] for e in entries}) == \
        int((meta["status"] == 0).sum())  # every usable row, some in several files (tests/export/test_peer_loaders.py)
    by_video: dict[str, list] = {}
    for e in entries:
        path = Path(e["photo_path"])
        assert path.is_absolute() and path.is_file()
        row = int(frames[str(path.relative_to(folder))]["row"])
        assert e["photo_label"] == (0 if meta["is_attack"][row] else 1)  # SSDG: 1 = real
        assert ("/real/" in str(path)) == (e["photo_label"] == 1)
        assert np.array_equal(_rgb(path), root["image"][row])  # PNG: exact
        by_video.setdefault(str(path.parent), []).append((int(path.stem), row, e["photo_belong_to_video_ID"]))
    assert all(len({v for *_, v in fr}) == 1 for fr in by_video.values())  # one video id per folder
    video = max(by_video.values(), key=lambda fr: len({r for _, r, _ in fr}))  # the 10-frame video
    video.sort()
    assert [meta["frame_index"][r] for _, r, _ in video] == sorted(meta["frame_index"][r] for _, r, _ in video)
    # ten frames stretched over 14 files: sample_frames(K=1) takes file 6, which shows frame 6 * 10 // 14
    rows = sorted({r for _, r, _ in video})
    assert len(video) == 14 and len(rows) == 10 and video[6][0] == 6 and video[6][1] == rows[4]


def test_ssan_layout_reads_back_with_ssan_conventions(exported):
    url, folders = exported
    folder = folders["ssan"]
    root, meta = _store_rows(url)
    frames = _frames(folder)
    for label, video in _video_list(folder / "all_list_video.txt"):
        total = len(list((folder / "All_files" / video).glob("*.jpg")))
        for image_id in range(total):  # SSAN: "{video}_{id}_scene.jpg", no zero padding
            scene = f"All_files/{video}/{video}_{image_id}_scene.jpg"
            row = int(frames[scene]["row"])
            assert label == (0 if meta["is_attack"][row] else 1)
            assert np.abs(_rgb(folder / scene) - root["image"][row]).mean() < 3
            depth = _grey(folder / "Depth" / "All_files" / video / f"{video}_{image_id}_depth1D.jpg")
            assert np.abs(depth - root["label"][row][1]).mean() < 1.5


def test_folder_pngs_equal_the_store(exported):
    url, folders = exported
    folder = folders["folder"]
    root, meta = _store_rows(url)
    index = list(csv.DictReader(open(folder / "index.csv")))
    assert len(index) == int((meta["status"] == 0).sum())
    for r in index:
        row = int(r["row"])
        assert r["sample_id"] == meta["sample_id"][row] and int(r["is_attack"]) == int(meta["is_attack"][row])
        assert np.array_equal(_rgb(folder / "all" / "image" / f"{r['stem']}.png"), root["image"][row])
        for c, name in enumerate(("attack", "live", "background")):
            assert np.array_equal(_grey(folder / "all" / name / f"{r['stem']}.png"), root["label"][row][c])


def test_every_format_writes_a_readme_naming_its_store_and_conventions(exported):
    url, folders = exported
    for fmt, folder in folders.items():
        text = (folder / "README.md").read_text()
        assert url in text and "even:10" in text and "256 x 256" in text and "box scale 1.3" in text, fmt
    assert "+1,<video>" in (folders["cdcn"] / "README.md").read_text()
    assert '"photo_label": 1 bona fide / 0 attack' in (folders["ssdg"] / "README.md").read_text()


def test_parallel_export_equals_serial_and_a_rerun_resumes(sample_store, tmp_path):
    url, _ = sample_store
    one = _export(url, "folder", tmp_path / "one", workers=1)
    four = _export(url, "folder", tmp_path / "four", workers=4)
    files = sorted(p.relative_to(one) for p in one.rglob("*.png"))
    assert files == sorted(p.relative_to(four) for p in four.rglob("*.png")) and len(files) == 15 * 4
    assert all((one / f).read_bytes() == (four / f).read_bytes() for f in files)
    before = {f: (one / f).stat().st_mtime_ns for f in files}
    (one / ".export" / "done" / "000001.json").unlink()  # shard 1 unfinished
    shard = store.shard_size_of(store.open_store(url))
    lost = [f for f in files if int(f.name[:6]) >= shard][0]  # a row of shard 1
    (one / lost).unlink()
    res = export_store(url, "folder", str(one), protocol="all", progress=False)
    assert res["resumed"] == 1 and (one / lost).read_bytes() == (four / lost).read_bytes()
    assert all((one / f).stat().st_mtime_ns == before[f] for f in files if int(f.name[:6]) < shard)  # shard 0 untouched


def test_bad_exports_are_one_line_errors_and_write_nothing(sample_store, tmp_path):
    url, _ = sample_store
    _export(url, "cdcn", tmp_path / "c")
    with pytest.raises(AnnotatorError, match=r"holds an export with other settings \(format: cdcn\)"):
        export_store(url, "ssan", str(tmp_path / "c"), protocol="all", progress=False)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(AnnotatorError, match="is not empty and holds no export"):
        export_store(url, "folder", str(busy), protocol="all", progress=False)
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]  # not even the export's lock
    runner = CliRunner()
    for args, message in ((["--format", "tfrecord"], "unknown export format 'tfrecord'; choose one of: cdcn, flip-mcio, flip-wcs, folder"),
                          (["--format", "folder", "--protocol", "p9"], "the store has no protocol 'p9'"),
                          (["--format", "folder", "--protocol", "split"], "meta/split names no train/dev/test rows")):
        r = runner.invoke(cli, ["export", url, "--out", str(tmp_path / "new"), *args])
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, r.output
        assert not (tmp_path / "new").exists()
