import shutil

import cv2
import numpy as np
import pytest
import torch
import zarr
from click.testing import CliRunner
from PIL import Image
from skimage.transform import SimilarityTransform

from annotator.augment import EXCHANGE_REGIONS, mcrea
from annotator.augment.mcrea import similarity
from pipelines.cli import cli
from helpers import problems

KEYS = ("image", "label", "depth", "region", "landmarks")


@pytest.fixture(scope="module")
def batch(sample_store):
    url, _ = sample_store
    g = zarr.open_group(url, mode="r")
    return {k: torch.from_numpy(g[k][:]) for k in KEYS}, list(g["meta/attack_type"][:])


def test_gamma_zero_is_identity(batch):
    b, _ = batch
    out, log = mcrea(b, gamma=0.0, rho=3, generator=torch.Generator().manual_seed(0))
    assert log == [] and not out["exchanged"].any()
    for k in KEYS:
        assert torch.equal(out[k], b[k])


@pytest.mark.parametrize("scheme", ["integrated", "overlay", "clipping"])
def test_untouched_pixels_are_bit_identical(batch, scheme):
    b, _ = batch
    out, log = mcrea(b, gamma=0.5, rho=2, scheme=scheme, generator=torch.Generator().manual_seed(1))
    assert len(log) > 0
    keep = ~out["exchanged"]
    assert torch.equal(out["image"][keep], b["image"][keep])
    for k in ("depth", "region"):
        assert torch.equal(out[k][keep], b[k][keep])
    for c in range(3):
        assert torch.equal(out["label"][:, c][keep], b["label"][:, c][keep])
    untouched = [i for i in range(len(b["image"])) if i not in {e.recipient for e in log}]
    for i in untouched:
        for k in KEYS:
            assert torch.equal(out[k][i], b[k][i])
    lab = out["label"]
    assert torch.equal(lab[:, 2] == 255, (lab[:, 0] == 0) & (lab[:, 1] == 0))  # background stays the complement


def test_similarity_matches_skimage():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (30, 2))
    ang, s, t = 0.3, 1.4, np.array([12.0, -7.0])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = s * src @ rot.T + t + rng.normal(0, 0.5, src.shape)
    ours = similarity(torch.from_numpy(src), torch.from_numpy(dst)).numpy()
    ref = SimilarityTransform()
    ref.estimate(src, dst)
    np.testing.assert_allclose(ours, ref.params[:2], atol=1e-6)


def test_exchange_takes_the_donors_labels_and_moves_landmarks(batch):
    b, types = batch
    i = types.index("bonafide")
    j = types.index("print")
    two = {k: v[[i, j]].clone() for k, v in b.items()}
    out, log = mcrea(two, gamma=0.5, rho=1, scheme="integrated", generator=torch.Generator().manual_seed(3),
                     regions=("eyes",))
    assert [(e.recipient, e.donor, e.region) for e in log] == [(0, 1, "eyes")]
    _, idx = EXCHANGE_REGIONS["eyes"]
    src = two["landmarks"][1][list(idx), :2].double().numpy()
    dst = two["landmarks"][0][list(idx), :2].double().numpy()
    ref = SimilarityTransform()
    ref.estimate(src, dst)
    np.testing.assert_allclose(out["landmarks"][0][list(idx), :2].numpy(), ref(src), atol=1e-3)
    others = [k for k in range(478) if k not in idx]
    assert torch.equal(out["landmarks"][0][others], two["landmarks"][0][others])
    # the donor's label warped independently (OpenCV, pixel centres at integers) agrees inside the mask
    a, t = ref.params[:2, :2], ref.params[:2, 2]
    m_cv = np.hstack([a, (t + a @ [0.5, 0.5] - 0.5)[:, None]])
    warped = np.stack([cv2.warpAffine(two["label"][1][c].numpy(), m_cv, (256, 256), flags=cv2.INTER_NEAREST)
                       for c in range(3)])
    mask = out["exchanged"][0].numpy()
    agree = (out["label"][0].numpy()[:, mask] == warped[:, mask]).all(axis=0).mean()
    assert mask.sum() > 100 and agree > 0.97
    # a print donor carries attack into the bona fide eyes: a partial attack
    assert (out["label"][0][0].numpy()[mask] > 0).mean() > 0.9 and out["label"][0][1].numpy()[mask].max() == 0


def test_deterministic_for_a_seed(batch):
    b, _ = batch
    o1, l1 = mcrea(b, 1.0, 1, "overlay", torch.Generator().manual_seed(7))
    o2, l2 = mcrea(b, 1.0, 1, "overlay", torch.Generator().manual_seed(7))
    assert l1 == l2 and all(torch.equal(o1[k], o2[k]) for k in KEYS)


def test_store_form_equals_torch_form_and_verifies(sample_store, tmp_path):
    from annotator import store

    url, _ = sample_store
    out = str(tmp_path / "aug.zarr")
    r = CliRunner().invoke(cli, ["augment", url, "--out", out, "--gamma", "0.5", "--rho", "1", "--scheme", "clipping",
                                 "--copies", "2", "--seed", "5"])
    assert r.exit_code == 0, r.output
    assert problems(out) == []
    src, aug = zarr.open_group(url, mode="r"), zarr.open_group(out, mode="r")
    n = src["image"].shape[0]
    assert aug["image"].shape[0] == 2 * n
    gen = torch.Generator().manual_seed(5)
    shards = store.plan_shards(n, int(src.attrs["shard_size"]))
    for c in range(2):
        for k in torch.randperm(len(shards), generator=gen).tolist():
            s = shards[k]
            b = {key: torch.from_numpy(src[key][s.start:s.stop]) for key in KEYS}
            o, log = mcrea(b, 0.5, 1, "clipping", generator=gen)
            rows = slice(c * n + s.start, c * n + s.stop)
            for key in KEYS:
                np.testing.assert_array_equal(aug[key][rows], o[key].numpy(), err_msg=key)
            regions = aug["meta/mcrea_regions"][rows]
            for e in log:
                assert e.region in regions[e.recipient].split(";")
    types = aug["meta/attack_type"][:]
    donors = aug["meta/mcrea_donors"][:]
    assert all((t.startswith("mcrea:")) == bool(d) for t, d in zip(types, donors))
    attack = aug["label"][:, 0].reshape(2 * n, -1).max(axis=1) > 0
    assert (aug["meta/is_attack"][:] | ~attack).all()  # any attack pixel -> is_attack
    assert aug.attrs["provenance"]["mcrea"]["scheme"] == "clipping"
    # a copy's crop lies where its source row's does (docs/store.md, "Mapping a crop back")
    np.testing.assert_array_equal(aug["transform"][:], np.tile(src["transform"][:], (2, 1, 1)))
    assert aug["meta/frame_width"][:].tolist() == src["meta/frame_width"][:].tolist() * 2


def test_preview_outlines_the_exchanged_regions(sample_store, tmp_path):
    url, _ = sample_store
    out = str(tmp_path / "aug.zarr")
    assert CliRunner().invoke(cli, ["augment", url, "--out", out, "--gamma", "1", "--seed", "2"]).exit_code == 0
    png = tmp_path / "p.png"
    assert CliRunner().invoke(cli, ["preview", out, "--out", str(png), "--n", "15"]).exit_code == 0
    sheet = np.asarray(Image.open(png).convert("RGB")).astype(int)
    g = zarr.open_group(out, mode="r")
    for r in range(15):
        tile = sheet[18 + r * 128: 18 + (r + 1) * 128, 170: 170 + 128]
        white = (tile == 255).all(axis=2).sum()
        has = bool(g["mcrea_mask"][r].any())
        assert (white > 20) == has, (r, white)


@pytest.mark.parametrize("args,fragment", [
    (["--gamma", "1.5"], "--gamma must be in [0, 1]"),
    (["--rho", "-1"], "--rho must be at least 0"),
    (["--scheme", "swap"], "unknown --scheme 'swap'"),
])
def test_bad_arguments_are_one_line(sample_store, tmp_path, args, fragment):
    url, _ = sample_store
    r = CliRunner().invoke(cli, ["augment", url, "--out", str(tmp_path / "a.zarr"), *args])
    lines = [l for l in r.output.splitlines() if l.strip()]
    assert r.exit_code != 0 and len(lines) == 1 and fragment in lines[0], r.output


def test_store_without_regions_is_refused(sample_store, tmp_path):
    url, _ = sample_store
    copy = tmp_path / "c.zarr"
    shutil.copytree(url, copy)
    root = zarr.open_group(str(copy), mode="r+", use_consolidated=False)
    del root["region"]
    zarr.consolidate_metadata(str(copy))
    r = CliRunner().invoke(cli, ["augment", str(copy), "--out", str(tmp_path / "a.zarr")])
    lines = [l for l in r.output.splitlines() if l.strip()]
    assert r.exit_code != 0 and len(lines) == 1 and "missing array 'region'" in lines[0], r.output
