"""A detector, landmarker and segmenter registered from this file alone run through `annotate run`
into a verified store: what a backend says of itself (layout, options) is all the pipeline asks."""

import numpy as np
import pytest
import zarr

from annotator.face import DETECTORS, LANDMARKERS, FaceBox
from annotator.face.layouts import canonical_ibug
from annotator.face.regions import Region
from annotator.segment import SEGMENTERS
from annotator.store.verify import verify
from helpers import registered, sync_config

SKIN_SQUARE = (0.25, 0.75)  # the fake segmenter's skin: the middle half of the crop, each way


class BoxInTheMiddle:
    """A face box: the middle third of any frame."""

    def __call__(self, frame):
        h, w = frame.shape[:2]
        return [FaceBox((w / 3, h / 3, 2 * w / 3, 2 * h / 3), 0.9)]


class CanonicalPoints:
    """The canonical 68 points fitted into the box (x right, y down, z nearer = larger)."""

    batched = False

    def __call__(self, frame, face, context=None):
        pts = canonical_ibug().astype(np.float64)
        lo, hi = pts[:, :2].min(0), pts[:, :2].max(0)
        x0, y0, x1, y1 = face.box
        scale = min(x1 - x0, y1 - y0) / float(max(hi - lo))
        out = np.empty((68, 3), np.float32)
        out[:, 0] = x0 + (pts[:, 0] - lo[0]) * scale
        out[:, 1] = y0 + (pts[:, 1] - lo[1]) * scale
        out[:, 2] = pts[:, 2] * scale
        return out

    def landmarks(self, items):
        return [self(f, b) for f, b in items]


class SkinSquare:
    name = "fake-square"

    def segment(self, items):
        out = []
        for item in items:
            a, b = (int(round(f * item.size)) for f in SKIN_SQUARE)
            region = np.zeros((item.size, item.size), np.uint8)
            region[a:b, a:b] = Region.SKIN
            out.append((region, self.name))
        return out


@pytest.fixture
def fakes():
    with registered((DETECTORS, "test-middle", BoxInTheMiddle, {}),
                    (LANDMARKERS, "test-canonical", CanonicalPoints, {"layout": "ibug-68", "check_with": "mediapipe"}),
                    (SEGMENTERS, "test-square", SkinSquare, {})):
        yield


def test_fake_backends_make_a_verified_store(fakes, tmp_path):
    from pipelines.run import run

    out = str(tmp_path / "fake.zarr")
    cfg = sync_config(dataset="sample", root="", detector="test-middle", landmarker="test-canonical",
                      segmenter="test-square", size=64, frames_per_video=2, face_fallback="", auto_rotate=False)
    summary = run(cfg, out, cluster="none", progress=False)
    root = zarr.open_group(out, mode="r")
    n = root["meta/status"].shape[0]
    assert n == summary.n_samples >= 6 and (root["meta/status"][:] == 0).all()
    assert root.attrs["landmark_layout"]["name"] == "ibug-68" and root["landmarks"].shape == (n, 68, 3)
    assert set(root["meta/segmenter"][:]) == {"fake-square"}
    expected = np.zeros((64, 64), np.uint8)
    expected[16:48, 16:48] = Region.SKIN
    assert all(np.array_equal(r, expected) for r in root["region"][:])
    # the label follows the policy on the fake's regions: bona fide rows have live only on that skin
    live = root["label"][:, 1] > 0
    bona = ~root["meta/is_attack"][:]
    assert bona.sum() >= 2 and not live[bona][:, expected == 0].any()
    assert verify(out, "full").problems == []


def test_a_backend_that_takes_no_options_refuses_them(fakes):
    from annotator.core.errors import AnnotatorError
    from pipelines.prepare import prepare_backends

    cfg = sync_config(dataset="sample", root="", landmarker="test-canonical", segmenter="test-square",
                      segmenter_options={"checkpoint": "x.pth"})
    with pytest.raises(AnnotatorError, match="segmenter 'test-square' takes no options; got checkpoint"):
        prepare_backends(cfg)
