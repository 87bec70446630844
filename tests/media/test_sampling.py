"""Frame sampling by name: each rule's documented indices on videos of known frame counts, and a
run that records the rule and the exact frames."""

import dataclasses

import numpy as np
import pytest
import zarr
from helpers import sync_config

from annotator.config import AnnotateConfig
from annotator.core.errors import SettingError
from annotator.media.sampling import PRESETS, parse


@pytest.mark.parametrize("spec, n, expected", [
    ("even:4", 10, [0, 3, 6, 9]),
    ("even:1", 9, [4]),
    ("even:5", 3, [0, 0, 1, 2, 2]),
    ("first:3", 10, [0, 1, 2]),
    ("first:4", 2, [0, 1, 1, 1]),
    ("every:7", 50, [0, 7, 14, 21, 28, 35, 42, 49]),
    ("every:5", 3, [0]),
    ("all", 4, [0, 1, 2, 3]),
    ("ssdg-train", 50, [6]),             # SSDG: entry 6 + j * floor(n / 1)
    ("ssdg-test", 50, [6, 31]),          # 6 + j * floor(50 / 2)
    ("ssdg-test", 5, [4, 4]),            # clipped to the last frame
    ("cdcn-test", 100, [0, 10, 20, 30, 40, 50, 60, 70]),   # j * floor(n / 10), j < 8
    ("cdcn-test", 6, [0, 1, 2, 3, 4, 5, 5, 5]),
])
def test_each_rule_gives_its_documented_frames(spec, n, expected):
    rule = parse(spec)
    assert rule.indices(n).tolist() == expected
    assert rule.slots in (None, len(expected))


def test_specs_are_canonical_and_bad_ones_say_what_is_accepted():
    assert parse("", 7).spec == "even:7" and parse("EVEN").spec == "even:10" and parse("first", 3).spec == "first:3"
    assert parse("all").slots is None and parse("every:2").slots is None
    assert {parse(p).spec for p in PRESETS} == set(PRESETS)
    for bad, message in (("bogus", "unknown rule 'bogus'; use even:K, first:K, every:N, all or a preset"),
                         ("every", "every needs a step"), ("even:x", "takes a whole number"),
                         ("first:0", "at least 1"), ("all:3", "all takes no number")):
        with pytest.raises(SettingError, match=message):
            parse(bad)


def test_a_store_made_before_the_setting_compares_equal_to_even():
    old = AnnotateConfig(dataset="sample", root="").to_dict()
    del old["sampling"]
    assert AnnotateConfig.from_dict(old).differences(AnnotateConfig(dataset="sample", root="", sampling="even:10")) == []
    assert "sampling" in AnnotateConfig.from_dict(old).differences(AnnotateConfig(dataset="sample", root="",
                                                                                sampling="every:5"))


@pytest.mark.parametrize("spec, frames", [("every:7", [0, 7, 14, 21, 28, 35, 42, 49]), ("ssdg-test", [6, 31]),
                                          ("first:3", [0, 1, 2])])
def test_a_run_records_the_rule_and_the_exact_frames(tmp_path, spec, frames):
    from pipelines.run import run

    out = str(tmp_path / "s.zarr")
    run(sync_config(dataset="sample", root="", sampling=spec), out, cluster="none", progress=False)
    root = zarr.open_group(out, mode="r")
    video = root["meta/video_id"][:] == "bonafide/astronaut_pan.mp4"  # 50 frames
    assert root["meta/frame_index"][:][video].tolist() == frames
    assert root["meta/sample_id"][:][video].tolist() == [f"bonafide/astronaut_pan.mp4#{j}" for j in range(len(frames))]
    assert root.attrs["config"]["sampling"] == spec
    assert (root["meta/status"][:][video] == 0).all()
    from annotator.core.errors import AnnotatorError

    with pytest.raises(AnnotatorError, match=r"different settings \(sampling"):
        run(sync_config(dataset="sample", root="", sampling="even:10"), out, cluster="none", progress=False)


def test_hdf5_recordings_are_sampled_by_the_rule(tmp_path, face_image):
    import h5py

    from annotator.datasets import DATASETS
    from annotator.media.hdf5 import count_hdf5_frames, read_hdf5_frames
    from annotator.media.plan import sampled

    p = tmp_path / "raw" / "face-station" / "12.01.18" / "005_02_005_4_01.hdf5"
    p.parent.mkdir(parents=True)
    frames = np.stack([np.full((32, 32, 3), i, np.uint8) for i in range(9)])
    with h5py.File(p, "w") as f:
        f.create_dataset("intelsr300_bgr", data=frames)
    (tmp_path / "raw" / "PROTOCOL-grandtest.csv").write_text("face-station/12.01.18/005_02_005_4_01,1,train\n")
    refs = list(DATASETS.create("wmca", root=str(tmp_path / "raw"), frames_per_video=2).samples())
    assert count_hdf5_frames(refs[0].path, refs[0].media) == 9
    rule = parse("every:4")
    rows = list(sampled(refs, rule))
    assert [r.slot for r in rows] == [0, 1, 2] and {r.n_slots for r in rows} == {3}
    idx, got, _ = read_hdf5_frames(rows[0].path, 3, rows[0].media, rule)
    assert idx.tolist() == [0, 4, 8] and [int(g[0, 0, 0]) for g in got] == [0, 4, 8]
    assert dataclasses.replace(rows[0], slot=0, n_slots=2, sample_id=refs[0].sample_id) == refs[0]
