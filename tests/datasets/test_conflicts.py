"""Train/test leakage and rows that no longer match their dataset: an id listed in two groups of one
protocol, a manifest that contradicts itself, extra columns that would shadow the schema's, and a
rerun after the dataset's lists changed. Each is named and refused; the way out is tested too."""

import shutil

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from annotator import store
from annotator.datasets.check import check_dataset
from annotator.core.errors import AnnotatorError
from pipelines.cli import cli
from helpers import SAMPLE, sync_config
from pipelines.run import run
from test_public_adapters import oulu_tree, touch


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def oulu_with_a_leak(tmp_path):
    root = oulu_tree(tmp_path / "OULU")
    touch(root / "Protocols" / "Protocol_1" / "Test.txt", b"+1,1_3_36_1\n-2,1_3_36_5\n+1,1_3_01_1\n")  # also in Train
    return root


def oulu_run(root, out, **kw):
    return run(sync_config(dataset="oulu-npu", root=str(root), frames_per_video=1, **kw), str(out), cluster="none",
               progress=False)


def row_of(url, source):
    return list(zarr.open_group(str(url))["meta/source"][:]).index(source)


def test_check_dataset_names_an_id_listed_in_train_and_test(tmp_path):
    root = oulu_with_a_leak(tmp_path)
    res = invoke("check-dataset", "--dataset", "oulu-npu", "--root", root)
    assert res.exit_code == 1
    assert "PROBLEM Protocol_1: ids listed in two groups" in res.output and "1_3_01_1: train, test" in res.output


def test_annotate_run_refuses_a_leak_then_drop_or_first_settle_it(tmp_path):
    root = oulu_with_a_leak(tmp_path)
    out = tmp_path / "o.zarr"
    with pytest.raises(AnnotatorError, match=r"1 id\(s\) listed in two groups .*Protocol_1: 1_3_01_1 \(train, test\)"):
        oulu_run(root, out)
    assert not out.exists()  # refused before any work
    summary = oulu_run(root, out, on_conflict="drop")
    assert any("--on-conflict drop" in n and "1_3_01_1" in n for n in summary.notes)
    codes = zarr.open_group(str(out))["protocols/Protocol_1"][:]
    assert codes[row_of(out, "Train_files/1_3_01_1.avi")] == -1 and (codes != -1).sum() == 4
    assert store.open_store(str(out)).attrs["config"]["on_conflict"] == "drop"
    first = tmp_path / "f.zarr"
    oulu_run(root, first, on_conflict="first")
    assert zarr.open_group(str(first))["protocols/Protocol_1"][row_of(first, "Train_files/1_3_01_1.avi")] == 0


def test_annotate_protocols_refuses_a_leak_unless_told(tmp_path):
    root = oulu_tree(tmp_path / "OULU")
    out = tmp_path / "o.zarr"
    oulu_run(root, out)
    touch(root / "Protocols" / "Protocol_1" / "Test.txt", b"+1,1_3_36_1\n-2,1_3_36_5\n+1,1_3_01_1\n")
    before = zarr.open_group(str(out))["protocols/Protocol_1"][:]
    res = invoke("protocols", out, "--dataset", "oulu-npu", "--root", root)
    assert res.exit_code == 1 and "1_3_01_1 (train, test)" in res.output and "Traceback" not in res.output
    assert np.array_equal(zarr.open_group(str(out))["protocols/Protocol_1"][:], before)
    res = invoke("protocols", out, "--dataset", "oulu-npu", "--root", root, "--on-conflict", "drop")
    assert res.exit_code == 0, res.output
    assert zarr.open_group(str(out))["protocols/Protocol_1"][row_of(out, "Train_files/1_3_01_1.avi")] == -1


def test_documented_siwm_conflicts_keep_train_with_a_note(tmp_path):
    from annotator.datasets import DATASETS
    from test_public_adapters import siwmv2_tree

    root = siwmv2_tree(tmp_path / "SiW", "readme")
    lists = root / "pro_3_text"
    stem = (lists / "train_A_pretrain.txt").read_text().split()[0]
    test = lists / "test_A_pretrain.txt"
    test.write_text(test.read_text() + stem + "\n")
    adapter = DATASETS.create("siw-mv2", root=str(root), frames_per_video=1)
    adapter.settle_conflicts("")  # documented: no refusal
    assert adapter.protocols["Protocol_III"][stem] == 0
    assert any(stem in n and "kept in train" in n for n in adapter.findings.notes)
    assert check_dataset(DATASETS.create("siw-mv2", root=str(root), strict=False), probe_media=False).conflicts == {}


# ------------------------------------------------------------------ folder manifests


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "F"
    for rel in ("bonafide/astronaut.jpg", "bonafide/astronaut_room.jpg", "attack/print/print_on_table.jpg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE / rel, root / rel)
    return root


def manifest(folder, *rows, extra=""):
    """ROOT/manifest.csv with the given rows under the manifest's columns (and `extra` ones)."""
    (folder / "manifest.csv").write_text("path,is_attack,attack_type,subject,split" + extra + "\n"
                                         + "".join(r + "\n" for r in rows))


def folder_run(root, out, **kw):
    return run(sync_config(dataset="folder", root=str(root), **kw), str(out), cluster="none", progress=False)


def test_a_manifest_that_contradicts_itself_is_named_and_refused(folder, tmp_path):
    (folder / "manifest.csv").write_text(
        "path,is_attack,attack_type,subject,split\n"
        "bonafide/astronaut.jpg,0,,a,train\n"
        "bonafide/astronaut.jpg,1,print,a,test\n"
        "bonafide/astronaut.jpg,0,,a,dev\n"
        "bonafide/astronaut_room.jpg,0,,b,train\n"
        "bonafide/astronaut_room.jpg,0,,b,train\n")  # an exact repeat: one row, a note
    res = invoke("check-dataset", "--dataset", "folder", "--root", folder)
    assert res.exit_code == 1 and "bonafide/astronaut.jpg: lines 2, 3, 4" in res.output
    out = tmp_path / "m.zarr"
    with pytest.raises(AnnotatorError, match="contradicting labels, subjects or splits .*astronaut.jpg"):
        folder_run(folder, out)
    assert not out.exists()
    summary = folder_run(folder, out, on_conflict="drop")
    assert zarr.open_group(str(out))["meta/source"][:].tolist() == ["bonafide/astronaut_room.jpg"]
    assert any("repeat a file listed before" in n for n in summary.notes)
    first = tmp_path / "first.zarr"
    folder_run(folder, first, on_conflict="first")
    g = zarr.open_group(str(first))
    assert g["meta/source"][:].tolist() == ["bonafide/astronaut.jpg", "bonafide/astronaut_room.jpg"]
    assert g["meta/split"][:].tolist() == ["train", "train"] and g["meta/is_attack"][:].tolist() == [False, False]


@pytest.mark.parametrize("column", ["sample_id", "error", "frame_index", "status", "a/b", "zarr.json", "../x", "",
                                    "landmark_nme"])
def test_manifest_columns_never_shadow_the_schema_or_leave_meta(folder, tmp_path, column):
    (folder / "manifest.csv").write_text(f"path,is_attack,attack_type,subject,split,{column}\n"
                                         "bonafide/astronaut.jpg,0,,a,train,v\n")
    out = tmp_path / "x.zarr"
    res = invoke("run", "--dataset", "folder", "--root", folder, "--out", out, "--cluster", "none")
    assert res.exit_code == 1 and f"extra column {column!r}" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1 and not out.exists()


def test_a_rerun_after_the_lists_changed_refuses_and_protocols_mends_it(folder, tmp_path):
    out = tmp_path / "s.zarr"
    folder_run(folder, out)
    assert set(zarr.open_group(str(out))["meta/split"][:].tolist()) == {""}
    manifest(folder, "bonafide/astronaut.jpg,0,,a,train,bright",
             "bonafide/astronaut_room.jpg,0,,b,dev,dim",
             "attack/print/print_on_table.jpg,1,print,p,test,dim",
             extra=",light")
    with pytest.raises(AnnotatorError, match=r"no longer matches its dataset \(3 row\(s\) differ: split of 3 row"):
        folder_run(folder, out)
    res = invoke("protocols", out, "--dataset", "folder", "--root", folder)
    assert res.exit_code == 0, res.output
    assert "meta/split of 3 row(s)" in res.output and "meta/light of 3 row(s)" in res.output
    g = zarr.open_group(str(out))
    split = dict(zip(g["meta/source"][:].tolist(), g["meta/split"][:].tolist()))
    assert split == {"attack/print/print_on_table.jpg": "test", "bonafide/astronaut.jpg": "train",
                     "bonafide/astronaut_room.jpg": "dev"}
    assert dict(zip(g["meta/source"][:].tolist(), g["meta/light"][:].tolist()))["bonafide/astronaut.jpg"] == "bright"
    summary = folder_run(folder, out)  # matches now: nothing to annotate
    assert summary.skipped_shards == summary.n_shards
    assert invoke("verify", out).exit_code == 0


def test_a_rerun_whose_labels_changed_needs_overwrite(folder, tmp_path):
    out = tmp_path / "s.zarr"
    folder_run(folder, out)
    manifest(folder, "bonafide/astronaut.jpg,0,,,",
             "bonafide/astronaut_room.jpg,0,,,",
             "attack/print/print_on_table.jpg,1,replay,,")
    with pytest.raises(AnnotatorError, match="other attack_type of 1 row.*now 'replay'.*--overwrite"):
        folder_run(folder, out)
    res = invoke("protocols", out, "--dataset", "folder", "--root", folder)
    assert res.exit_code == 1 and "--overwrite" in res.output
    run(sync_config(dataset="folder", root=str(folder)), str(out), cluster="none", progress=False, overwrite=True)
    g = zarr.open_group(str(out))
    assert "replay" in g["meta/attack_type"][:].tolist()


def test_a_rerun_after_the_dataset_reordered_its_samples_refuses(folder, tmp_path):
    out = tmp_path / "s.zarr"
    folder_run(folder, out)
    manifest(folder, "attack/print/print_on_table.jpg,1,print,,",
             "bonafide/astronaut.jpg,0,,,",
             "bonafide/astronaut_room.jpg,0,,,")
    with pytest.raises(AnnotatorError, match="other samples, or its samples in another order, at 3 annotated row"):
        folder_run(folder, out)


def test_protocols_on_an_unfinished_store_lets_the_rerun_finish_it(folder, tmp_path):
    out = tmp_path / "s.zarr"
    folder_run(folder, out, shard_size=1)
    (out / "_shards" / "000002.json").unlink()  # the print image's row is pending
    manifest(folder, "bonafide/astronaut.jpg,0,,a,train",
             "bonafide/astronaut_room.jpg,0,,b,dev",
             "attack/print/print_on_table.jpg,1,print,p,test")
    with pytest.raises(AnnotatorError, match="no longer matches its dataset"):
        folder_run(folder, out, shard_size=1)
    assert invoke("protocols", out, "--dataset", "folder", "--root", folder).exit_code == 0
    summary = folder_run(folder, out, shard_size=1)  # not refused again: pending rows take the lists' values
    assert summary.skipped_shards == 2 and summary.annotated == 3
    assert zarr.open_group(str(out))["meta/split"][:].tolist() == ["train", "dev", "test"]
    assert invoke("verify", out).exit_code == 0


def test_a_resume_may_settle_a_conflict_the_store_did_not_have(tmp_path):
    root = oulu_tree(tmp_path / "OULU")
    out = tmp_path / "o.zarr"
    oulu_run(root, out)
    touch(root / "Protocols" / "Protocol_3" / "Test_2.txt", b"-1,1_3_36_2\n+1,1_3_02_1\n")  # 02_1 is also in Train_2
    with pytest.raises(AnnotatorError, match="1_3_02_1"):
        oulu_run(root, out)
    with pytest.raises(AnnotatorError, match="no longer matches its dataset .*Protocol_3_2"):
        oulu_run(root, out, on_conflict="drop")  # drop changes a committed row's code: protocols rewrites it
    oulu_run(root, out, on_conflict="first")  # first keeps its train code: nothing differs, the run resumes


def test_a_zarr_group_that_is_not_a_label_store_is_never_replaced(folder, tmp_path):
    out = tmp_path / "other.zarr"
    g = zarr.open_group(str(out), mode="w", zarr_format=3)
    g.create_array("x", shape=(3,), dtype="int8")[:] = [1, 2, 3]
    with pytest.raises(AnnotatorError, match="is a Zarr group but not a label store"):
        folder_run(folder, out)
    assert zarr.open_group(str(out))["x"][:].tolist() == [1, 2, 3]
