"""FAN landmarks from face-alignment's own model code, with random weights saved as the official
files are (plain state dicts; the depth net's wrapped in "state_dict" with "module." prefixes)."""

import hashlib

import numpy as np
import pytest
import torch

from annotator.core.errors import SettingError
from annotator.face.detect import BlazeFaceDetector
from annotator.face.points68 import MESH_68, mesh_to_68, nme


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A torch hub cache holding random-weight 2DFAN4 / 3DFAN4 / depth files under their official names."""
    from face_alignment.models import FAN, ResNetDepth

    from annotator.face.fan import FILES

    root = tmp_path_factory.mktemp("hub")
    (root / "checkpoints").mkdir()
    torch.manual_seed(0)
    for kind in ("2d", "3d"):
        torch.save(FAN(4).state_dict(), root / "checkpoints" / FILES[kind])
    depth = {"state_dict": {f"module.{k}": v for k, v in ResNetDepth().state_dict().items()}, "epoch": 40}
    torch.save(depth, root / "checkpoints" / FILES["depth"])
    return root


@pytest.fixture
def in_hub(hub, monkeypatch):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(hub))
    yield hub
    torch.hub.set_dir(old)


def test_official_names_load_from_the_hub_cache_with_their_sha256(in_hub):
    from annotator.face.fan import FILES, FanLandmarker, check_checkpoints

    m = FanLandmarker("2d", device="cpu")
    assert m.info["checkpoint"].endswith(FILES["2d"])
    info = check_checkpoints("2d")  # the run hashes once; workers only load
    assert info["sha256"] == hashlib.sha256((in_hub / "checkpoints" / FILES["2d"]).read_bytes()).hexdigest()
    assert next(m.fan.parameters()).device.type == "cpu" and not m.fan.training
    m3 = FanLandmarker("3d", device="cpu")
    assert m3.depth is not None
    assert check_checkpoints("3d")["depth_sha256"] == hashlib.sha256(
        (in_hub / "checkpoints" / FILES["depth"]).read_bytes()).hexdigest()


def test_batched_equals_one_by_one_and_points_lie_in_the_frame(in_hub, face_image):
    from annotator.face.fan import FanLandmarker

    mirrored = face_image[:, ::-1].copy()
    frames = [face_image, mirrored, face_image]
    boxes = [BlazeFaceDetector()(f)[0] for f in frames]
    m = FanLandmarker("2d", device="cpu", batch=2)
    together = m.landmarks(list(zip(frames, boxes)))  # batches of 2 and 1
    alone = [m(f, b) for f, b in zip(frames[:2], boxes[:2])]
    assert len(together) == 3 and all(p.shape == (68, 3) and p.dtype == np.float32 for p in together)
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a, b, atol=1e-3)
    np.testing.assert_allclose(together[0], together[2], atol=1e-3)  # the same face in two batches
    x0, y0, x1, y1 = boxes[0].box
    side = max(x1 - x0, y1 - y0)
    assert ((together[0][:, 0] > x0 - side) & (together[0][:, 0] < x1 + side)).all()
    from annotator.face.layouts import fit_canonical_depth

    # 2D FAN: z is the canonical face fitted to its points
    np.testing.assert_allclose(together[0][:, 2], fit_canonical_depth(together[0]), rtol=1e-5, atol=1e-4)
    deep = FanLandmarker("3d", device="cpu")(face_image, boxes[0])
    assert deep.shape == (68, 3) and np.isfinite(deep).all() and (deep[:, 2] != 0).any()
    assert deep[30, 2] >= (deep[0, 2] + deep[16, 2]) / 2  # 3D FAN's z oriented: the nose tip nearer


def test_every_checkpoint_problem_is_a_one_line_error(in_hub, tmp_path):
    from annotator.face.fan import FILES, check_checkpoints

    with pytest.raises(SettingError, match=r"2DFAN4-11f355bf06.pth.tar is not at .*nowhere.*download "
                                           r"https://www.adrianbulat.com/downloads/python-fan/2DFAN4"):
        check_checkpoints("2d", str(tmp_path / "nowhere" / FILES["2d"]))
    junk = tmp_path / "junk.pth.tar"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(SettingError, match="is not a loadable state dict"):
        check_checkpoints("2d", str(junk))
    from torchvision.models import resnet18

    other = tmp_path / "resnet.pth"
    torch.save(resnet18().state_dict(), other)
    with pytest.raises(SettingError, match="does not fit face-alignment's FAN"):
        check_checkpoints("2d", str(other))
    with pytest.raises(SettingError, match="does not fit face-alignment's ResNetDepth"):
        check_checkpoints("3d", None, str(other))
    with pytest.raises(SettingError, match="depth-2a464da4ea.pth.tar is not at"):
        check_checkpoints("3d", None, str(tmp_path / "none.pth.tar"))
    with pytest.raises(SettingError, match="takes 2d or 3d"):
        check_checkpoints("4d")


def test_the_68_point_map_follows_ibug_order_on_a_real_face(face_landmarks):
    p = mesh_to_68(face_landmarks)
    assert len(set(MESH_68)) == 68 and p.shape == (68, 3)
    x, y = p[:, 0], p[:, 1]
    assert (np.diff(x[0:17]) > -2).all() and y[8] == y[0:17].max()  # jaw left to right, chin lowest
    assert x[36] < x[39] < x[42] < x[45]  # eye corners: right eye outer, inner; left eye inner, outer
    assert (np.diff(y[27:31]) > 0).all()  # nose bridge runs down
    assert x[48] < x[51] < x[54] and y[57] > y[51]  # mouth corners, lower lip below the upper
    assert (np.diff(x[17:22]) > 0).all() and (np.diff(x[22:27]) > 0).all()


def test_nme_flags_shifted_points_and_passes_the_same_ones(face_landmarks):
    ref = mesh_to_68(face_landmarks)
    assert nme(ref, ref) == 0.0
    iod = np.linalg.norm(ref[36, :2] - ref[45, :2])
    shifted = ref.copy()
    shifted[:, 0] += 0.2 * iod
    assert nme(shifted, ref) == pytest.approx(0.2)
    noisy = ref + np.random.default_rng(0).normal(0, 0.01 * iod, ref.shape)
    assert nme(noisy, ref) < 0.05 < nme(shifted, ref)
