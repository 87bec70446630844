import numpy as np
import pytest

from annotator.core.errors import AnnotatorError
from annotator.face.regions import REGION_IDS
from annotator.label import ATTACK_TYPES, PYRAMID_SIZES, Policy, pyramid

S = 64


def toy_face():
    """Regions: skin block with eyes band rows 20-27, nose 28-35, mouth 40-45; hair above; depth 0.5 on face."""
    reg = np.zeros((S, S), np.uint8)
    reg[4:12, 8:56] = REGION_IDS["hair"]
    reg[12:56, 8:56] = REGION_IDS["skin"]
    reg[16:20, 12:52] = REGION_IDS["brows"]
    reg[20:28, 12:52] = REGION_IDS["eyes"]
    reg[28:36, 24:40] = REGION_IDS["nose"]
    reg[40:46, 20:44] = REGION_IDS["mouth"]
    reg[56:64, 16:48] = REGION_IDS["neck"]
    depth = np.where((reg >= 1) & (reg <= 5), 0.5, 0.0).astype(np.float32)
    return reg, depth


def test_every_type_keeps_the_channel_rules():
    reg, depth = toy_face()
    p = Policy.default()
    face = np.isin(reg, (1, 2, 3, 4, 5))
    for t in ATTACK_TYPES:
        lab = p.fuse(reg, depth, t, landmarks=_toy_landmarks())
        assert lab.shape == (3, S, S) and lab.dtype == np.uint8
        assert ((lab[0] > 0) & (lab[1] > 0)).sum() == 0  # attack and live never overlap
        assert (lab[2] == np.where((lab[0] == 0) & (lab[1] == 0), 255, 0)).all()
        assert set(np.unique(lab[:2])) <= {0, 128}  # round(255 * 0.5)
        assert ((lab[0] > 0) | (lab[1] > 0))[~face].sum() == 0  # depth is 0 off the face


def _toy_landmarks():
    lm = np.zeros((478, 3), np.float32)
    lm[10] = (32, 12, 0)
    lm[152] = (32, 56, 0)
    lm[234] = (8, 30, 0)
    lm[454] = (56, 30, 0)
    lm[1] = (32, 34, 0)  # nose tip: the nose line is y = 34
    return lm


def test_semantics_per_type():
    reg, depth = toy_face()
    p = Policy.default()
    face = np.isin(reg, (1, 2, 3, 4, 5))
    lm = _toy_landmarks()
    bona = p.fuse(reg, depth, "bonafide")
    assert bona[0].sum() == 0 and (bona[1][face] == 128).all()
    pr = p.fuse(reg, depth, "print")
    assert pr[1].sum() == 0 and (pr[0][face] == 128).all()
    eye = p.fuse(reg, depth, "partial_eye")
    eyes_brows = np.isin(reg, (2, 3))
    assert (eye[0][eyes_brows] == 128).all() and (eye[0][~eyes_brows] == 0).all()
    assert (eye[1][face & ~eyes_brows] == 128).all()
    half = p.fuse(reg, depth, "half_mask", lm)
    ys = np.arange(S)[:, None] + 0.5
    assert (half[0][face & (ys > 34)] == 128).all() and (half[1][face & (ys < 34)] == 128).all()
    wig = p.fuse(reg, depth, "wig")
    assert wig[0].sum() == 0  # hair has no depth and outside_depth is 0 (the paper's choice)


def test_outside_depth_option(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('outside_depth = 0.5\n[types.wig]\nattack = ["hair"]\nlive = ["face"]\n')
    reg, depth = toy_face()
    wig = Policy.load(f).fuse(reg, depth, "wig")
    assert (wig[0][reg == REGION_IDS["hair"]] == 128).all()


def test_override_replaces_only_named_types(tmp_path):
    f = tmp_path / "oulu.toml"
    f.write_text('[types.print]\nattack = ["skin"]\nlive = []\n')
    p = Policy.load(f)
    reg, depth = toy_face()
    lab = p.fuse(reg, depth, "print")
    assert (lab[0][reg == 1] == 128).all() and (lab[0][reg == 3] == 0).all()
    assert p.fuse(reg, depth, "replay")[0][reg == 3].min() == 128  # untouched type


@pytest.mark.parametrize("text,msg", [
    ('[types.selfie]\nattack = []\n', "unknown attack type"),
    ('[types.print]\nattack = ["beard"]\n', "unknown region"),
    ('[types.print]\nattack = ["face@left"]\n', "unknown side"),
    ('[types.print\n', "not valid TOML"),
    ('outside_depth = 3\n', "outside_depth"),
])
def test_bad_policy_files(tmp_path, text, msg):
    f = tmp_path / "p.toml"
    f.write_text(text)
    with pytest.raises(AnnotatorError, match=msg):
        Policy.load(f)
    with pytest.raises(AnnotatorError, match="does not exist"):
        Policy.load(tmp_path / "nope.toml")


def test_unknown_type_is_rejected():
    reg, depth = toy_face()
    with pytest.raises(AnnotatorError, match="known types"):
        Policy.default().fuse(reg, depth, "hologram")


def test_pyramid_is_the_area_mean():
    rng = np.random.default_rng(1)
    lab = rng.integers(0, 256, (2, 3, 64, 64)).astype(np.uint8)
    pyr = pyramid(lab)
    assert sorted(pyr) == sorted(PYRAMID_SIZES)
    for k, level in pyr.items():
        f = 64 // k
        for n in range(2):
            for c in range(3):
                for i in range(k):
                    for j in range(k):
                        block = lab[n, c, i * f:(i + 1) * f, j * f:(j + 1) * f].astype(float)
                        assert level[n, c, i, j] == int(np.floor(block.mean() + 0.5)) or abs(level[n, c, i, j] - block.mean()) <= 0.5
