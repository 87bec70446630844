"""What the serve tests share: a store with failed rows, made from a messy folder dataset."""

import shutil

import numpy as np
import pytest
import zarr
from helpers import sync_config, write_video
from PIL import Image


def _make_root(root, sample_root) -> None:
    (root / "bonafide").mkdir(parents=True)
    (root / "attack" / "replay").mkdir(parents=True)
    shutil.copy(sample_root / "bonafide" / "astronaut.jpg", root / "bonafide" / "a_good.jpg")
    (root / "bonafide" / "c_corrupt.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    blocks = np.random.default_rng(0).integers(0, 255, (6, 8, 3), dtype=np.uint8)  # coarse: a tile tells it apart
    Image.fromarray(blocks.repeat(40, axis=0).repeat(40, axis=1)).save(root / "bonafide" / "d_noface.png")
    # frame k a flat grey of 10 + 12 k: no face in any, and a tile tells which frame it shows
    write_video(root / "attack" / "replay" / "g_blank.mp4", [np.full((96, 128, 3), 10 + 12 * k, np.uint8) for k in range(20)])


@pytest.fixture(scope="session")
def messy_store(tmp_path_factory, sample_root):
    """(store url, dataset root, meta columns as lists) of a store made from a messy folder dataset."""
    from pipelines.run import run

    base = tmp_path_factory.mktemp("messy-serve")
    root, url = base / "messy", str(base / "messy.zarr")
    _make_root(root, sample_root)
    run(sync_config(dataset="folder", root=str(root)), url, cluster="none", progress=False)
    meta = zarr.open_group(url, mode="r")["meta"]
    return url, root, {k: meta[k][:].tolist() for k in ("sample_id", "status", "error", "frame_index", "source")}
