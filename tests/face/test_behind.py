"""The face behind an instrument: composites with exact instrument masks (annotator/composites.py)
where BlazeFace finds no face; the pose fallback finds them, never a face on textures, and frames
the detector handles never run it."""

import numpy as np
import pytest

from annotator import composites
from annotator.config import AnnotateConfig
from annotator.label import Policy
from annotator.shard import build_models
from helpers import SAMPLE


@pytest.fixture(scope="module")
def strips():
    return composites.build(SAMPLE, kinds=("strip_narrow", "strip_wide"))


def found(items, tmp_path, fallback):
    cfg = AnnotateConfig(dataset="folder", root="", policy=Policy.default().table, face_fallback=fallback)
    return composites.measure(items, cfg, build_models(cfg), tmp_path)


def test_the_pose_fallback_finds_the_face_behind_a_paper_strip(strips, tmp_path):
    assert len(strips) == 20
    without = found(strips, tmp_path / "a", "")
    assert sum(r.found for r in without) <= 10  # BlazeFace misses most faces with covered eyes
    with_pose = found(strips, tmp_path / "b", "pose")
    assert all(r.found for r in with_pose)


def test_the_fallback_finds_no_face_on_textures_and_object_photos(tmp_path):
    from skimage import data

    from annotator.face.behind import PoseFace

    fallback = PoseFace()
    for name in ("brick", "grass", "coffee", "rocket", "chelsea"):
        img = getattr(data, name)()
        img = np.ascontiguousarray(np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3])
        assert fallback(img) is None, name


def test_rows_found_by_the_fallback_say_so_and_detected_faces_never_run_it(strips, tmp_path, monkeypatch):
    from annotator.core.samples import SampleRef
    from annotator.shard import crop_faces
    from PIL import Image

    cfg = AnnotateConfig(dataset="folder", root="", policy=Policy.default().table)
    models = build_models(cfg)
    calls = []
    real = models.fallback.__call__
    monkeypatch.setattr(type(models.fallback), "__call__", lambda self, f: calls.append(1) or real(f))
    bona = composites.bona_fide(SAMPLE)[:2]
    refs = []
    for c in [*bona, *strips[:4]]:
        path = tmp_path / f"{c.name}.png"
        Image.fromarray(c.image).save(path)
        refs.append(SampleRef(c.name, str(path), path.name, c.name, c.kind != "bonafide", c.attack_type, "x"))
    rows = crop_faces(refs, cfg, models)
    sources = rows.meta["face_source"]
    assert sources[:2] == ["detector", "detector"] and list(rows.meta["status"]) == [0] * 6
    missed = [s for s in sources[2:] if s == "pose"]
    assert len(calls) == len(missed) >= 1  # the fallback ran exactly on the detector's misses


def test_the_run_honours_face_fallback_and_old_stores_keep_theirs_off(strips, tmp_path):
    """Through annotate run's worker path (pipelines/tasks.py caches models by the settings they use)."""
    import zarr
    from PIL import Image

    from helpers import sync_config
    from pipelines.prepare import settle_defaults
    from pipelines.run import run

    root = tmp_path / "F" / "attack" / "partial_eye"
    root.mkdir(parents=True)
    for c in strips[:4]:
        Image.fromarray(c.image).save(root / f"{c.name}.png")
    sources = {}
    for name, fallback in (("off", ""), ("default", None)):
        out = tmp_path / f"{name}.zarr"
        run(sync_config(dataset="folder", root=str(tmp_path / "F"), face_fallback=fallback), str(out),
            cluster="none", progress=False)
        sources[name] = zarr.open_group(str(out))["meta/face_source"][:].tolist()
    assert "pose" not in sources["off"] and "pose" in sources["default"]
    # a store written before the fallback existed: its config has no key, and a rerun keeps it off
    assert AnnotateConfig.from_dict({"dataset": "folder", "root": ""}).face_fallback == ""
    assert settle_defaults(sync_config(dataset="folder", root=""), str(tmp_path / "off.zarr")).face_fallback == ""
