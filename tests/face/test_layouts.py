"""The ibug-68 layout (FAN's points) against FaceMesh's on the same faces: the sample faces'
MediaPipe points through the 68 -> 478 map give 68-point sets whose regions, depth, prompts and
MCREA exchanges must agree with the 478-point ones within the stated tolerances."""

import numpy as np
import pytest
import torch
import zarr

from annotator.label import render_depth
from annotator.face import layouts as L
from annotator.face.points68 import mesh_to_68
from annotator.face.regions import Region
from annotator.face.priors import compose, region_priors

SIZE = 256


@pytest.fixture(scope="module")
def faces(sample_store):
    """(K, 478, 3) FaceMesh landmarks of the sample store's rows (crop pixels) and their region maps."""
    root = zarr.open_group(sample_store[0], mode="r")
    ok = root["meta/status"][:] == 0
    # the sample store's faces are all found: a test looping over none would pass without checking
    assert ok.sum() >= 10, f"only {ok.sum()} usable rows in the sample store"
    return root["landmarks"][:][ok], root["region"][:][ok]


def _region(lm):
    return compose(region_priors(lm, SIZE), SIZE)


def test_layout_of_and_stored_points():
    assert L.layout_of(np.zeros((478, 3))) is L.MEDIAPIPE_478
    assert L.layout_of(np.zeros((5, 68, 3))) is L.IBUG_68
    with pytest.raises(ValueError, match="match no layout"):
        L.layout_of(np.zeros((100, 3)))
    p = L.IBUG_68.points(np.random.default_rng(0).normal(size=(68, 3)))
    assert p.shape == (L.N_IBUG_POINTS, 3)
    assert L.IBUG_68.attrs() == {"name": "ibug-68", "points": 68, "description": L.IBUG_68.description}
    # every index a table uses lies in the working points (exchanges: in the stored ones)
    for lay in L.LAYOUTS.values():
        k = len(lay.points(np.zeros((lay.n_points, 3))))
        used = [*lay.oval, *sum(lay.brows, ()), *sum(lay.eyes, ()), *lay.nose, *lay.lips_outer, lay.forehead_top,
                lay.chin, lay.left_edge, lay.right_edge, lay.jaw_left, lay.jaw_right, lay.nose_tip, *lay.eye_centers]
        for pos, neg in lay.region_prompts.values():
            used += [*(() if pos == "prior" else pos), *neg]
        assert max(used) < k
        assert max(i for _, idx in lay.exchange.values() for i in idx) < lay.n_points


def test_derived_points_follow_their_definitions(face_landmarks):
    p68 = mesh_to_68(face_landmarks)
    p = L.ibug_points(p68)
    iod = np.linalg.norm(p68[45, :2] - p68[36, :2])
    brow = p68[17:27].mean(axis=0)
    top = p[L.IBUG_68.forehead_top]
    up = (brow[:2] - p68[8, :2]) / np.linalg.norm(brow[:2] - p68[8, :2])
    np.testing.assert_allclose(top[:2], brow[:2] + 0.35 * iod * up, atol=1e-3)
    assert top[2] == pytest.approx(brow[2], abs=1e-3)
    # the arc runs from jaw end 16 over the forehead to jaw end 0, above the brows
    arc = p[L.ARC:L.ARC + L.N_ARC]
    assert np.linalg.norm(arc[0, :2] - p68[16, :2]) < np.linalg.norm(arc[0, :2] - p68[0, :2])
    assert (np.diff(arc[:, 0]) < 0).all()  # image right to left
    np.testing.assert_allclose(p[L.EYE_C], p68[36:42].mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(p[L.CHEEKS], (p68[1] + p68[31]) / 2, atol=1e-4)
    # MediaPipe's own forehead centre and the point below the lips are near ours
    assert np.linalg.norm(p[L.FOREHEAD, :2] - face_landmarks[151, :2]) < 0.05 * iod
    assert np.linalg.norm(p[L.BELOW_LIPS, :2] - face_landmarks[199, :2]) < 0.1 * iod


def test_region_shares_match_facemesh(faces):
    """Per face region: pixel counts within 25 % of FaceMesh's (the nose, drawn without FaceMesh's
    nostril wings, 55-100 %), overlap (IoU) at least 0.6, and the anatomy's vertical order."""
    lms, _ = faces
    for lm in lms:
        a, b = _region(lm), _region(mesh_to_68(lm))
        ca, cb = np.bincount(a.ravel(), minlength=11), np.bincount(b.ravel(), minlength=11)
        for rid in (Region.SKIN, Region.BROWS, Region.EYES, Region.MOUTH, Region.HAIR, Region.EARS, Region.NECK):
            assert 0.75 < cb[rid] / ca[rid] < 1.25, (rid.name, ca[rid], cb[rid])
        assert 0.55 < cb[Region.NOSE] / ca[Region.NOSE] < 1.0
        for rid in range(1, 9):
            iou = ((a == rid) & (b == rid)).sum() / ((a == rid) | (b == rid)).sum()
            assert iou > 0.6, (Region(rid).name, iou)
        ys = {rid: np.nonzero(b == rid)[0].mean() for rid in (6, 2, 3, 4, 5, 8)}
        assert ys[6] < ys[2] < ys[3] < ys[4] < ys[5] < ys[8]
        p = L.ibug_points(mesh_to_68(lm))
        for c in L.IBUG_68.eye_centers:
            x, y = p[c, :2].astype(int)
            assert b[y, x] == Region.EYES


@pytest.mark.parametrize("z", ["facemesh", "canonical"])
def test_depth_of_68_points(faces, z):
    """3D points (FaceMesh's z at the 68) and 2D points (z fitted from the canonical face) render a
    depth that covers FaceMesh's (within 5 %), follows it (correlation > 0.8) and is ordered:
    nose tip nearest, cheeks nearer than the jaw's sides."""
    lms, _ = faces
    for lm in lms:
        p68 = mesh_to_68(lm).astype(np.float64)
        if z == "canonical":
            p68[:, 2] = L.fit_canonical_depth(p68)
        d, dm = render_depth(p68, SIZE), render_depth(lm, SIZE)
        assert abs((d > 0).sum() / (dm > 0).sum() - 1) < 0.05
        both = (d > 0) & (dm > 0)
        assert np.corrcoef(d[both], dm[both])[0, 1] > 0.8
        p = L.ibug_points(p68)

        def at(i):
            x, y = p[i, :2].astype(int)
            return d[y, x]

        assert at(30) > 0.95
        assert at(L.CHEEKS) > at(2) + 0.1 and at(L.CHEEKS + 1) > at(14) + 0.1
        assert at(30) > at(L.CHEEKS) + 0.3
        for i in (*L.IBUG_68.eye_centers, 62):  # eyes and mouth are covered
            assert at(i) > 0


def test_canonical_fit_recovers_a_turned_face():
    """The canonical face turned 25 degrees about y and 10 about x, scaled to pixels and projected:
    its z is recovered (up to the unknown offset) from x, y alone."""
    c = L.canonical_ibug()
    ay, ax = np.radians(25), np.radians(10)
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    turned = 9.0 * c @ (rx @ ry).T + [120.0, 130.0, 0.0]
    z = L.fit_canonical_depth(turned[:, :2])
    np.testing.assert_allclose(z - z.mean(), turned[:, 2] - turned[:, 2].mean(), atol=0.05)
    assert L.orient_depth(-turned[:, 2])[30] == pytest.approx(turned[30, 2])  # a flipped z is turned back


def test_mesh_triangulation():
    v, tri = L.IBUG_68.mesh(mesh_to_68(np.zeros((478, 3))))
    assert v.shape == (L.N_IBUG_POINTS, 3) and tri.dtype == np.int32
    assert tri.min() == 0 and tri.max() == L.N_IBUG_POINTS - 1 and len(np.unique(tri)) == L.N_IBUG_POINTS
    xy = L.ibug_points(L.canonical_ibug())[:, :2]
    a = xy[tri]
    area = 0.5 * np.abs(np.cross(a[:, 1] - a[:, 0], a[:, 2] - a[:, 0]))
    assert (area > 1e-6).all()
    import cv2

    outline = xy[list(L.IBUG_68.oval)].astype(np.float32)
    assert area.sum() == pytest.approx(abs(cv2.contourArea(outline)), rel=0.02)  # the outline, wholly tiled


def test_sam_prompts_on_68_points(faces):
    """Positive points of the landmark-prompted regions fall in (or on the edge of) their own
    region and the negatives outside it, as they do for FaceMesh's prompts."""
    from annotator.segment.sam.prompts import build_prompts

    lms, _ = faces
    for lm in lms:
        for layout_lm in (lm, mesh_to_68(lm)):
            priors = region_priors(layout_lm, SIZE)
            reg = compose(priors, SIZE)
            points, labels, ids = build_prompts(layout_lm, priors, "print")
            assert Region.PAI_SURFACE in ids.tolist() and points.shape[1:] == (9, 2)
            for pts, lab, rid in zip(points, labels, ids):
                if rid in (Region.HAIR, Region.EARS, Region.NECK, Region.PAI_SURFACE):
                    continue
                grown = __import__("cv2").dilate((reg == rid).astype(np.uint8), np.ones((5, 5), np.uint8))
                inside = [grown[int(y), int(x)] > 0 for x, y in pts[lab == 1]]
                outside = [(reg == rid)[int(y), int(x)] for x, y in pts[lab == 0]]
                assert all(inside) and not any(outside), (layout_lm.shape, Region(rid).name)


def test_mcrea_exchanges_68_point_regions(faces):
    """MCREA on a batch of 68-point rows: exchanges happen, the exchanged region's points are the
    donor's moved by the fitted similarity, the other points stay."""
    from annotator.augment import mcrea
    from annotator.augment.mcrea import similarity

    lms, _ = faces
    lm68 = np.stack([mesh_to_68(m) for m in lms[:4]]).astype(np.float32)
    lm68[1, :, :2] = lm68[1, :, :2] * 0.9 + 12  # a smaller, shifted donor
    region = np.stack([_region(m) for m in lm68])
    n = len(lm68)
    batch = {"image": torch.randint(0, 255, (n, SIZE, SIZE, 3), dtype=torch.uint8),
             "label": torch.zeros((n, 3, SIZE, SIZE), dtype=torch.uint8),
             "depth": torch.zeros((n, SIZE, SIZE), dtype=torch.uint8),
             "region": torch.from_numpy(region), "landmarks": torch.from_numpy(lm68)}
    out, log = mcrea(batch, gamma=1.0, rho=1, regions=("eyes",), generator=torch.Generator().manual_seed(0))
    assert out["landmarks"].shape == (n, 68, 3) and log
    for ex in log:
        idx = list(L.IBUG_68.exchange["eyes"][1])
        m = similarity(batch["landmarks"][ex.donor][idx, :2], batch["landmarks"][ex.recipient][idx, :2]).numpy()
        moved = batch["landmarks"][ex.donor][idx, :2].double().numpy() @ m[:, :2].T + m[:, 2]
        np.testing.assert_allclose(out["landmarks"][ex.recipient][idx, :2].numpy(), moved, atol=1e-3)
        rest = [i for i in range(68) if i not in idx]
        assert torch.equal(out["landmarks"][ex.recipient][rest], batch["landmarks"][ex.recipient][rest])
        assert out["exchanged"][ex.recipient].sum() > 50


def test_canonical_table_is_the_face_facemesh_finds(face_landmarks):
    """CANONICAL_68 (transcribed from MediaPipe's canonical face) fits FaceMesh's 68 points of the
    frontal sample face by a similarity to within a few per cent of the inter-ocular distance, and
    its depth, fitted to those points, follows FaceMesh's own z."""
    from annotator.augment.mcrea import similarity

    p68 = mesh_to_68(face_landmarks).astype(np.float64)
    c = L.canonical_ibug()
    m = similarity(torch.from_numpy(c[:, :2]), torch.from_numpy(p68[:, :2])).numpy()
    fitted = c[:, :2] @ m[:, :2].T + m[:, 2]
    iod = np.linalg.norm(p68[45, :2] - p68[36, :2])
    assert np.linalg.norm(fitted - p68[:, :2], axis=1).mean() / iod < 0.08
    assert np.corrcoef(L.fit_canonical_depth(p68), p68[:, 2])[0, 1] > 0.95
