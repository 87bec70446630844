"""No command destroys what it did not write; output places are checked before any work; a local
file:// URL behaves like its path."""

import hashlib
import shutil

import numpy as np
import pytest
import zarr

from helpers import read_only, sync_config
from helpers import assert_one_line_error, invoke


def tree_digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def dataset(tmp_path, sample_root):
    root = tmp_path / "data"
    shutil.copytree(sample_root, root)
    return root


def test_overwrite_refuses_a_folder_that_is_not_a_label_store(tmp_path):
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("years of work")
    before = tree_digest(tmp_path)
    res = invoke("run", "--dataset", "sample", "--out", other, "--overwrite", "--cluster", "none")
    assert_one_line_error(res, "is not a label store", "remove it by hand")
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize("out", [".", "labels.zarr", "bonafide/labels.zarr"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_out_may_not_be_or_lie_inside_the_dataset_root(dataset, out, overwrite):
    before = tree_digest(dataset)
    res = invoke("run", "--dataset", "folder", "--root", dataset, "--out", dataset / out, "--cluster", "none",
                 *(["--overwrite"] if overwrite else []))
    assert_one_line_error(res, "the dataset root")
    assert tree_digest(dataset) == before


def test_out_may_not_contain_the_dataset_root(dataset):
    res = invoke("run", "--dataset", "folder", "--root", dataset, "--out", dataset.parent, "--cluster", "none")
    assert_one_line_error(res, "contains the dataset root")


@pytest.mark.parametrize("overwrite", [False, True])
def test_augment_never_writes_over_its_input(sample_store, tmp_path, overwrite):
    src = tmp_path / "in.zarr"
    shutil.copytree(sample_store[0], src)
    before = tree_digest(src)
    res = invoke("augment", src, "--out", src, *(["--overwrite"] if overwrite else []))
    assert_one_line_error(res, "is the input store")
    res = invoke("augment", src, "--out", src / "inner.zarr")
    assert_one_line_error(res, "the input store")
    assert tree_digest(src) == before


def test_augment_refuses_an_input_that_fails_verify(sample_store, tmp_path):
    src = tmp_path / "in.zarr"
    shutil.copytree(sample_store[0], src)
    shutil.rmtree(src / "_shards")
    res = invoke("augment", src, "--out", tmp_path / "aug.zarr")
    assert_one_line_error(res, "fails `annotate verify --quick`", "not committed")
    assert not (tmp_path / "aug.zarr").exists()


def test_missing_output_folders_are_one_line_errors(sample_store, tmp_path):
    res = invoke("preview", sample_store[0], "--out", tmp_path / "no" / "such" / "sheet.png")
    assert_one_line_error(res, "does not exist")
    (tmp_path / "file").write_text("x")
    res = invoke("run", "--dataset", "sample", "--out", tmp_path / "file" / "s.zarr", "--cluster", "none")
    assert_one_line_error(res, "is a file, not a folder")


def test_file_url_writes_the_same_store_as_the_path(sample_store, tmp_path):
    from pipelines.run import run

    url = (tmp_path / "via_url.zarr").as_uri()
    assert url.startswith("file://")
    run(sync_config(dataset="sample", root=""), url, cluster="none", progress=False)
    a, b = zarr.open_group(sample_store[0], mode="r"), zarr.open_group(str(tmp_path / "via_url.zarr"), mode="r")
    for name in ("image", "label", "depth", "region", "pyramid/8", "meta/sample_id", "meta/status"):
        assert np.array_equal(a[name][:], b[name][:]), name
    assert invoke("verify", url).exit_code == 0
    assert "15 samples" in invoke("inspect", url).output


def test_read_only_places_are_one_line_errors(sample_store, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    store_copy = locked / "s.zarr"
    shutil.copytree(sample_store[0], store_copy)
    (store_copy / "image" / "c" / "1" / "0" / "0" / "0").unlink()  # something for --repair to do
    before = tree_digest(tmp_path)
    with read_only(locked, store_copy):
        assert_one_line_error(invoke("run", "--dataset", "sample", "--out", locked / "new.zarr", "--cluster", "none"),
                              "cannot write in", "choose a writable place")
        assert_one_line_error(invoke("run", "--dataset", "sample", "--out", store_copy, "--cluster", "none"),
                              "cannot write in", str(store_copy))
        assert_one_line_error(invoke("augment", sample_store[0], "--out", locked / "aug.zarr"), "cannot write in")
        assert_one_line_error(invoke("preview", sample_store[0], "--out", locked / "p.png"), "cannot write in")
        r = invoke("verify", store_copy, "--repair")
        assert r.exit_code == 1 and "Traceback" not in r.output
        assert r.output.splitlines()[-1].startswith("Error: --repair: the store")
    assert tree_digest(tmp_path) == before
