"""Reports tell the truth: failures per source file, pending rows of uncommitted shards, and
`inspect --failures` listing every failed row."""

import json
import shutil

import numpy as np
import zarr

from helpers import invoke


def run_messy(root, out):
    (root / "attack" / "print" / "g_garbage.mp4").write_bytes(b"no container in here at all")
    return invoke("run", "--dataset", "folder", "--root", root, "--out", out, "--frames-per-video", 3,
                  "--cluster", "none", "--max-failure-rate", "1")


def failed_by_meta(out):
    root = zarr.open_group(str(out), mode="r")
    m = {c: root[f"meta/{c}"][:] for c in ("source", "frame_index", "status", "error")}
    bad = np.nonzero(m["status"] != 0)[0]
    return m, bad


def test_failures_are_summarised_per_source_file(messy_root, tmp_path):
    out = tmp_path / "m.zarr"
    r = run_messy(messy_root, out)
    assert r.exit_code == 0, r.output
    m, bad = failed_by_meta(out)
    files, failed_files = set(m["source"].tolist()), set(m["source"][bad].tolist())
    n, k = len(m["status"]), len(bad)
    assert "attack/print/g_garbage.mp4" in failed_files and len(files) == 7 and n == 11
    line = (f"failed: {len(failed_files)} of 7 source files ({100 * len(failed_files) / 7:.1f} %), "
            f"{k} of {n} frames ({100 * k / n:.1f} %)")
    assert line in r.output.splitlines(), r.output
    # the unopenable video is one line with its frame count, not three
    garbage = [l for l in r.output.splitlines() if "g_garbage.mp4" in l]
    assert len(garbage) == 1 and garbage[0].startswith("  attack/print/g_garbage.mp4: 3 frames, unreadable: ")
    insp = invoke("inspect", out)
    assert insp.exit_code == 0 and line in insp.output.splitlines()


def test_inspect_failures_lists_every_failed_row(messy_root, tmp_path):
    out = tmp_path / "m.zarr"
    run_messy(messy_root, out)
    m, bad = failed_by_meta(out)
    r = invoke("inspect", out, "--failures", "--json")
    assert r.exit_code == 0
    rows = json.loads(r.output)
    assert [(x["source"], x["frame"], x["error"]) for x in rows] == [
        (m["source"][i], int(m["frame_index"][i]), m["error"][i]) for i in bad]
    text = invoke("inspect", out, "--failures")
    assert len(text.output.splitlines()) == len(bad)
    assert text.output.splitlines()[0].split("\t")[0] == m["source"][bad[0]]


def test_rows_of_uncommitted_shards_are_pending(sample_store, tmp_path):
    url = tmp_path / "p.zarr"
    shutil.copytree(sample_store[0], url)
    (url / "_shards" / "000001.json").unlink()  # shard 1: the five images
    r = invoke("inspect", url)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].endswith("1 of 2 shards committed (5 rows pending)")
    assert "status: ok 10, pending 5" in lines
    assert "attack_type: bonafide 10" in lines  # only the video's committed frames are counted
