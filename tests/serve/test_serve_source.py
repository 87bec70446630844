"""Source frames of failed rows (GET /source/<row>.jpg): a store made from a folder dataset with a
corrupt image, an image without a face and a video without one (conftest.py's messy_store) shows
each failed row's frame, decoded from the dataset root its config records (the right frame of the
video), lists the rows with their status name and error; it refuses a source that leaves the root
(.., an absolute path, a symlink out) and answers a one-line JSON error for a root that is gone, a
file that does not decode and a usable row. The sample dataset's empty root is the shipped data."""

import io
import shutil

import numpy as np
import pytest
import zarr
from PIL import Image

from annotator import store
from annotator.serve import create_app


def _copy(messy_store, tmp_path):
    """A copy of the store and of its dataset root, the copy's config naming the copied root."""
    url, root, meta = messy_store
    new_root, new_url = tmp_path / "data", tmp_path / "copy.zarr"
    shutil.copytree(root, new_root)
    shutil.copytree(url, new_url)
    group = zarr.open_group(str(new_url), mode="r+", use_consolidated=False)
    group.attrs["config"] = {**group.attrs["config"], "root": str(new_root)}
    store.finalize(str(new_url))
    return str(new_url), new_root, meta


def _set_source(url, row: int, source: str) -> None:
    with zarr.config.set(store.WRITE_CONFIG):
        zarr.open_group(url, mode="r+", use_consolidated=False)["meta/source"][row:row + 1] = np.array([source], dtype=object)


def _jpeg(response) -> np.ndarray:
    assert response.status_code == 200 and response.mimetype == "image/jpeg", response.get_data(as_text=True)
    return np.asarray(Image.open(io.BytesIO(response.data)).convert("RGB")).astype(np.float64)


def _error(response, code: int, *texts) -> str:
    assert response.status_code == code, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert "\n" not in error and "Traceback" not in response.get_data(as_text=True)
    for t in texts:
        assert t in error, error
    return error


def _row(meta, sample_id: str) -> int:
    return meta["sample_id"].index(sample_id)


def test_failed_rows_show_their_source_frame(messy_store):
    url, root, meta = messy_store
    c = create_app(url).test_client()
    noface, corrupt, good = (_row(meta, f"bonafide/{n}") for n in ("d_noface.png", "c_corrupt.jpg", "a_good.jpg"))
    assert meta["status"][noface] == 2 and meta["status"][corrupt] == 1 and meta["status"][good] == 0
    tile = _jpeg(c.get(f"/source/{noface}.jpg"))
    assert tile.shape == (96, 128, 3)  # 320 x 240 downscaled to the 128 px tile, its aspect kept
    expected = Image.open(root / "bonafide" / "d_noface.png")
    expected.thumbnail((128, 128), Image.BILINEAR)
    expected = np.asarray(expected, np.float64)
    assert np.abs(tile - expected).mean() < 6 and np.abs(tile - expected[::-1]).mean() > 30  # that image
    assert _jpeg(c.get(f"/source/{noface}.jpg?side=512")).shape == (240, 320, 3)  # never enlarged
    videos = [i for i, s in enumerate(meta["sample_id"]) if s.startswith("attack/replay/g_blank.mp4")]
    assert len(videos) >= 2 and all(meta["status"][i] == 2 and meta["frame_index"][i] >= 0 for i in videos)
    for i in videos:  # the row's own frame: its grey level says which
        assert abs(_jpeg(c.get(f"/source/{i}.jpg")).mean() - (10 + 12 * meta["frame_index"][i])) < 4, i
    _error(c.get(f"/source/{corrupt}.jpg"), 422, "cannot decode", "c_corrupt.jpg")
    _error(c.get(f"/source/{good}.jpg"), 404, "usable", "failed rows only")
    _error(c.get(f"/source/{noface}.jpg?side=5000"), 400, "side must be 32 .. 1024")
    _error(c.get(f"/source/{noface}.jpg?side=big"), 400, "whole numbers")
    _error(c.get("/source/999.jpg"), 404, "outside the store")
    listed = {r["row"]: r for r in c.get("/api/rows?per_page=500").get_json()["rows"]}
    assert listed[noface]["status_name"] == "no_face" and listed[noface]["error"] == meta["error"][noface]
    assert listed[corrupt]["status_name"] == "unreadable" and "cannot read image" in listed[corrupt]["error"]
    assert "status_name" not in listed[good] and "error" not in listed[good]
    assert c.get(f"/api/rows/{noface}").get_json()["status_name"] == "no_face"


@pytest.mark.parametrize("source, text", [
    ("../outside.png", "is not a path inside the dataset root"),
    ("bonafide/../../outside.png", "is not a path inside the dataset root"),
    ("ABSOLUTE", "is not a path inside the dataset root"),
    ("bonafide/d_noface.png\x00.txt", "is not a path inside the dataset root"),
    ("bonafide/link.png", "leads outside the dataset root"),
])
def test_a_source_leaving_the_dataset_root_is_refused(messy_store, tmp_path, source, text):
    url, root, meta = _copy(messy_store, tmp_path)
    outside = tmp_path / "outside.png"
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(outside)
    (root / "bonafide" / "link.png").symlink_to(outside)
    row = _row(meta, "bonafide/d_noface.png")
    _set_source(url, row, str(outside) if source == "ABSOLUTE" else source)
    r = create_app(url).test_client().get(f"/source/{row}.jpg")
    _error(r, 403, text, "refused")
    assert r.mimetype == "application/json"


def test_a_store_whose_dataset_root_is_gone_says_so(messy_store, tmp_path):
    url, root, meta = _copy(messy_store, tmp_path)
    c = create_app(url).test_client()
    row = _row(meta, "bonafide/d_noface.png")
    assert _jpeg(c.get(f"/source/{row}.jpg?side=64")).shape == (48, 64, 3)
    (root / "bonafide" / "d_noface.png").unlink()
    _error(c.get(f"/source/{row}.jpg"), 404, "is not under the dataset root", "any more")
    shutil.rmtree(root)
    _error(c.get(f"/source/{row}.jpg"), 404, f"the dataset root {root}", "is not here")
    assert c.get("/api/rows").status_code == 200  # the rest of the page does not need it


def test_the_sample_dataset_s_empty_root_is_the_shipped_data(sample_store, tmp_path, sample_root):
    import av

    url = str(tmp_path / "sample.zarr")
    shutil.copytree(sample_store[0], url)
    root = zarr.open_group(url, mode="r")
    assert root.attrs["config"]["dataset"] == "sample" and not root.attrs["config"]["root"]
    sources, frames = root["meta/source"][:], root["meta/frame_index"][:]
    row = next(i for i in range(len(sources)) if str(sources[i]).endswith(".mp4") and frames[i] > 0)
    with zarr.config.set(store.WRITE_CONFIG):  # as if the run had failed on that frame
        zarr.open_group(url, mode="r+", use_consolidated=False)["meta/status"][row:row + 1] = np.array([2], np.int8)
    tile = _jpeg(create_app(url).test_client().get(f"/source/{row}.jpg?side=256"))
    with av.open(str(sample_root / str(sources[row]))) as video:
        frame = next(f for i, f in enumerate(video.decode(video=0)) if i == frames[row]).to_image()
    frame.thumbnail((256, 256), Image.BILINEAR)
    assert tile.shape[:2] == (frame.height, frame.width)
    assert np.abs(tile - np.asarray(frame, np.float64)).mean() < 8


def test_a_failed_frame_of_a_video_turned_by_auto_rotate_is_shown_turned(tmp_path, face_image):
    """A phone video stored sideways without a display matrix: its first frame's face settles a 90
    degree turn; its later blank frames fail, and their tiles show them turned as the run did (the
    file itself says nothing of the turn)."""
    from helpers import sync_config, write_video
    from pipelines.run import run

    root = tmp_path / "phone"
    (root / "bonafide").mkdir(parents=True)
    canvas = np.full((512, 704, 3), 90, np.uint8)  # upright: wider than high
    canvas[:, 96:608] = face_image
    sideways = np.ascontiguousarray(np.rot90(canvas, 1))  # stored turned anticlockwise: 704 high, 512 wide
    blank = np.full_like(sideways, 60)
    blank[:64] = 220  # a bright band along the stored top: the upright frame's right edge
    write_video(root / "bonafide" / "side.mp4", [sideways] * 2 + [blank] * 2, rate=10)
    out = str(tmp_path / "side.zarr")
    run(sync_config(dataset="folder", root=str(root), frames_per_video=4), out, cluster="none", progress=False)
    g = zarr.open_group(out, mode="r")
    status, rotation, index = (g[f"meta/{k}"][:].tolist() for k in ("status", "rotation", "frame_index"))
    failed = [i for i, s in enumerate(status) if s != 0]
    assert status[0] == 0 and rotation == [90] * 4 and failed and min(index[i] for i in failed) >= 2
    c = create_app(out).test_client()
    for i in failed:
        tile = _jpeg(c.get(f"/source/{i}.jpg"))
        assert tile.shape == (93, 128, 3), tile.shape  # upright 512 x 704, not the stored 704 x 512
        assert tile[:, -8:].mean() > 200 and tile[:, :100].mean() < 75  # the band on the right
