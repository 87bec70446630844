import numpy as np
import pytest
import zarr

from annotator.core.errors import AnnotatorError
from annotator.face.regions import FACE_REGIONS, REGION_IDS
from helpers import sync_config, problems


def _rows_by_type(root):
    types = root["meta/attack_type"][:]
    status = root["meta/status"][:]
    return {t: [i for i in range(len(types)) if types[i] == t and status[i] == 0] for t in set(types)}


def test_sample_run_is_complete_and_valid(sample_store):
    from annotator import store

    url, summary = sample_store
    assert summary.n_samples == 15 and summary.failed_samples == [] and summary.failed_shards == []
    assert problems(url) == []
    root = zarr.open_group(url, mode="r")
    assert (root["meta/status"][:] == 0).all()
    assert root["meta/frame_index"][:].tolist().count(-1) == 5  # 5 images, 10 video frames
    assert sorted(set(root["meta/segmenter"][:])) == ["geometry"]
    lm = root["landmarks"][:]
    assert np.isfinite(lm).all() and lm[:, :, :2].min() > 0 and lm[:, :, :2].max() < 256


def test_label_semantics_on_real_faces(sample_store):
    url, _ = sample_store
    root = zarr.open_group(url, mode="r")
    rows = _rows_by_type(root)
    # every type of the sample data has annotated rows: the loops below check something
    assert {t: len(rows.get(t, [])) >= 1 for t in ("bonafide", "print", "replay", "partial_eye")} == \
        dict.fromkeys(("bonafide", "print", "replay", "partial_eye"), True), {t: len(r) for t, r in rows.items()}
    label, region = root["label"][:], root["region"][:]
    for i in rows["bonafide"]:
        face = np.isin(region[i], FACE_REGIONS)
        assert label[i, 0].sum() == 0
        assert (label[i, 1][face] > 0).mean() > 0.95
    for t in ("print", "replay"):
        for i in rows[t]:
            face = np.isin(region[i], FACE_REGIONS)
            assert label[i, 1].sum() == 0
            assert (label[i, 0][face] > 0).mean() > 0.95
    for i in rows["partial_eye"]:
        reg = region[i]
        occluder = reg == REGION_IDS["occluder"]
        if occluder.any():  # the default segmenter cut the printed patch: it, and only it, is attack
            attack, live = label[i, 0] > 0, label[i, 1] > 0
            assert not (attack & ~occluder).any() and not (live & occluder).any()
            assert attack.sum() > 0.9 * (occluder & (root["depth"][i] > 0)).sum()
            assert (live[np.isin(reg, FACE_REGIONS)]).mean() > 0.95
            continue
        band = np.isin(reg, (REGION_IDS["eyes"], REGION_IDS["brows"]))
        rows_band = np.nonzero(band.any(axis=1))[0]
        attack = label[i, 0].astype(float)
        in_band = attack[rows_band.min():rows_band.max() + 1].sum()
        assert attack.sum() > 0 and in_band / attack.sum() == 1.0
        rest = np.isin(reg, FACE_REGIONS) & ~band
        assert (label[i, 1][rest] > 0).mean() > 0.95 and label[i, 1][band].sum() == 0


def test_videos_never_straddle_shards(sample_store):
    from pipelines.prepare import auto_shard_size

    url, summary = sample_store
    root = zarr.open_group(url, mode="r")
    size = root.attrs["shard_size"]
    assert size == 10 and summary.n_shards == 2  # 15 rows: the 10 video slots, then the 5 images
    videos = root["meta/video_id"][:]
    for start in range(0, len(videos), size):
        inside = set(videos[start:start + size])
        outside = set(videos[:start]) | set(videos[start + size:])
        assert not any(v.endswith(".mp4") and v in outside for v in inside)
    assert auto_shard_size(10_000, 10) == 30 and auto_shard_size(10_000, 1) == 32 and auto_shard_size(40, 10) == 10


def test_dask_equals_in_process(sample_store, tmp_path):
    from pipelines.run import run

    url, _ = sample_store
    out = str(tmp_path / "dask.zarr")
    summary = run(sync_config(dataset="sample", root=""), out, cluster="local", workers=2, progress=False)
    assert summary.failed_shards == []
    a, b = zarr.open_group(url, mode="r"), zarr.open_group(out, mode="r")
    for name in ("image", "label", "depth", "region", "landmarks", "pyramid/8", "pyramid/1"):
        np.testing.assert_array_equal(a[name][:], b[name][:], err_msg=name)
    for col in ("sample_id", "status", "frame_index", "attack_type", "source"):
        assert a[f"meta/{col}"][:].tolist() == b[f"meta/{col}"][:].tolist()


def test_rerun_resumes_and_config_change_is_refused(sample_store, tmp_path):
    import shutil

    from pipelines.run import run

    url, _ = sample_store
    copy = str(tmp_path / "copy.zarr")
    shutil.copytree(url, copy)
    summary = run(sync_config(dataset="sample", root=""), copy, cluster="none", progress=False)
    assert summary.skipped_shards == summary.n_shards
    with pytest.raises(AnnotatorError, match=r"different settings \(size\)"):
        run(sync_config(dataset="sample", root="", size=128), copy, cluster="none", progress=False)
    # a removed marker means that shard is redone, and only that one
    import os

    os.remove(os.path.join(copy, "_shards", "000001.json"))
    summary = run(sync_config(dataset="sample", root=""), copy, cluster="none", progress=False)
    assert summary.skipped_shards == summary.n_shards - 1
    np.testing.assert_array_equal(zarr.open_group(copy)["label"][:], zarr.open_group(url)["label"][:])


def test_resume_refuses_other_code_unless_allowed(sample_store, tmp_path):
    import shutil

    from pipelines.run import run

    url = tmp_path / "c.zarr"
    shutil.copytree(sample_store[0], url)
    (url / "_shards" / "000001.json").unlink()  # something left to resume
    root = zarr.open_group(str(url), mode="r+")
    config = dict(root.attrs["config"])
    assert config["tuning"]["track_context"] == 3.4  # the run recorded the constants it used
    config["tuning"] = {**config["tuning"], "track_context": 2.0}  # as if the code had other constants
    root.attrs["config"] = config
    cfg = sync_config(dataset="sample", root="")
    with pytest.raises(AnnotatorError, match=r"started by other code \(tuning constants track_context differ\)"):
        run(cfg, str(url), cluster="none", progress=False)
    prov = dict(root.attrs["provenance"])
    prov["code"] = {"version": "0.0.1", "commit": "0123456789abcdef"}
    root.attrs["provenance"] = prov
    with pytest.raises(AnnotatorError, match=r"the code was 0\.0\.1 \(commit 0123456789\).*--allow-code-change"):
        run(cfg, str(url), cluster="none", progress=False)
    summary = run(cfg, str(url), cluster="none", progress=False, allow_code_change=True)
    assert summary.skipped_shards == 1 and any("allow-code-change" in n for n in summary.notes)
    record = zarr.open_group(str(url), mode="r").attrs["provenance"]["resumed_with_code_change"]
    assert len(record) == 1 and len(record[0]["changes"]) == 2
