"""FLIP's layouts (--format flip-mcio, flip-wcs): FLIP's own list lines (tests/data/flip_lists, kept
verbatim from its repository) against a store whose videos carry the source paths of the listed
videos; every listed name the store can produce is written at its listed path, showing that video's
frame, and the others are reported."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from click.testing import CliRunner
from synthetic import make_store

from annotator.core.errors import AnnotatorError
from annotator.export import export_store
from annotator.export.flip import flip_video
from annotator.media.sampling import parse
from pipelines.cli import cli

LISTS = Path(__file__).parents[1] / "data" / "flip_lists"

# (dataset adapter, the source path its adapter gives as video_id, is_attack, frames)
MCIO_VIDEOS = [("oulu-npu", "Train_files/3_1_07_1.avi", False, 2), ("oulu-npu", "Train_files/3_3_17_4.avi", True, 2),
               ("oulu-npu", "Test_files/1_1_38_4.avi", True, 2),
               ("msu-mfsd", "scene01/real/real_client026_laptop_SD_scene01.mp4", False, 2),
               ("casia-fasd", "train_release/4/4.avi", True, 2),
               ("replay-attack", "test/real/client026_session01_webcam_authenticate_adverse_2.mov", False, 2),
               ("celeba-spoof", "Data/train/732/live/040170.jpg", False, 1)]


def _store(path, videos, sampling):
    dataset, video_id, is_attack, frame_index = [], [], [], []
    for ds, vid, attack, n in videos:
        dataset += [ds] * n
        video_id += [vid] * n
        is_attack += [attack] * n
        frame_index += [-1] if n == 1 else [int(i) for i in parse(sampling).indices(50)]
    url = make_store(str(path), n=len(video_id), video_id=video_id, frame_index=frame_index, is_attack=is_attack,
                     dataset=dataset, split=["train"] * len(video_id), config={"sampling": sampling})
    return url, {v: video_id.index(v) for v in video_id}


def _row_shown(path) -> int:
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    assert pixels.shape == (224, 224, 3)
    return int(round(pixels[:, 120:, 1].mean()))


def test_flip_mcio_writes_every_listed_name_the_store_can_produce(tmp_path):
    url, first = _store(tmp_path / "s.zarr", MCIO_VIDEOS, "flip-mcio")
    out = tmp_path / "mcio"
    res = export_store(url, "flip-mcio", str(out), progress=False, options={"lists": str(LISTS / "MCIO")})
    listed = [line for f in sorted((LISTS / "MCIO").glob("*.txt")) for line in f.read_text().split()]
    assert res["unmatched"] == 1 and (out / "unmatched.txt").read_text() == \
        "oulu_real_test.txt: oulu/test/real/5_2_53_1_frame0.png\n"
    by_name = {flip_video_of(vid): vid for _, vid, _, _ in MCIO_VIDEOS}
    for name in listed:
        if "5_2_53_1" in name:
            assert not (out / name).exists()
            continue
        video = name.split("/")[-1].removesuffix("_frame0.png").removesuffix(".jpg")
        assert _row_shown(out / name) == first[by_name[video]]  # frame 6 of its video
        if name.endswith("_frame0.png"):  # FLIP's test loader reads frame1 beside it: the second frame
            assert _row_shown(out / name.replace("frame0", "frame1")) == first[by_name[video]] + 1
    # the lists decide the folder: the store's split is train for all, the test list puts 1_1_38_4 under test/
    assert (out / "oulu/test/fake/1_1_38_4_frame0.png").is_file() and (out / "oulu/train/fake/3_3_17_4_frame1.png").is_file()
    assert (out / "txt" / "oulu_fake_test.txt").read_text().split() == (LISTS / "MCIO" / "oulu_fake_test.txt").read_text().split()
    assert (out / "txt" / "oulu_real_test.txt").read_text() == ""


def flip_video_of(video_id: str) -> str:
    from annotator.export.base import Row

    ds = next(d for d, v, _, _ in MCIO_VIDEOS if v == video_id)
    return flip_video(Row(0, "train", "", video_id, 0, 0, False, "", "", ds))


def test_flip_wcs_takes_wmca_frames_by_their_index_and_without_lists_the_store_splits_decide(tmp_path):
    url, first = _store(tmp_path / "w.zarr", [("wmca", "face-station/14.02.18/017_03_000_0_00.hdf5", False, 10)],
                        "flip-wcs")
    out = tmp_path / "wcs"
    res = export_store(url, "flip-wcs", str(out), progress=False, options={"lists": str(LISTS / "WCS")})
    assert res["unmatched"] == 1
    for k, name in enumerate(sorted((LISTS / "WCS" / "wmca_real_train.txt").read_text().split())):
        assert name.endswith(f"_{5 * k:02d}.jpg") and _row_shown(out / name) == first["face-station/14.02.18/017_03_000_0_00.hdf5"] + k

    own = tmp_path / "own"
    export_store(url, "flip-wcs", str(own), protocol="split", progress=False)
    names = (own / "txt" / "wmca_real_train.txt").read_text().split()
    assert names == [f"wmca/train/real/14.02.18_017_03_000_0_00_{5 * k:02d}.jpg" for k in range(10)]
    assert all((own / n).is_file() for n in names)
    small = tmp_path / "small"
    export_store(url, "flip-wcs", str(small), protocol="split", progress=False, options={"size": 96})
    assert Image.open(small / names[0]).size == (96, 96)
    assert "96 x 96 RGB crops (--size)" in (small / "README.md").read_text()


def test_flip_sampling_names_and_bad_flip_exports(tmp_path):
    assert parse("flip-mcio").indices(50).tolist() == [6, 31]  # 6 and 6 + floor(50 / 2)
    assert parse("flip-wcs").indices(50).tolist() == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]
    url, _ = _store(tmp_path / "e.zarr", [("oulu-npu", "Train_files/1_1_01_1.avi", False, 10)], "even:10")
    with pytest.raises(AnnotatorError, match=r"--format flip-mcio takes the frames of `--sampling flip-mcio` \(ssdg-test\); "
                                             r"this store sampled even:10"):
        export_store(url, "flip-mcio", str(tmp_path / "x"), progress=False)
    assert not (tmp_path / "x").exists()
    r = CliRunner().invoke(cli, ["export", url, "--format", "folder", "--out", str(tmp_path / "y"), "--lists", str(LISTS)])
    assert r.exit_code == 1 and "--lists is for the flip-mcio and flip-wcs formats, not folder" in r.output
    url2, _ = _store(tmp_path / "m.zarr", MCIO_VIDEOS[:1], "flip-mcio")
    r = CliRunner().invoke(cli, ["export", url2, "--format", "flip-mcio", "--out", str(tmp_path / "z"),
                                 "--lists", str(tmp_path)])
    assert r.exit_code == 1 and "no .txt lists there" in r.output


def test_what_a_listed_export_reports_is_what_it_wrote(tmp_path):
    unlisted = ("oulu-npu", "Train_files/2_2_22_2.avi", True, 2)  # in no list: not written
    url, _ = _store(tmp_path / "s.zarr", MCIO_VIDEOS + [unlisted], "flip-mcio")
    out = tmp_path / "mcio"
    r = CliRunner().invoke(cli, ["export", url, "--format", "flip-mcio", "--out", str(out), "--lists", str(LISTS / "MCIO")])
    assert r.exit_code == 0, r.output
    written = [p for p in out.rglob("*") if p.suffix in (".png", ".jpg")]
    rows = sum(n for _, _, _, n in MCIO_VIDEOS) + 2
    frames = (out / "frames.csv").read_text().splitlines()[1:]
    assert len(frames) == len(written) == 13  # six videos' frame0 and frame1, one CelebA image
    assert f"wrote {out}: 13 image files of 13 of {rows} usable rows (the listed ones) as flip-mcio" in r.output


def test_lists_that_match_nothing_and_a_zero_size_are_refused_before_writing(tmp_path):
    url, _ = _store(tmp_path / "s.zarr", MCIO_VIDEOS, "flip-mcio")
    with pytest.raises(AnnotatorError, match=r"none of its \d+ listed names is a frame this store can produce "
                                             r"\(its datasets: casia, celeb, msu, oulu, replay\)"):
        export_store(url, "flip-mcio", str(tmp_path / "x"), progress=False, options={"lists": str(LISTS / "WCS")})
    r = CliRunner().invoke(cli, ["export", url, "--format", "flip-mcio", "--out", str(tmp_path / "y"), "--size", "0"])
    assert r.exit_code == 1 and "--size must be 32..4096 pixels, got 0" in r.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_an_image_gives_both_mcio_names_and_an_empty_lists_flag_is_no_lists(tmp_path):
    url, _ = _store(tmp_path / "s.zarr", [("msu-mfsd", "scene01/real/real_client099_photo.jpg", False, 1)], "flip-mcio")
    out = tmp_path / "one"
    res = export_store(url, "flip-mcio", str(out), protocol="split", progress=False, options={"lists": "", "size": None})
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert files == ["msu/train/real/real_client099_photo_frame0.png", "msu/train/real/real_client099_photo_frame1.png"]
    assert res["images"] == 2 and len((out / "frames.csv").read_text().splitlines()) == 1 + 2
    again = export_store(url, "flip-mcio", str(out), protocol="split", progress=False)  # the same settings: resumes
    assert again["resumed"] == again["shards"] == 1
