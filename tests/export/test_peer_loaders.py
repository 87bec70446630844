"""The peers' own loaders, unchanged, on our exports: their file arithmetic (read from their
repositories and written here anew) over exports of one image and of videos of 2, 3, 8 and 10
frames. Every id they pick must exist, and the frames behind those ids must be the ones they mean:

- CDCN (CVPR2020_paper_codes/Load_OULUNPU_train.py, _valtest.py): training draws an id from
  randint(1, n - 1) with n the files of the video's map folder; val/test takes ids ii * (m // 10) + 1,
  ii < 8, with m the files of the image folder divided by 3.
- SSAN (datasets/Load_OULUNPU_train.py, _valtest.py): training draws randint(0, n - 1) with n the
  video folder's *.jpg; val/test takes ids ii * (n // 10) + 1, ii < 8, and reads image and map.
- SSDG (utils/utils.py sample_frames): a video's files sorted by their integer names, positions
  6 + j * floor(n / K), j < K; K = 1 for training videos, 2 for test videos.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import make_store

from annotator.export import export_store
from annotator.export.slots import cdcn_slots, ssan_slots, ssdg_slots

COUNTS = (1, 2, 3, 8, 10)  # one image, then videos of 2, 3, 8 and 10 frames


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A store of five videos (image row values tell the row) exported in the three formats."""
    base = tmp_path_factory.mktemp("peers")
    video_id, frame_index = [], []
    for k, n in enumerate(COUNTS):
        video_id += [f"v{n}"] * n
        frame_index += [-1] if n == 1 else [5 * f for f in range(n)]
    rows = len(video_id)
    url = make_store(str(base / "s.zarr"), n=rows, video_id=video_id, frame_index=frame_index,
                     is_attack=[v in ("v2", "v8") for v in video_id])
    folders = {}
    for fmt in ("cdcn", "ssan", "ssdg"):
        folders[fmt] = base / fmt
        export_store(url, fmt, str(folders[fmt]), protocol="all", progress=False)
    first = {v: video_id.index(v) for v in set(video_id)}
    return folders, first


def _frame_of(path: Path, first_row: int) -> int:
    """Which frame of its video a file shows: its pixels hold the store row (right half, green)."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    return int(round(pixels[:, pixels.shape[1] // 2:, 1].mean())) - first_row


def _files(folder: Path, pattern: str = "*") -> int:
    return sum(1 for p in folder.glob(pattern) if p.is_file())


@pytest.mark.parametrize("n", COUNTS)
def test_cdcn_loaders_draw_every_frame_and_test_takes_the_frames_it_means(exports, n):
    folders, first = exports
    out, video = folders["cdcn"], f"v{n}"
    images, maps = out / "All_images" / video, out / "All_depth" / video

    map_files = _files(maps)
    assert map_files - 1 > 1, "randint(1, n - 1) needs n >= 3"
    train_ids = range(1, map_files - 1)
    for i in train_ids:
        for path in (images / f"{video}_{i:03d}_scene.jpg", images / f"{video}_{i:03d}_scene.dat",
                     maps / f"{video}_{i:03d}_depth1D.jpg"):
            assert path.is_file(), path
    drawn = [_frame_of(images / f"{video}_{i:03d}_scene.jpg", first[video]) for i in train_ids]
    if n < 10:  # every frame equally often
        assert sorted(set(drawn)) == list(range(n)) and len({drawn.count(f) for f in range(n)}) == 1, drawn
    else:  # one id per frame, as in CDCN's own data: ids 1..n-2
        assert drawn == list(range(n - 2))

    interval = _files(images) // 3 // 10
    assert interval >= 1, "an interval of 0 would read frame 001 eight times"
    test_ids = [ii * interval + 1 for ii in range(8)]
    taken = [_frame_of(images / f"{video}_{i:03d}_scene.jpg", first[video]) for i in test_ids]
    assert all((maps / f"{video}_{i:03d}_depth1D.jpg").is_file() for i in test_ids)
    assert taken == ([f % n for f in range(8)] if n < 10 else [ii * (n // 10) for ii in range(8)])


@pytest.mark.parametrize("n", COUNTS)
def test_ssan_loaders_draw_every_frame_and_test_takes_the_frames_it_means(exports, n):
    folders, first = exports
    out, video = folders["ssan"], f"v{n}"
    images, maps = out / "All_files" / video, out / "Depth" / "All_files" / video

    jpgs = _files(images, "*.jpg")
    assert jpgs - 1 > 0, "randint(0, n - 1) needs n >= 2"
    drawn = [_frame_of(images / f"{video}_{i}_scene.jpg", first[video]) for i in range(jpgs - 1)]
    assert all((maps / f"{video}_{i}_depth1D.jpg").is_file() for i in range(jpgs - 1))
    if n < 10:
        assert sorted(set(drawn)) == list(range(n)) and len({drawn.count(f) for f in range(n)}) == 1, drawn
    else:
        assert drawn == list(range(n - 1))

    interval = jpgs // 10
    test_ids = [ii * interval + 1 for ii in range(8)]
    for i in test_ids:  # a missing first id would leave SSAN reading the previous video's image
        assert (images / f"{video}_{i}_scene.jpg").is_file() and (maps / f"{video}_{i}_depth1D.jpg").is_file()
    taken = [_frame_of(images / f"{video}_{i}_scene.jpg", first[video]) for i in test_ids]
    assert taken == ([(f + 1) % n for f in range(8)] if n < 10 else [ii * (n // 10) + 1 for ii in range(8)])


def _sample_frames(entries: list[dict], k: int) -> dict[str, list[str]]:
    """SSDG's rule: entries grouped by folder in list order, each video's files sorted by integer
    name, positions 6 + j * floor(n / k), j < k (an IndexError where a position is past the end)."""
    videos: dict[str, list[int]] = {}
    for e in entries:
        folder, name = e["photo_path"].rsplit("/", 1)
        videos.setdefault(folder, []).append(int(name.split(".")[0]))
    return {folder: [f"{folder}/{sorted(names)[6 + j * math.floor(len(names) / k)]}.png" for j in range(k)]
            for folder, names in videos.items()}


@pytest.mark.parametrize("k", [1, 2])
def test_ssdg_sample_frames_takes_positions_inside_every_video(exports, k):
    folders, first = exports
    entries = json.loads((folders["ssdg"] / "data_label" / "synthetic" / "all_label.json").read_text())
    chosen = _sample_frames(entries, k)
    assert len(chosen) == len(COUNTS)
    for folder, paths in chosen.items():
        video = folder.rsplit("/", 1)[1]
        n = int(video[1:])
        frames = [_frame_of(Path(p), first[video]) for p in paths]
        slots = max(n, 14)
        assert frames == [(6 + j * (slots // k)) * n // slots for j in range(k)], (video, frames)
    two = [_frame_of(Path(p), first["v2"]) for p in next(v for f, v in chosen.items() if f.endswith("/v2"))]
    if k == 2:
        assert two == [0, 1]  # a video of two exported frames gives test its two frames


@pytest.mark.parametrize("slots, lowest", [(cdcn_slots, 10), (ssan_slots, 10), (ssdg_slots, 14)])
def test_slot_maps_are_one_to_one_from_the_count_where_the_arithmetic_holds(slots, lowest):
    for n in range(1, 40):
        m = slots(n)
        assert sorted(set(m)) == list(range(n)), (n, m)  # every frame shown
        if n >= lowest:
            assert m == list(range(n))
        else:
            assert len(m) >= lowest


def test_repeated_slots_are_hard_links_and_frames_csv_lists_every_file(exports):
    folders, _ = exports
    images = folders["cdcn"] / "All_images" / "v1"
    scenes = sorted(images.glob("*_scene.jpg"))
    assert len(scenes) == len(cdcn_slots(1)) == 10
    assert len({p.stat().st_ino for p in scenes}) == 1 and scenes[0].stat().st_nlink == 10
    import csv

    lines = [r for r in csv.DictReader(open(folders["cdcn"] / "frames.csv")) if r["video_id"] == "v1"]
    assert sorted(r["file"] for r in lines) == sorted(f"All_images/v1/{p.name}" for p in scenes)
    assert {r["frame_index"] for r in lines} == {"-1"}
