"""`annotate check-dataset` on trees with each kind of problem, and `annotate protocols` on a store
written before its protocol files arrived."""

import json

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from annotator.datasets.check import check_dataset
from pipelines.cli import cli
from annotator.datasets import DATASETS
from helpers import sync_config
from test_public_adapters import oulu_tree, siwmv2_tree, touch


@pytest.fixture(scope="module")
def clip(sample_root):
    return (sample_root / "bonafide" / "astronaut_pan.mp4").read_bytes()


def check(name, root, **kw):
    return check_dataset(DATASETS.create(name, root=str(root), strict=False, **kw))


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_a_clean_tree_passes(tmp_path, clip):
    root = oulu_tree(tmp_path / "OULU", clip)
    r = check("oulu-npu", root)
    assert r.problems == 0 and r.files == 12 and r.rows == 120
    assert r.counts == {"train": {"bonafide": 2, "print": 2, "replay": 2}, "dev": {"bonafide": 1, "print": 1, "replay": 1},
                        "test": {"bonafide": 1, "print": 1, "replay": 1}}
    # media no protocol uses are reported, but alone they do not fail the check
    assert "Train_files/1_3_01_5.avi" in r.unused and "Train_files/1_3_01_1.avi" not in r.unused
    res = invoke("check-dataset", "--dataset", "oulu-npu", "--root", root)
    assert res.exit_code == 0 and res.output.strip().endswith("ok") and "no protocol uses" in res.output


def test_every_kind_of_problem_is_reported(tmp_path, clip):
    root = oulu_tree(tmp_path / "OULU", clip)
    touch(root / "Protocols" / "Protocol_1" / "Dev.txt", b"+1,1_3_21_1\n+1,1_3_22_1\nnot a line\n")  # missing id, bad line
    touch(root / "Protocols" / "Protocol_1" / "Test.txt", b"+1,1_3_36_1\n-1,1_3_01_5\n")  # user 01 also in train
    (root / "Dev_files" / "1_3_21_2.avi").write_bytes(b"")  # unreadable
    (root / "Test_files" / "1_3_36_2.avi").write_bytes(b"garbage bytes, no container")  # unreadable
    touch(root / "Train_files" / "phone_1.avi", clip)  # does not parse
    touch(root / "Train_files" / "1_3_02_9.avi", clip)  # unknown native id
    r = check("oulu-npu", root)
    assert r.missing == {"Protocol_1": ["1_3_22_1"]}
    assert r.crossing == {"Protocol_1": ["01"]}
    assert sorted(s for s, _ in r.unreadable) == ["Dev_files/1_3_21_2.avi", "Test_files/1_3_36_2.avi"]
    bad = dict(r.bad_names)
    assert any("Dev.txt line 3" in k for k in bad) and any(k.endswith("phone_1.avi") for k in bad)
    assert any("'9'" in v for v in bad.values())
    assert r.problems == 1 + 1 + 2 + 3
    res = invoke("check-dataset", "--dataset", "oulu-npu", "--root", root, "--json")
    assert res.exit_code == 1
    data = json.loads(res.output)
    assert data["problems"] == 7 and data["missing"] == {"Protocol_1": ["1_3_22_1"]} and not data["ok"]
    text = invoke("check-dataset", "--dataset", "oulu-npu", "--root", root)
    assert text.exit_code == 1 and "1_3_22_1" in text.output and "subjects in both train and test" in text.output


def test_unknown_prefix_and_missing_listed_video_in_siw_mv2(tmp_path):
    root = siwmv2_tree(tmp_path / "v2", "readme")
    (root / "Spoof/Replay/Replay_2.mov").unlink()  # named by testlist_all.txt and test_E_ill.txt
    touch(root / "Spoof/Deepfake/Deepfake_1.mov")
    r = check_dataset(DATASETS.create("siw-mv2", root=str(root), strict=False), probe_media=False)
    assert r.missing["Protocol_I"] == ["Replay_2"] and r.missing["Protocol_III_E"] == ["Replay_2"]
    assert len(r.bad_names) == 1 and "'Deepfake'" in r.bad_names[0][1]
    assert r.problems > 0


def test_folder_manifest_with_a_missing_file(tmp_path, sample_root):
    import shutil

    root = tmp_path / "f"
    root.mkdir()
    shutil.copy(sample_root / "bonafide" / "astronaut.jpg", root / "a.jpg")
    (root / "manifest.csv").write_text("path,is_attack,attack_type,subject,split\na.jpg,0,,s1,train\n"
                                       "gone.jpg,1,print,s1,test\nb.jpg,1,hologram,s2,test\n")
    r = check("folder", root)
    assert r.missing_files == ["gone.jpg"] and len(r.bad_names) == 1 and "hologram" in r.bad_names[0][1]
    assert r.problems == 2 and r.unreadable == []


def test_protocols_command_equals_a_run_that_had_them(tmp_path, clip):
    from pipelines.run import run

    root = oulu_tree(tmp_path / "OULU", clip)
    with_lists = str(tmp_path / "with.zarr")
    run(sync_config(dataset="oulu-npu", root=str(root), frames_per_video=1), with_lists, cluster="none",
        progress=False)
    lists = tmp_path / "lists"
    (root / "Protocols").rename(lists)
    without = str(tmp_path / "without.zarr")
    summary = run(sync_config(dataset="oulu-npu", root=str(root), frames_per_video=1), without, cluster="none",
                  progress=False)
    assert "no protocol files found" in summary.report()
    assert zarr.open_group(without, mode="r")["protocols"].__len__() == 0
    res = invoke("protocols", without, "--dataset", "oulu-npu", "--root", root, "--protocol-dir", lists)
    assert res.exit_code == 0, res.output
    a, b = zarr.open_group(with_lists, mode="r"), zarr.open_group(without, mode="r")
    names = sorted(k for k, _ in a["protocols"].arrays())
    assert names == sorted(k for k, _ in b["protocols"].arrays()) == ["Protocol_1", "Protocol_3_2"]
    for n in names:
        assert np.array_equal(a[f"protocols/{n}"][:], b[f"protocols/{n}"][:]), n
    assert (a["protocols/Protocol_1"][:] != -1).sum() == 5
    assert invoke("verify", without).exit_code == 0
    # a store of another dataset is refused, in one line
    res = invoke("protocols", without, "--dataset", "casia-fasd", "--root", root)
    assert res.exit_code != 0 and "holds dataset 'oulu-npu'" in res.output and "Traceback" not in res.output
