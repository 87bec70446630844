"""Faults that must never pass for success: training on unfinished rows, chunks or markers that are
folders or empty files, a full disk during a marker write or a store's creation, a run summary whose
counts disagree. Each case is reproduced on storage, then the fix is checked by values read back."""

import errno
import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from annotator import store
from annotator.store import group  # where the store is built: a fault is injected there
from annotator.core.errors import AnnotatorError
from pipelines.cli import cli
from helpers import SAMPLE as REPO_SAMPLE
from helpers import assert_same_store, problems, sync_config
from pipelines.run import run


def sample_cfg(**kw):
    return sync_config(dataset="sample", root="", **kw)


@pytest.fixture
def copy(sample_store, tmp_path):
    url = tmp_path / "c.zarr"
    shutil.copytree(sample_store[0], url)
    return url


def verify_cli(*args):
    r = CliRunner().invoke(cli, ["verify", *map(str, args)])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    return r.exit_code, [l[len("problem: "):] for l in r.output.splitlines() if l.startswith("problem: ")], r.output


# ------------------------------------------------------------------ verify sees folders and empty files


@pytest.mark.parametrize("name", ["image", "depth", "region", "meta/status", "meta/attack_type", "meta/is_attack"])
def test_a_chunk_replaced_by_a_folder_is_damage_that_repair_and_a_rerun_mend(sample_store, copy, name):
    chunk = copy / name / ("c/1/0/0/0" if name == "image" else "c/1/0/0" if name in ("depth", "region") else "c/1")
    chunk.unlink()
    chunk.mkdir()
    code, found, _ = verify_cli(copy)
    assert code == 1 and found == [f"{name} chunk 1 (shard 1, rows 10-14): chunk is a directory, not a file"]
    code, _, out = verify_cli(copy, "--repair")
    assert f"removed {name}/" in out and "reopened 1 shard(s): 1" in out
    assert run(sample_cfg(), str(copy), cluster="none", progress=False).skipped_shards == 1
    assert_same_store(sample_store[0], copy)


@pytest.mark.parametrize("damage", ["folder", "empty"])
def test_a_commit_marker_that_is_a_folder_or_empty_is_not_a_commit(sample_store, copy, damage):
    marker = copy / "_shards" / "000001.json"
    marker.unlink()
    marker.mkdir() if damage == "folder" else marker.write_bytes(b"")
    assert store.committed_ids(str(copy)) == {0}
    assert any(p.startswith("commit marker _shards/000001.json:") for p in problems(str(copy)))
    summary = run(sample_cfg(), str(copy), cluster="none", progress=False)  # no repair needed first
    assert summary.skipped_shards == 1 and summary.annotated == 15
    assert marker.is_file() and json.loads(marker.read_text())["id"] == 1
    assert_same_store(sample_store[0], copy)


@pytest.mark.parametrize("damage", ["folder", "empty"])
def test_an_unreadable_failure_record_is_reported_repaired_and_never_crashes_a_rerun(copy, damage):
    record = copy / "_failed" / "000001.json"
    record.parent.mkdir()
    record.mkdir() if damage == "folder" else record.write_bytes(b"")
    assert store.failed(str(copy)) == {1: "(its failure record is unreadable)"}
    code, found, _ = verify_cli(copy)
    assert code == 1 and found == ["failure record _failed/000001.json: unreadable (empty, a folder or not JSON)"]
    code, _, out = verify_cli(copy, "--repair")
    assert "removed _failed/000001.json" in out and not record.exists()
    assert verify_cli(copy)[:2] == (0, [])


def test_an_empty_failure_record_left_by_a_full_disk_is_retried_by_resume_failed(sample_store, copy):
    (copy / "_shards" / "000001.json").unlink()
    (copy / "_failed").mkdir()
    (copy / "_failed" / "000001.json").write_bytes(b"")  # what a full disk left before markers were atomic
    assert store.failed(str(copy)) == {1: "(its failure record is unreadable)"}
    summary = run(sample_cfg(), str(copy), cluster="none", progress=False, resume_failed=True)
    assert summary.skipped_shards == 1 and summary.failed_shards == [] and store.failed(str(copy)) == {}
    assert_same_store(sample_store[0], copy)


@pytest.mark.parametrize("damage", ["folder", "empty"])
def test_a_lock_that_is_a_folder_or_empty_neither_blocks_nor_survives(sample_store, copy, damage):
    lock = copy / store.LOCK_FILE
    lock.mkdir() if damage == "folder" else lock.write_bytes(b"")
    assert verify_cli(copy)[1] == [f"{store.LOCK_FILE}: unreadable (empty, a folder or not JSON)"]
    (copy / "_shards" / "000001.json").unlink()
    assert run(sample_cfg(), str(copy), cluster="none", progress=False).skipped_shards == 1
    assert not lock.exists()
    assert_same_store(sample_store[0], copy)


@pytest.mark.parametrize("attr,value", [("region_names", ["background", "skin"]),
                                        ("status_codes", {"ok": 0, "no_face": 1}),
                                        ("label_channels", ["live", "attack", "background"])])
def test_root_attributes_the_contract_fixes_cannot_change_unnoticed(copy, attr, value):
    root = json.loads((copy / "zarr.json").read_text())
    root["attributes"][attr] = value
    (copy / "zarr.json").write_text(json.dumps(root))
    found = problems(str(copy), "metadata")
    assert len(found) == 1 and found[0].startswith(f"root zarr.json: attribute {attr!r} is {value!r}, the contract")


# ------------------------------------------------------------------ a full disk


def test_a_marker_write_on_a_full_disk_leaves_nothing_under_the_marker_name(copy, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        store.mark_failed(str(copy), 1, "boom")
    assert sorted(p.name for p in (copy / "_failed").iterdir()) == []  # no 0-byte record, no temporary file
    monkeypatch.undo()
    store.mark_failed(str(copy), 1, "boom")
    assert store.failed(str(copy)) == {1: "boom"}


def test_a_store_whose_creation_stops_leaves_nothing_on_disk_and_a_rerun_creates_it(sample_store, tmp_path,
                                                                                     monkeypatch):
    out = tmp_path / "new.zarr"
    real = group.write_channel_coordinates

    def full(root):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(group, "write_channel_coordinates", full)
    with pytest.raises(OSError):
        run(sample_cfg(), str(out), cluster="none", progress=False)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    monkeypatch.setattr(group, "write_channel_coordinates", real)
    run(sample_cfg(), str(out), cluster="none", progress=False)
    assert_same_store(sample_store[0], out)


def test_an_unfinished_store_on_an_object_store_is_named_and_recreated_by_the_rerun(monkeypatch):
    import fsspec

    url = "memory://faults/unfinished.zarr"
    fsspec.filesystem("memory").rm("/faults", recursive=True) if fsspec.filesystem("memory").exists("/faults") else None
    real = group.write_channel_coordinates
    monkeypatch.setattr(group, "write_channel_coordinates", lambda root: (_ for _ in ()).throw(OSError("full")))
    with pytest.raises(OSError):
        run(sample_cfg(limit=3), url, cluster="none", progress=False)
    with pytest.raises(AnnotatorError, match="unfinished store .* rerun its `annotate run` command"):
        store.open_store(url)
    monkeypatch.setattr(group, "write_channel_coordinates", real)
    summary = run(sample_cfg(limit=3), url, cluster="none", progress=False)
    assert any("unfinished store" in n for n in summary.notes) and summary.annotated == 3
    assert store.open_store(url).attrs["schema_version"] == store.SCHEMA_VERSION


# ------------------------------------------------------------------ one count per row


def test_the_run_summary_counts_each_row_once(sample_store, tmp_path, monkeypatch):
    import pipelines.tasks as tasks

    real = tasks.write_shard

    def broken(u, shard, *a, **kw):
        if shard.id == 1:
            raise OSError("disk gone")
        return real(u, shard, *a, **kw)

    monkeypatch.setattr(tasks, "write_shard", broken)
    out = str(tmp_path / "f.zarr")
    summary = run(sample_cfg(), out, cluster="none", progress=False, retries=0)
    text = summary.report()
    assert "15 samples in 2 shards (0 already committed); 10 annotated, 0 failed, 5 not written" in text
    assert "failed: 5 of 6 source files (83.3 %), 5 of 15 frames (33.3 %)" in text
    assert summary.failure_rate == pytest.approx(5 / 15)
    inspect = CliRunner().invoke(cli, ["inspect", out]).output
    assert "status: ok 10, pending 5" in inspect


def test_annotate_run_exits_1_when_a_shard_is_left_unwritten(tmp_path, monkeypatch):
    import pipelines.tasks as tasks

    real = tasks.write_shard
    monkeypatch.setattr(tasks, "write_shard",
                        lambda u, shard, *a, **kw: (_ for _ in ()).throw(OSError("x")) if shard.id == 1
                        else real(u, shard, *a, **kw))
    out = tmp_path / "f.zarr"
    r = CliRunner().invoke(cli, ["run", "--dataset", "sample", "--out", str(out), "--cluster", "none",
                                 "--retries", "0", "--max-failure-rate", "1"])
    assert r.exit_code == 1 and "is unfinished (5 of 15 rows not written)" in r.output
    assert np.array_equal(sorted(store.committed_ids(str(out))), [0])


# ------------------------------------------------------------------ names that are not UTF-8


def test_a_file_name_that_is_not_utf8_is_annotated_and_maps_back_to_its_file(tmp_path):
    from annotator.core import names
    from annotator.core.names import on_disk

    root = tmp_path / "F"
    (root / "bonafide").mkdir(parents=True)
    odd = os.fsdecode(b"caf\xe9.jpg")
    shutil.copy(REPO_SAMPLE / "bonafide" / "astronaut.jpg", root / "bonafide" / odd)
    shutil.copy(REPO_SAMPLE / "bonafide" / "astronaut_room.jpg", root / "bonafide" / "ok.jpg")
    res = CliRunner().invoke(cli, ["check-dataset", "--dataset", "folder", "--root", str(root)])
    assert res.exit_code == 0 and "1 file name(s) are not UTF-8 (bonafide/caf\\xe9.jpg)" in res.output
    out = tmp_path / "u.zarr"
    cfg = sync_config(dataset="folder", root=str(root))
    summary = run(cfg, str(out), cluster="none", progress=False)
    assert summary.annotated == 2 and summary.failed_shards == []
    import zarr

    g = zarr.open_group(str(out))
    assert g["meta/source"][:].tolist() == ["bonafide/caf\\xe9.jpg", "bonafide/ok.jpg"]
    assert g["meta/status"][:].tolist() == [0, 0]
    assert (root / on_disk(g["meta/source"][0])).is_file() and on_disk("bonafide/ok.jpg") == "bonafide/ok.jpg"
    assert names.storable(odd) == "caf\\xe9.jpg" and names.on_disk("caf\\xe9.jpg") == odd
    assert run(cfg, str(out), cluster="none", progress=False).skipped_shards == summary.n_shards  # resumes
    assert problems(str(out)) == []
    res = CliRunner().invoke(cli, ["protocols", str(out), "--dataset", "folder", "--root", str(root)])
    assert res.exit_code == 0 and "2 of 2 rows matched" in res.output


def test_verify_of_a_newer_schema_says_upgrade_never_overwrite(copy):
    root = json.loads((copy / "zarr.json").read_text())
    root["attributes"]["schema_version"] = 9
    (copy / "zarr.json").write_text(json.dumps(root))
    code, found, _ = verify_cli(copy)
    assert code == 1 and found == ["root zarr.json: schema_version 9, expected one of [1, 2]; it was written by a "
                                   "newer release: upgrade fas-annotator to read and verify it (do not --overwrite "
                                   "it, which would destroy it)"]
    with pytest.raises(AnnotatorError, match="newer release: upgrade fas-annotator"):
        store.open_store(str(copy))


def test_a_stale_failure_record_of_a_committed_shard_is_cleared(sample_store, copy):
    store.mark_failed(str(copy), 1, "the client died after the worker committed")
    summary = run(sample_cfg(), str(copy), cluster="none", progress=False, resume_failed=True)
    assert summary.failed_shards == [] and summary.unwritten == [] and store.failed(str(copy)) == {}
    assert summary.annotated == 15
