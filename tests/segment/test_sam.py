import hashlib
import re

import numpy as np
import pytest
import torch
import zarr

from annotator.core.errors import AnnotatorError
from annotator.face.regions import FACE_REGIONS, Region
from annotator.face.priors import compose, region_priors
from annotator.segment import SEGMENTERS
from annotator.segment.base import FaceItem
from annotator.segment.sam.checkpoint import build_model, load_state_dict
from annotator.segment.sam.prompts import build_prompts
from annotator.segment.sam.segmenter import SamSegmenter
from annotator.segment.sam.select import describe, select_regions
from annotator.shard import output_crop
from helpers import sync_config, tiny_sam, problems


@pytest.fixture(scope="module")
def vit_b_checkpoint(tmp_path_factory):
    """A vit_b state dict with random values, written like the official files."""
    from segment_anything import sam_model_registry

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in sam_model_registry["vit_b"]().state_dict().items()}
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(s, generator=g) * 0.02 for k, s in shapes.items()}
    path = tmp_path_factory.mktemp("ckpt") / "sam_vit_b_random.pth"
    torch.save(state, path)
    return path, state


def test_checkpoint_loads_and_is_fingerprinted(vit_b_checkpoint):
    path, state = vit_b_checkpoint
    opts = SEGMENTERS.describe("sam").prepare_options({"checkpoint": str(path), "model": "vit_b"})
    assert opts["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    model = build_model("vit_b", load_state_dict(path, "vit_b"))
    key = "mask_decoder.iou_token.weight"
    assert torch.equal(model.state_dict()[key], state[key])
    assert model.pixel_mean.flatten().tolist() == pytest.approx([123.675, 116.28, 103.53])


def test_checkpoint_errors(tmp_path, vit_b_checkpoint):
    path, state = vit_b_checkpoint
    with pytest.raises(AnnotatorError, match="needs --sam-checkpoint"):
        SEGMENTERS.describe("sam").prepare_options({})
    with pytest.raises(AnnotatorError, match="does not exist; download one"):
        load_state_dict(tmp_path / "nope.pth", "vit_b")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00\x01 this is not a checkpoint")
    with pytest.raises(AnnotatorError, match="not a loadable PyTorch checkpoint"):
        load_state_dict(garbage, "vit_b")
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(2, 3, 3, 3)}, other)
    with pytest.raises(AnnotatorError, match="not a SAM state dict"):
        load_state_dict(other, "vit_b")
    pickled = tmp_path / "pickled.pth"
    torch.save({"image_encoder.x": object()}, pickled)  # needs unpickling of code: refused by weights_only
    with pytest.raises(AnnotatorError, match="not a loadable PyTorch checkpoint"):
        load_state_dict(pickled, "vit_b")
    with pytest.raises(AnnotatorError, match="is a vit_b checkpoint, but --sam-model is vit_h; pass --sam-model vit_b"):
        load_state_dict(path, "vit_h")
    broken = dict(state)
    broken["mask_decoder.iou_token.weight"] = torch.zeros(2, 7)
    del broken["prompt_encoder.no_mask_embed.weight"]
    bad = tmp_path / "broken.pth"
    torch.save(broken, bad)
    with pytest.raises(AnnotatorError, match="does not fit vit_b: weights 1 missing .* 1 of wrong shape"):
        load_state_dict(bad, "vit_b")
    with pytest.raises(AnnotatorError, match="segmenter 'geometry' takes no options; got checkpoint"):
        SEGMENTERS.describe("geometry").prepare_options({"checkpoint": str(path)})


@pytest.fixture(scope="module", params=["mediapipe-478", "ibug-68"])
def face_item(request, face_image, face_landmarks):
    """The sample face in a 128 px crop, with FaceMesh's landmarks, or (ibug-68) FaceMesh's points at
    the 68 iBUG positions with 2D FAN's fitted depth: SAM's path is the same for both layouts."""
    from annotator.face.layouts import fit_canonical_depth
    from annotator.face.points68 import mesh_to_68

    points = face_landmarks
    if request.param == "ibug-68":
        points = mesh_to_68(face_landmarks).copy()
        points[:, 2] = fit_canonical_depth(points)
    m = output_crop(points, 1.3, 128)
    lm = points.copy()
    lm[:, :2] = points[:, :2] @ m[:, :2].T + m[:, 2]
    lm[:, 2] *= m[0, 0]
    return FaceItem(face_image, m, 128, lm, "print")


def test_prompts_sit_on_their_regions(face_item):
    priors = region_priors(face_item.landmarks, face_item.size)
    for attack_type, instrument in (("bonafide", None), ("print", 10), ("partial_eye", 9)):
        pts, labels, rids = build_prompts(face_item.landmarks, priors, attack_type)
        assert pts.shape[0] == labels.shape[0] == len(rids) and pts.shape[1] == labels.shape[1]
        assert rids[:8].tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
        assert (rids[8:].tolist() == [instrument]) if instrument else len(rids) == 8
        for r, rid in enumerate(rids[:8]):
            pos = pts[r][labels[r] == 1]
            neg = pts[r][labels[r] == 0]
            assert len(pos) >= 1 and len(neg) >= 1
            prior = priors[rid]
            hit = [prior[min(int(y), 127), min(int(x), 127)] for x, y in pos]
            # positives lie in the region (landmarks on a contour may sit on its edge pixel)
            dil = np.zeros_like(prior)
            ys, xs = np.nonzero(prior)
            dil[np.clip(ys[:, None] + [-1, 0, 1], 0, 127), np.clip(xs[:, None] + [-1, 0, 1], 0, 127)] = True
            assert all(dil[min(int(y), 127), min(int(x), 127)] for x, y in pos), (rid, hit)
            composed = compose(priors, 128)  # skin is the oval under the features: judge negatives on the map
            assert not any(composed[min(int(y), 127), min(int(x), 127)] == rid for x, y in neg), rid


def test_selection_prefers_agreement_and_falls_back():
    s = 32
    prior = torch.zeros(s, s, dtype=torch.bool)
    prior[8:24, 8:24] = True
    eyes = torch.zeros(s, s, dtype=torch.bool)
    eyes[12:14, 10:22] = True
    priors = {1: prior, 3: eyes}
    good = prior.clone()
    good[8, 8] = False
    masks = torch.stack([
        torch.stack([torch.zeros(s, s, dtype=torch.bool), good, torch.ones(s, s, dtype=torch.bool)]),  # skin
        torch.stack([torch.zeros(s, s, dtype=torch.bool)] * 3),  # eyes: nothing agrees -> prior
        torch.stack([torch.ones(s, s, dtype=torch.bool)] * 3),  # occluder: too big -> left out
    ])
    iou = torch.tensor([[0.9, 0.1, 0.9], [0.9, 0.9, 0.9], [0.9, 0.9, 0.9]])
    region, from_sam, fell, _ = select_regions(masks, iou, [1, 3, 9], priors)
    assert from_sam == [1] and fell == [3, 9]
    assert region[8, 8] == 0 and region[9, 9] == 1 and region[12, 12] == 3 and (region == 9).sum() == 0
    assert describe(from_sam, fell) == "sam+geometry:2/3"
    assert describe([1, 2], []) == "sam" and describe([], [1]) == "geometry"


def _squares(s: int = 32) -> dict:
    """Priors of a toy face: a skin square with eyes, nose and mouth bars inside it."""
    def box(y0, y1, x0, x1):
        m = torch.zeros(s, s, dtype=torch.bool)
        m[y0:y1, x0:x1] = True
        return m

    return {Region.SKIN: box(4, 28, 4, 28), Region.EYES: box(10, 13, 8, 24), Region.NOSE: box(14, 19, 14, 18),
            Region.MOUTH: box(21, 24, 10, 22)}


def test_masks_equal_to_the_priors_are_chosen_and_compose_like_them():
    priors = _squares()
    ids = list(priors)
    empty = torch.zeros(32, 32, dtype=torch.bool)
    masks = torch.stack([torch.stack([empty, priors[r], torch.ones(32, 32, dtype=torch.bool)]) for r in ids])
    iou = torch.full((len(ids), 3), 0.9)
    region, from_sam, fell, _ = select_regions(masks, iou, ids, priors)
    assert from_sam == ids and fell == []
    expected = compose({r: p.numpy() for r, p in priors.items()}, 32)
    assert np.array_equal(region.numpy(), expected)


def test_empty_or_off_face_masks_fall_back_to_the_priors():
    priors = _squares()
    ids = list(priors)
    off = torch.zeros(32, 32, dtype=torch.bool)
    off[0:3, 0:3] = True  # a corner outside the face
    masks = torch.stack([torch.stack([torch.zeros(32, 32, dtype=torch.bool), off, off]) for _ in ids])
    region, from_sam, fell, _ = select_regions(masks, torch.full((len(ids), 3), 0.99), ids, priors)
    assert from_sam == [] and fell == ids and describe(from_sam, fell) == "geometry"
    assert np.array_equal(region.numpy(), compose({r: p.numpy() for r, p in priors.items()}, 32))


def test_the_best_of_three_proposals_wins_and_sams_iou_breaks_ties():
    prior = _squares()[Region.SKIN]
    half = prior.clone()
    half[16:] = False  # IoU 0.5 with the prior
    shrunk = prior.clone()
    shrunk[4:6] = False  # IoU 22/24
    masks = torch.stack([half, prior, shrunk])[None]
    region, from_sam, _, _ = select_regions(masks, torch.tensor([[0.99, 0.5, 0.99]]), [Region.SKIN],
                                         {Region.SKIN: prior})
    assert from_sam == [Region.SKIN] and np.array_equal(region.numpy() == Region.SKIN, prior.numpy())  # agreement decides
    twin = prior.clone()
    twin[4, 4] = False  # agreement within 1/576 of the exact mask: SAM's predicted IoU decides
    masks = torch.stack([prior, twin, half])[None]
    region, _, _, _ = select_regions(masks, torch.tensor([[0.1, 0.9, 0.9]]), [Region.SKIN], {Region.SKIN: prior})
    assert region[4, 4] == 0 and region[5, 5] == Region.SKIN


def test_priorities_resolve_overlaps():
    priors = _squares()
    everything = torch.ones(32, 32, dtype=torch.bool)
    glasses = torch.zeros(32, 32, dtype=torch.bool)
    glasses[9:14, 6:26] = True  # over the eyes, a little wider
    ids = [*priors, Region.PAI_SURFACE, Region.OCCLUDER]
    masks = torch.stack([torch.stack([priors[r]] * 3) for r in priors]
                        + [torch.stack([everything] * 3), torch.stack([glasses] * 3)])
    region, from_sam, fell, _ = select_regions(masks, torch.full((len(ids), 3), 0.9), ids, priors)
    assert fell == [] and sorted(from_sam) == sorted(ids)
    r = region.numpy()
    assert r[0, 0] == Region.PAI_SURFACE  # the instrument lies under the face
    assert r[16, 6] == Region.SKIN and r[16, 15] == Region.NOSE and r[22, 12] == Region.MOUTH
    assert (r[9:14, 6:26] == Region.OCCLUDER).all()  # the occluder sits in front of the eyes


def test_logits_land_in_crop_pixels(face_item):
    seg = SamSegmenter(sam=tiny_sam(), device="cpu")
    h, w = face_item.frame.shape[:2]
    scale = seg.img_size / max(h, w)
    # a logit map over the padded encoder input that is positive on frame pixels x in [200, 300)
    low = 64
    xs = (np.arange(low) + 0.5) * seg.img_size / low / scale  # frame x of each low-res column centre
    logits = torch.full((1, 1, low, low), -10.0)
    logits[..., (xs >= 200) & (xs < 300)] = 10.0
    crop = seg.to_crop(logits, face_item.crop_matrix, scale, face_item.size)[0, 0] > 0
    m = face_item.crop_matrix
    cx = (np.arange(128) + 0.5 - m[0, 2]) / m[0, 0]  # frame x of each crop column
    inside = (cx >= 200 + 5) & (cx < 300 - 5)
    outside = (cx < 200 - 5) | (cx >= 300 + 5)
    assert crop[:, inside].all() and not crop[:, outside].any()


def test_sdpa_matches_the_reference_attention(face_image):
    ref = SamSegmenter(sam=tiny_sam(), device="cpu", sdpa=False)
    fast = SamSegmenter(sam=tiny_sam(), device="cpu", sdpa=True)
    frames = [face_image, face_image[::2, ::2].copy()]
    a, _ = ref.encode(frames)
    b, _ = fast.encode(frames)
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_batched_encoder_equals_one_by_one(face_image):
    seg = SamSegmenter(sam=tiny_sam(), device="cpu", batch=3)
    frames = [face_image, face_image[:, ::-1].copy(), face_image[40:, 20:].copy()]
    batched, scales = seg.encode(frames)
    seg.batch = 1
    single, scales1 = seg.encode(frames)
    assert scales == scales1
    assert torch.allclose(batched, single, atol=1e-4)


def test_segment_returns_region_maps(face_item):
    seg = SamSegmenter(sam=tiny_sam(), device="cpu")
    (region, how, _), = seg.segment([face_item])
    assert region.shape == (128, 128) and region.dtype == np.uint8
    m = re.fullmatch(r"sam|geometry|sam\+geometry:(\d+)/(\d+)", how)
    assert m, how
    if m.group(1):  # print: the 8 face/outer regions and the PAI surface were prompted
        assert int(m.group(2)) == 9 and 0 < int(m.group(1)) < 9
    assert np.isin(region, FACE_REGIONS).sum() > 0.2 * 128 * 128


def test_random_sam_keeps_label_semantics(tmp_path, sample_store):
    """With random weights SAM agrees with nothing, so the fallback must reproduce the geometry labels."""
    import dataclasses

    from annotator.shard import build_models
    from pipelines.run import run

    cfg = sync_config(dataset="sample", root="")
    models = dataclasses.replace(build_models(cfg), segmenter=SamSegmenter(sam=tiny_sam(), device="cpu"))
    out = str(tmp_path / "sam.zarr")
    summary = run(cfg, out, cluster="none", progress=False, models=models)
    assert summary.failed_samples == []

    assert problems(out) == []
    ref_url, _ = sample_store
    a, b = zarr.open_group(out, mode="r"), zarr.open_group(ref_url, mode="r")
    assert set(b["meta/segmenter"][:].tolist()) == {"geometry"}  # the reference is the geometry run
    seg = a["meta/segmenter"][:]
    assert all(re.fullmatch(r"sam|geometry|sam\+geometry:\d+/\d+", h) for h in seg), seg
    label_a, label_b = a["label"][:], b["label"][:]
    types = a["meta/attack_type"][:]
    for i, t in enumerate(types):
        if seg[i] == "geometry":  # every region fell back: the labels are exactly the geometry ones
            np.testing.assert_array_equal(label_a[i], label_b[i])
        if t == "bonafide":
            assert label_a[i, 0].sum() == 0
        if t in ("print", "replay"):
            assert label_a[i, 1].sum() == 0 and label_a[i, 0].sum() > 0
    assert "geometry" in seg.tolist()  # random weights agree with no prior on some frame


def test_cli_sam_run_records_the_checkpoint(vit_b_checkpoint, tmp_path):
    """The real path: checkpoint validated, segmenter built by name in the run, sha256 in provenance."""
    from click.testing import CliRunner

    from pipelines.cli import cli

    path, _ = vit_b_checkpoint
    out = tmp_path / "sam.zarr"
    r = CliRunner().invoke(cli, ["run", "--dataset", "sample", "--out", str(out), "--segmenter", "sam",
                                 "--sam-checkpoint", str(path), "--sam-model", "vit_b", "--device", "cpu",
                                 "--limit", "1", "--cluster", "none"])
    assert r.exit_code == 0, r.output
    assert "SAM runs on the CPU" in r.output
    root = zarr.open_group(str(out), mode="r")
    assert root.attrs["provenance"]["checkpoint_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert root.attrs["config"]["segmenter_options"]["model"] == "vit_b"
    how = root["meta/segmenter"][0]
    assert how == "sam" or how == "geometry" or how.startswith("sam+geometry:")
    # the least predicted IoU of the masks SAM's selection took; none taken: no value
    iou = root["meta/segmenter_iou"][0]
    assert (how == "geometry") == bool(np.isnan(iou)) and (np.isnan(iou) or 0.0 <= iou <= 1.5)


@pytest.mark.parametrize("args,fragment", [
    (["--segmenter", "sam"], "needs --sam-checkpoint"),
    (["--segmenter", "sam", "--sam-checkpoint", "/nonexistent/sam.pth"], "does not exist; download one"),
    (["--device", "cpu"], "--device only applies to --segmenter sam and --landmarker fan"),
    (["--sam-batch", "4"], "--sam-batch only applies to --segmenter sam"),
    (["--segmenter", "sam", "--sam-checkpoint", "x.pth", "--device", "tpu"], "unknown --device 'tpu'"),
])
def test_cli_sam_errors_are_one_line(tmp_path, args, fragment):
    from click.testing import CliRunner

    from pipelines.cli import cli

    r = CliRunner().invoke(cli, ["run", "--dataset", "sample", "--out", str(tmp_path / "x.zarr"), *args])
    lines = [l for l in r.output.splitlines() if l.strip() and not l.startswith("note:")]
    assert r.exit_code != 0 and len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], r.output
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.parametrize("attack_type,site", [("partial_eye", "eyes"), ("glasses", "eyes"),
                                              ("partial_mouth", "mouth"), ("half_mask", "mouth")])
def test_every_partial_type_prompts_its_instrument_where_it_sits(face_item, attack_type, site):
    """The occluder's positives lie on its site (the eyes, the mouth or below the nose), its negatives
    on the face parts it leaves free; selection measures it against that site (both layouts)."""
    from annotator.face.regions import REGION_IDS
    from annotator.segment.sam.prompts import occluder_site

    lm = face_item.landmarks
    priors = region_priors(lm, face_item.size)
    pts, labels, rids = build_prompts(lm, priors, attack_type)
    assert rids[-1] == Region.OCCLUDER and occluder_site(attack_type) == REGION_IDS[site]
    import cv2

    site_px = priors[REGION_IDS[site]] | (priors[Region.BROWS] if site == "eyes" else False)
    ys, xs = np.nonzero(site_px)
    hull = cv2.convexHull(np.stack([xs, ys], 1).astype(np.int32))  # the site and what lies between its parts
    near = np.zeros((128, 128), np.uint8)
    cv2.fillPoly(near, [hull[:, 0]], 1)
    near = cv2.dilate(near, np.ones((9, 9), np.uint8)).astype(bool)
    pos, neg = pts[-1][labels[-1] == 1], pts[-1][labels[-1] == 0]
    chin = attack_type == "half_mask"  # its positives reach the chin, below the mouth
    assert len(pos) >= 3 and len(neg) >= 2
    assert sum(near[min(int(y), 127), min(int(x), 127)] for x, y in pos) >= (2 if chin else len(pos))
    assert not any(near[min(int(y), 127), min(int(x), 127)] for x, y in neg)
