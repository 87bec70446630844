"""`annotate verify` on damaged stores: the exact problem line, exit 1, no traceback; `--repair`
then a rerun gives back the undamaged store, array by array."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from click.testing import CliRunner

from pipelines.cli import cli
from helpers import REPO, assert_same_store, sync_config

SCHEMA_1 = REPO / "tests" / "data" / "schema1.zarr"
ROWS = "shard 1, rows 10-14"  # the sample store: shard 0 = the video's 10 frames, shard 1 = 5 images
CHUNKS = {"image": "c/1/0/0/0", "label": "c/1/0/0/0", "depth": "c/1/0/0", "region": "c/1/0/0",
          "landmarks": "c/1/0/0", "meta/status": "c/1", "meta/sample_id": "c/1"}


def verify_cli(*args):
    r = CliRunner().invoke(cli, ["verify", *map(str, args)])
    assert r.exit_code in (0, 1) and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
    lines = r.output.splitlines()
    return r.exit_code, [l[len("problem: "):] for l in lines if l.startswith("problem: ")], r.output


def rerun(url):
    from pipelines.run import run

    return run(sync_config(dataset="sample", root=""), str(url), cluster="none", progress=False)


@pytest.fixture
def damaged(sample_store, tmp_path):
    url = tmp_path / "d.zarr"
    shutil.copytree(sample_store[0], url)
    return url


DAMAGE = [(n, d) for n in CHUNKS for d in ("deleted", "random bytes")] + [("image", "truncated"),
                                                                          ("meta/status", "truncated")]


@pytest.mark.parametrize("name,damage", DAMAGE)
def test_chunk_damage_is_named_then_repaired_by_a_rerun(sample_store, damaged, name, damage):
    chunk = damaged / name / CHUNKS[name]
    if damage == "deleted":
        chunk.unlink()
        why = "chunk file missing"
    else:
        data = chunk.read_bytes()
        chunk.write_bytes(os.urandom(len(data)) if damage == "random bytes" else data[: len(data) // 2])
        why = "crc32c checksum mismatch (its bytes changed on storage)"
    code, found, _ = verify_cli(damaged)
    assert code == 1 and found == [f"{name} chunk 1 ({ROWS}): {why}"]

    code, found, out = verify_cli(damaged, "--repair")
    assert code == 1 and "reopened 1 shard(s): 1" in out and f"--out {damaged}" in out
    code, found, _ = verify_cli(damaged)
    assert found == ["1 of 2 shards not committed (first: shard 1, rows 10-14); rerun the `annotate run` command "
                     "that made the store to annotate them"]
    summary = rerun(damaged)
    assert summary.skipped_shards == 1  # only the reopened shard was annotated again
    assert verify_cli(damaged)[:2] == (0, [])
    assert_same_store(damaged, sample_store[0])


def test_a_deleted_array_folder_is_one_line_and_repair_recreates_it(sample_store, damaged):
    shutil.rmtree(damaged / "label")
    code, found, _ = verify_cli(damaged)
    assert code == 1 and found == ["missing array 'label'"]  # no follow-on pyramid lines
    code, _, out = verify_cli(damaged, "--repair")
    assert "repaired: recreated label empty" in out and "reopened 2 shard(s): 0, 1" in out
    rerun(damaged)
    assert verify_cli(damaged)[:2] == (0, [])
    assert_same_store(damaged, sample_store[0])


def test_a_node_that_disagrees_with_the_consolidated_copy(damaged):
    meta = damaged / "depth" / "zarr.json"
    node = json.loads(meta.read_text())
    node["shape"][0] = 16
    meta.write_text(json.dumps(node))
    code, found, _ = verify_cli(damaged)
    assert code == 1 and found == ["depth: zarr.json has shape [16, 256, 256], expected [15, 256, 256] "
                                   "(its consolidated copy is right)"]
    code, _, out = verify_cli(damaged, "--repair")
    assert "restored depth/zarr.json from the consolidated copy" in out and "reopened" not in out
    assert verify_cli(damaged)[:2] == (0, [])


def test_a_stale_consolidated_copy_is_rewritten(damaged):
    root = damaged / "zarr.json"
    meta = json.loads(root.read_text())
    meta["consolidated_metadata"]["metadata"]["region"]["dimension_names"] = ["sample", "x", "y"]
    root.write_text(json.dumps(meta))
    assert xr.open_zarr(str(damaged))["region"].dims == ("sample", "x", "y")  # what readers would see
    code, found, _ = verify_cli(damaged)
    assert code == 1 and found == ["region: zarr.json and the consolidated copy in the root zarr.json disagree on "
                                   "dimension_names (['sample', 'y', 'x'] vs ['sample', 'x', 'y'])"]
    verify_cli(damaged, "--repair")
    assert verify_cli(damaged)[:2] == (0, [])
    assert xr.open_zarr(str(damaged))["region"].dims == ("sample", "y", "x")


def test_a_deleted_commit_marker_is_reannotated_by_the_rerun(sample_store, damaged):
    (damaged / "_shards" / "000000.json").unlink()
    code, found, _ = verify_cli(damaged)
    assert code == 1 and found == ["1 of 2 shards not committed (first: shard 0, rows 0-9); rerun the `annotate "
                                   "run` command that made the store to annotate them"]
    assert rerun(damaged).skipped_shards == 1
    assert_same_store(damaged, sample_store[0])


@pytest.mark.parametrize("content", [b"{broken", b""])
def test_a_broken_root_zarr_json_is_one_line_and_not_repairable(damaged, content):
    (damaged / "zarr.json").write_bytes(content)
    code, found, out = verify_cli(damaged)
    assert code == 1 and len(found) == 1 and found[0].startswith("root zarr.json: not valid JSON (")
    assert found[0].endswith("no rerun can mend this: restore the file from a backup, or re-create the store "
                             "with its `annotate run` command plus --overwrite")
    code, _, out = verify_cli(damaged, "--repair")
    assert code == 1 and "no rerun can mend this store" in out and "Traceback" not in out
    r = CliRunner().invoke(cli, ["inspect", str(damaged)])
    assert r.exit_code == 1 and r.output.startswith("Error: root zarr.json: not valid JSON")


def test_values_outside_the_contract_are_named(damaged):
    root = zarr.open_group(str(damaged), mode="r+")
    with zarr.config.set({"array.write_empty_chunks": True}):
        region = root["region"]
        rows = region[10:15]
        rows[0, 0, 0] = 200
        region[10:15] = rows
        rot = root["meta/rotation"]
        rot[12] = 45
    code, found, _ = verify_cli(damaged)
    assert code == 1 and found == [f"region chunk 1 ({ROWS}): region id 200 outside the 11 region names",
                                   f"meta/rotation chunk 1 ({ROWS}): rotation(s) [45], expected one of [0, 90, 180, 270]"]


def test_quick_reads_only_the_label_contract(damaged):
    (damaged / "image" / CHUNKS["image"]).unlink()
    code, found, out = verify_cli(damaged, "--quick")
    assert (code, found) == (0, []) and "ok (quick)" in out
    (damaged / "label" / CHUNKS["label"]).unlink()
    assert verify_cli(damaged, "--quick")[1] == [f"label chunk 1 ({ROWS}): chunk file missing"]


def test_verify_on_a_dask_cluster_finds_the_same(damaged):
    from distributed import Client, LocalCluster

    (damaged / "depth" / CHUNKS["depth"]).unlink()
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as c:
        code, found, _ = verify_cli(damaged, "--scheduler", c.scheduler_address)
    assert code == 1 and found == [f"depth chunk 1 ({ROWS}): chunk file missing"]


def test_a_schema_1_store_still_verifies_and_reads():
    """tests/data/schema1.zarr was written by the annotator before schema 2 (no crc32c, fill-valued
    chunks not written, no channel coordinates)."""
    root = zarr.open_group(str(SCHEMA_1), mode="r")
    assert root.attrs["schema_version"] == 1 and "channel" not in root
    code, found, out = verify_cli(SCHEMA_1)
    assert (code, found) == (0, []), out
    r = CliRunner().invoke(cli, ["inspect", str(SCHEMA_1)])
    assert r.exit_code == 0 and "4 samples, crop 32 px, landmarks mediapipe-478, 2 of 2 shards committed" in r.output


def test_schema_2_stores_carry_crc32c_and_every_chunk(sample_store):
    url = Path(sample_store[0])
    for name in ("image", "label", "depth", "meta/status", "channel"):
        codecs = json.loads((url / name / "zarr.json").read_text())["codecs"]
        assert codecs[-1] == {"name": "crc32c"}, name
    # every row of the sample is a success, so meta/error is all fill value: its chunks exist anyway
    assert sorted(os.listdir(url / "meta" / "error" / "c")) == ["0", "1"]


def test_channel_coordinate_reaches_xarray(sample_store):
    url = sample_store[0]
    ds = xr.open_zarr(url)
    raw = zarr.open_group(url, mode="r")["label"][:]
    assert ds["channel"].values.tolist() == ["attack", "live", "background"]
    assert np.array_equal(ds["label"].sel(channel="live").values, raw[:, 1])
    pyr = xr.open_zarr(url, group="pyramid")
    assert np.array_equal(pyr["32"].sel(channel="background").values, zarr.open_group(url)["pyramid/32"][:, 2])


def test_dask_reads_numeric_and_text_arrays(sample_store):
    import dask.array as da

    url = sample_store[0]
    root = zarr.open_group(url, mode="r")
    images = da.from_zarr(url, component="image")
    assert images.chunks[0] == (10, 5)  # one dask chunk per shard
    assert int(images.sum().compute()) == int(root["image"][:].astype(np.int64).sum())
    assert da.from_zarr(url, component="meta/sample_id").compute().tolist() == root["meta/sample_id"][:].tolist()


def test_inspect_names_a_damaged_column_in_one_line(damaged):
    (damaged / "meta" / "status" / CHUNKS["meta/status"]).write_bytes(b"\x00" * 16)
    r = CliRunner().invoke(cli, ["inspect", str(damaged)])
    lines = [l for l in r.output.splitlines() if l.strip()]
    assert r.exit_code == 1 and len(lines) == 1, r.output
    assert lines[0].startswith("Error: ") and "meta/status cannot be read (crc32c checksum mismatch" in lines[0]


def test_a_node_that_is_not_an_object_is_one_line(damaged):
    (damaged / "landmarks" / "zarr.json").write_text("[1, 2, 3]")
    code, found, _ = verify_cli(damaged)
    assert code == 1 and found == ["landmarks: zarr.json not a JSON object (a list)"]
    verify_cli(damaged, "--repair")  # restored from the consolidated copy
    assert verify_cli(damaged)[:2] == (0, [])
