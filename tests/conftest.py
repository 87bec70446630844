import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import SAMPLE, sync_config

os.environ.setdefault("GLOG_minloglevel", "2")
# annotate serve's column cache: per test session, never the user's ~/.cache, and gone with the
# session (a CI runner's disk is shared by every run)
if "ANNOTATOR_CACHE" not in os.environ:
    os.environ["ANNOTATOR_CACHE"] = tempfile.mkdtemp(prefix="annotator-cache-")
    atexit.register(shutil.rmtree, os.environ["ANNOTATOR_CACHE"], ignore_errors=True)


@pytest.fixture(scope="session")
def sample_root() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def face_image() -> np.ndarray:
    """A real face: the bundled astronaut photo, HWC uint8 RGB 512x512."""
    return np.asarray(Image.open(SAMPLE / "bonafide" / "astronaut.jpg").convert("RGB"))


@pytest.fixture(scope="session")
def face_landmarks(face_image):
    from annotator.face.detect import BlazeFaceDetector
    from annotator.face.landmarks import FaceMeshLandmarker

    faces = BlazeFaceDetector()(face_image)
    return FaceMeshLandmarker()(face_image, faces[0])


@pytest.fixture(scope="session")
def fan_weights(tmp_path_factory) -> Path:
    """A 2DFAN4 state dict of random values under its official name (FAN's real weights cannot be
    downloaded here); read-only: tests that move or change weights make their own."""
    import torch
    from face_alignment.models import FAN

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("fan") / "2DFAN4-11f355bf06.pth.tar"
    torch.save(FAN(4).state_dict(), path)
    return path


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory):
    """The bundled sample annotated in-process (sync scheduler): (store path, RunSummary)."""
    from pipelines.run import run

    out = str(tmp_path_factory.mktemp("stores") / "sample.zarr")
    summary = run(sync_config(dataset="sample", root=""), out, cluster="none", progress=False)
    return out, summary


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def messy_root(tmp_path, sample_root, face_image):
    """A folder dataset where every kind of bad input appears next to a good one."""
    root = tmp_path / "messy"
    (root / "bonafide").mkdir(parents=True)
    (root / "attack" / "print").mkdir(parents=True)
    shutil.copy(sample_root / "bonafide" / "astronaut.jpg", root / "bonafide" / "a_good.jpg")
    Image.fromarray(face_image.mean(axis=2).astype(np.uint8)).save(root / "bonafide" / "b_gray.png")
    (root / "bonafide" / "c_corrupt.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(
        root / "bonafide" / "d_noface.png")
    Image.fromarray(face_image[::24, ::24]).save(root / "bonafide" / "e_tiny.png")
    video = (sample_root / "bonafide" / "astronaut_pan.mp4").read_bytes()
    (root / "attack" / "print" / "f_truncated.mp4").write_bytes(video[: len(video) // 4])
    return root
