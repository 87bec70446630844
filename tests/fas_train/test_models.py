import numpy as np
import pytest
import torch
import torch.nn.functional as F

from annotator.face.regions import FACE_REGIONS, KEY_REGIONS
from fas_train.models import MODELS, create
from fas_train.models.cdc import CDConv, CrossConv, contrastive_depth_loss
from fas_train.models.dccdn import decision_score


@pytest.mark.parametrize("name", MODELS.names())
def test_forward_shapes_and_a_finite_loss(name):
    torch.manual_seed(0)
    m = create(name, width=0.1)
    x = torch.randn(2, 3, 64, 64)
    out = m(x)
    batch = {"image": x, "label": torch.rand(2, 3, 64, 64), "region": torch.randint(0, 6, (2, 64, 64)),
             "is_attack": torch.tensor([True, False]), "domain": torch.tensor([0, 0]),
             **{f"pyramid/{k}": torch.rand(2, 3, k, k) for k in (32, 16, 8, 4, 2, 1)}}
    expected = {"cdcn": (2, 1, 32, 32), "cdcnpp": (2, 1, 32, 32), "dccdn3": (2, 3, 64, 64),
                "resnet50_ps": (2, 1 + 64 + 16 + 4 + 1), "cdcn_ps": (2, 32 * 32 + 16 * 16),
                "lgsc": (2, 3 * 64 * 64 + 1 + 512 + 256 + 128 + 64 + 64), "ccdd": (2, 3),
                "segdec": (2, 1 + 128 + 2 * 64 * 64)}[name]
    assert tuple(out.shape) == expected
    loss, parts = m.loss(out, batch)
    parts_of = {"resnet50_ps": {"mask_bce", "cls_bce"}, "lgsc": {"reg", "triplet", "cls"},
                "ccdd": {"cls", "domain", "lambda"}, "segdec": {"cls", "contrastive", "segmentation"}}.get(name, {"mse", "cd"})
    assert loss.ndim == 0 and torch.isfinite(loss) and set(parts) == parts_of
    loss.backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
    assert m.score(out, batch).shape == (2,)
    for need in m.needs:
        assert need in batch


def test_central_difference_conv_equals_its_definition():
    torch.manual_seed(0)
    conv = CDConv(3, 4, theta=0.7)
    x = torch.randn(1, 3, 9, 9)
    y = conv(x)
    w = conv.weight.detach()
    patches = F.unfold(x, 3, padding=1).view(1, 3, 9, 81)  # (B, C, 3x3 window, positions)
    centre = x.view(1, 3, 81)
    # sum over window of w * (x_window - theta * x_centre)
    expected = torch.einsum("ock,bckp->bop", w.view(4, 3, 9), patches) \
        - 0.7 * torch.einsum("oc,bcp->bop", w.view(4, 3, 9).sum(-1), centre)
    torch.testing.assert_close(y, expected.view(1, 4, 9, 9), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape, zeros", [("+", (0, 2, 6, 8)), ("x", (1, 3, 5, 7))])
def test_cross_kernels_have_five_weights_in_their_shape(shape, zeros):
    conv = CrossConv(2, 3, shape)
    k = conv.kernel().detach().view(3, 2, 9)
    assert (k[:, :, list(zeros)] == 0).all() and (k[:, :, 4] != 0).all()
    assert sum(p.numel() for p in conv.parameters()) == 3 * 2 * 5


def test_contrastive_depth_loss_by_hand():
    rng = np.random.default_rng(0)
    p, t = rng.random((1, 1, 5, 5)), rng.random((1, 1, 5, 5))
    diffs = []
    for a in (p, t):
        d = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    d.append(a[0, 0, 1 + dy:4 + dy, 1 + dx:4 + dx] - a[0, 0, 1:4, 1:4])
        diffs.append(np.stack(d))
    expected = ((diffs[0] - diffs[1]) ** 2).mean()
    got = contrastive_depth_loss(torch.tensor(p), torch.tensor(t))
    assert float(got) == pytest.approx(expected)


def test_decision_rule_on_hand_made_maps():
    region = torch.zeros(3, 8, 8, dtype=torch.long)
    region[:, 2:6, 2:6] = FACE_REGIONS[0]  # skin: 16 face pixels
    region[:, 3, 3:5] = KEY_REGIONS[0]  # 2 eye pixels (face and key)
    maps = torch.zeros(3, 3, 8, 8)
    # 0: print — attack over the face, no live anywhere
    maps[0, 0][region[0] > 0] = 0.8
    # 1: bona fide — live on the key regions, a little attack noise outside the face (ignored)
    maps[1, 1][region[1] > 0] = 0.9
    maps[1, 0, 0, :] = 1.0
    # 2: partial eye attack — attack only on the 2 eye pixels, live elsewhere on the face
    maps[2, 0][region[2] == KEY_REGIONS[0]] = 0.8
    maps[2, 1][(region[2] > 0) & (region[2] != KEY_REGIONS[0])] = 0.9
    s = decision_score(maps, region)
    torch.testing.assert_close(s, torch.tensor([0.8 - 0.0, 0.0 - 0.9, 0.8 * 2 / 16 - 0.0]))
    eps = 0.05
    assert (s > eps).tolist() == [True, False, True]  # eq. 6: attack if F_attack > F_real + eps
    # no face pixels at all: the whole map's mean
    s0 = decision_score(torch.full((1, 3, 4, 4), 0.5), torch.zeros(1, 4, 4, dtype=torch.long))
    assert float(s0) == pytest.approx(0.0)


def test_binary_pyramid_targets_by_hand():
    from fas_train.models.pyramid import binary_targets

    # cells (attack, live, background): a print cell, a live cell, a mostly-background attack cell, a tie
    level = torch.tensor([[0.6, 0.0, 0.4], [0.1, 0.7, 0.2], [0.3, 0.1, 0.6], [0.25, 0.25, 0.5]]).T.reshape(1, 3, 2, 2)
    assert binary_targets(level).flatten().tolist() == [1.0, 0.0, 0.0, 0.0]


def test_binary_targets_of_a_store_with_known_maps(sample_store):
    """On the sample store: print and replay rows are spoof on the face cells, bona fide rows nowhere."""
    import zarr

    from fas_train.models.pyramid import binary_targets

    root = zarr.open_group(sample_store[0], mode="r")
    level = torch.from_numpy(root["pyramid/8"][:].astype(np.float32) / 255)
    t = binary_targets(level)
    types = root["meta/attack_type"][:]
    attack = level[:, 0:1] > level[:, 1:2]
    expected = (attack & (level[:, 2:3] <= 0.5)).float()  # the rule, computed apart from the function
    assert torch.equal(t, expected)
    for i, typ in enumerate(types):
        if typ == "bonafide":
            assert t[i].sum() == 0
        elif typ in ("print", "replay"):
            assert t[i].sum() >= 4  # the face covers several of the 64 cells


def test_resnet50_ps_picks_its_scales_and_stages():
    from fas_train.models.pyramid import ResNet50PS

    m = create("resnet50_ps", width=0.1, scales=(32,))
    assert m.train_needs == ("pyramid/32",) and m.stage_of == {32: 1}  # layer2: S/8 = 32 at 256
    assert ResNet50PS.stage_for(8) == 3 and ResNet50PS.stage_for(16) == 2
    assert tuple(m(torch.randn(1, 3, 64, 64)).shape) == (1, 1 + 32 * 32)


def test_pretrained_backbone_weights_are_checked_and_loaded(tmp_path, monkeypatch):
    from torchvision.models import resnet50

    from annotator.core.errors import SettingError
    from fas_train.models.pretrained import imagenet_file

    torch.manual_seed(1)
    state = resnet50().state_dict()
    good = tmp_path / "r50.pth"
    torch.save(state, good)
    m = create("resnet50_ps", pretrained=str(good))
    assert torch.equal(m.stem[0].weight, state["conv1.weight"]) and torch.equal(m.stages[3][0].conv1.weight,
                                                                                 state["layer4.0.conv1.weight"])
    with pytest.raises(SettingError, match=r"does not fit resnet50 \(at this --width\): 0 weight\(s\) missing"):
        create("resnet50_ps", width=0.5, pretrained=str(good))
    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(SettingError, match="does not fit resnet50"):
        create("resnet50_ps", pretrained=str(bad))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(SettingError, match="is not a loadable state dict"):
        create("resnet50_ps", pretrained=str(tmp_path / "junk.pth"))
    old_hub = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))  # an empty torch cache, and no network for the file
    try:
        monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
        with pytest.raises(SettingError, match=r"imagenet needs torchvision's ImageNet weights .* place "
                                               r"resnet50-0676ba61\.pth"):
            create("resnet50_ps", pretrained="imagenet")
        assert imagenet_file("resnet50") == tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    finally:
        torch.hub.set_dir(old_hub)


def test_batch_all_triplet_equals_a_brute_force_enumeration():
    import itertools

    from fas_train.models.lgsc import batch_all_triplet

    g = torch.Generator().manual_seed(0)
    for n_live, n_spoof in ((3, 2), (4, 4), (2, 5), (1, 3)):
        f = F.normalize(torch.randn(n_live + n_spoof, 6, generator=g), dim=1)
        attack = torch.tensor([False] * n_live + [True] * n_spoof)
        loss, n_pos, n_valid = batch_all_triplet(f, attack, margin=0.5)
        terms = []
        for a, p, q in itertools.product(range(len(f)), repeat=3):
            if a != p and not attack[a] and not attack[p] and attack[q]:
                terms.append(max(0.0, float(torch.dist(f[a], f[p]) - torch.dist(f[a], f[q])) + 0.5))
        positive = [t for t in terms if t > 1e-12]
        assert n_valid == len(terms) == n_live * (n_live - 1) * n_spoof
        assert n_pos == len(positive)
        assert float(loss) == pytest.approx(sum(positive) / len(positive) if positive else 0.0, rel=1e-5, abs=1e-6)


def test_lgsc_cue_regression_touches_live_samples_only():
    m = create("lgsc")
    out = m(torch.randn(4, 3, 64, 64))
    from fas_train.models.lgsc import unpack

    cue, logit, feats = unpack(out)
    assert cue.shape == (4, 3, 64, 64) and logit.shape == (4,) and [f.shape[1] for f in feats] == [512, 256, 128, 64, 64]
    assert torch.allclose(torch.stack([f.norm(dim=1) for f in feats]), torch.ones(5, 4), atol=1e-5)
    batch = {"is_attack": torch.tensor([False, False, True, True])}
    _, parts = m.loss(out, batch)
    assert float(parts["reg"]) == pytest.approx(float(cue[:2].detach().abs().mean()), rel=1e-6)
    assert torch.allclose(m.score(out, batch), cue.abs().flatten(1).mean(1))


def test_gradient_reversal_is_identity_forward_and_minus_lambda_backward():
    from fas_train.models.ccdd import dann_lambda, grl

    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 4, dtype=torch.float64)
    y = grl(x, 0.3)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.3 * w)
    # numerically: the forward is the identity, so d(sum(w*y))/dx = w; the GRL reports -lambda times it
    eps, i = 1e-6, (2, 1)
    bumped = x.detach().clone()
    bumped[i] += eps
    numeric = float(((grl(bumped, 0.3) * w).sum() - (grl(x.detach(), 0.3) * w).sum()) / eps)
    assert numeric == pytest.approx(float(w[i]), rel=1e-6) and float(x.grad[i]) == pytest.approx(-0.3 * numeric, rel=1e-6)
    assert dann_lambda(0.0) == 0.0 and dann_lambda(1.0) == pytest.approx(2 / (1 + np.exp(-10)) - 1)


def test_each_discriminator_head_learns_from_its_own_class_only():
    torch.manual_seed(0)
    m = create("ccdd", domains=3).eval()  # eval: no dropout noise
    x = torch.randn(4, 3, 64, 64)
    batch = {"is_attack": torch.tensor([False, False, False, False]), "domain": torch.tensor([0, 1, 2, 1])}
    m.zero_grad()
    m.loss(m(x), batch)[0].backward()
    d = m.discriminator
    assert d.spoof_head.weight.grad is None or float(d.spoof_head.weight.grad.abs().sum()) == 0.0
    assert float(d.live_head.weight.grad.abs().sum()) > 0
    batch["is_attack"] = torch.tensor([True, True, True, True])
    m.zero_grad()
    m.loss(m(x), batch)[0].backward()
    assert float(d.live_head.weight.grad.abs().sum()) == 0.0 and float(d.spoof_head.weight.grad.abs().sum()) > 0


def test_supervised_contrastive_equals_a_direct_computation():
    from fas_train.models.segdec import supervised_contrastive

    g = torch.Generator().manual_seed(0)
    for labels in ([0, 0, 1, 1, 1], [0, 1, 1, 0, 0, 1], [1, 0, 0]):
        y = torch.tensor(labels)
        z = F.normalize(torch.randn(len(labels), 5, generator=g, dtype=torch.float64), dim=1)
        t, terms = 0.1, []
        for i in range(len(z)):
            pos = [p for p in range(len(z)) if p != i and labels[p] == labels[i]]
            if not pos:
                continue
            denom = sum(np.exp(float(z[i] @ z[a]) / t) for a in range(len(z)) if a != i)
            terms.append(-sum(np.log(np.exp(float(z[i] @ z[p]) / t) / denom) for p in pos) / len(pos))
        assert float(supervised_contrastive(z, y, t)) == pytest.approx(np.mean(terms), rel=1e-9)


def test_segmentation_targets_binary_and_per_type():
    from annotator.label import ATTACK_TYPES
    from fas_train.models.segdec import seg_targets

    label = torch.zeros(2, 3, 4, 4)
    label[0, 0, :2] = 0.7  # row 0: attack on the top half
    label[1, 1, 2:] = 0.4  # row 1: live on the bottom half
    code = torch.tensor([ATTACK_TYPES.index("print"), ATTACK_TYPES.index("bonafide")])
    b = seg_targets(label, code, "binary", len(ATTACK_TYPES))
    assert b.shape == (2, 2, 4, 4) and b[0, 1].sum() == 8 and b[0, 0].sum() == 0 and b[1, 0].sum() == 8
    t = seg_targets(label, code, "types", len(ATTACK_TYPES))
    assert t.shape == (2, 1 + len(ATTACK_TYPES), 4, 4)
    assert t[0, 1 + ATTACK_TYPES.index("print")].sum() == 8 and t[0].sum() == 8 and t[1, 0].sum() == 8
