"""fas-train grid: every setting x seed, resumable, aggregated to mean +- std; and OCIM stores."""

import csv
import json
import math
import shutil

import pytest
from click.testing import CliRunner
from synthetic import make_store

from fas_train.cli import cli, leave_one_out
from fas_train.grid import aggregate, parse_param, settings

BASE = ["--protocol", "all", "--model", "dccdn3", "--epochs", "1", "--batch", "8", "--size", "32", "--width", "0.1",
        "--workers", "0", "--no-augment", "--device", "cpu"]


def test_grid_runs_resumes_and_aggregates_like_a_hand_computation(tmp_path):
    store = make_store(str(tmp_path / "s.zarr"), n=24)
    out = tmp_path / "grid"
    args = ["grid", "--store", store, *BASE, "--param", "alpha=0.5,1.0", "--param", "beta=1.0", "--seeds", "2",
            "--out", str(out)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    runs = sorted(out.glob("*/seed*/eval/metrics.json"))
    assert [p.parent.parent.relative_to(out).as_posix() for p in runs] == [
        "alpha=0.5,beta=1.0/seed0", "alpha=0.5,beta=1.0/seed1", "alpha=1.0,beta=1.0/seed0", "alpha=1.0,beta=1.0/seed1"]
    assert json.loads((out / "alpha=1.0,beta=1.0" / "seed1" / "config.json").read_text())["seed"] == 1
    table = {row["setting"]: row for row in csv.DictReader(open(out / "grid.csv"))}
    for setting in ("alpha=0.5,beta=1.0", "alpha=1.0,beta=1.0"):
        hters = [json.loads((out / setting / f"seed{k}" / "eval" / "metrics.json").read_text())["frame"]["hter"]
                 for k in (0, 1)]
        mean = sum(hters) / 2
        std = math.sqrt(sum((h - mean) ** 2 for h in hters) / 1)
        assert float(table[setting]["hter_mean"]) == pytest.approx(mean, abs=1e-6)
        assert float(table[setting]["hter_std"]) == pytest.approx(std, abs=1e-6)
    best = min(table.values(), key=lambda row: float(row["hter_mean"]))
    assert [row["best"] for row in table.values()].count("1") == 1 and best["best"] == "1"
    assert "(best)" in (out / "grid.md").read_text()
    # resume: only the deleted run is done again
    kept = out / "alpha=0.5,beta=1.0" / "seed0" / "eval" / "metrics.json"
    stamp = kept.stat().st_mtime_ns
    shutil.rmtree(out / "alpha=1.0,beta=1.0" / "seed1")
    before = (out / "grid.csv").read_text()
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert kept.stat().st_mtime_ns == stamp and (out / "alpha=1.0,beta=1.0" / "seed1" / "eval" / "metrics.json").exists()
    assert (out / "grid.csv").read_text() == before  # same seeds, same runs, same table


def test_a_failed_run_is_a_row_and_the_grid_goes_on(tmp_path):
    store = make_store(str(tmp_path / "s.zarr"), n=24)
    out = tmp_path / "g"
    r = CliRunner().invoke(cli, ["grid", "--store", store, *BASE, "--param", "lr=0.002,-1", "--seeds", "1",
                                 "--out", str(out)])
    assert r.exit_code == 0 and "1 run(s) failed" in r.output
    table = {row["setting"]: row for row in csv.DictReader(open(out / "grid.csv"))}
    assert table["lr=0.002"]["runs"] == "1" and table["lr=-1"]["failed"] == "1" and table["lr=-1"]["hter_mean"] == ""
    assert "lr must be positive" in (out / "grid.md").read_text()


def test_grid_helpers():
    assert parse_param("w_con=0.2,0.5,1") == ("w_con", [0.2, 0.5, 1])
    assert parse_param("scheme=integrated,overlay") == ("scheme", ["integrated", "overlay"])
    with pytest.raises(ValueError, match="NAME=V1,V2"):
        parse_param("w_con")
    assert settings({"a": [1, 2], "b": [3]}) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]
    rows = aggregate([({"a": 1}, 0, {"hter": 0.2, "acer": 0, "eer": 0, "auc": 1}),
                      ({"a": 1}, 1, {"hter": 0.4, "acer": 0, "eer": 0, "auc": 1}),
                      ({"a": 2}, 0, {"error": "boom"})])
    assert rows[0]["hter"] == (pytest.approx(0.3), pytest.approx(math.sqrt(0.02))) and rows[0]["best"]
    assert rows[1]["failed"] == 1 and rows[1]["hter"] is None and not rows[1]["best"]


def test_ocim_expands_to_leave_one_dataset_out():
    train, test, protocol = leave_one_out("ocim:M", "O=o.zarr,C=c.zarr,I=i.zarr,M=m.zarr")
    assert (train, test, protocol) == (["o.zarr", "c.zarr", "i.zarr"], ["m.zarr"], "split")
    r = CliRunner().invoke(cli, ["train", "--protocol", "ocim:X", "--stores", "O=o.zarr,M=m.zarr", "--model", "cdcn",
                                 "--out", "x"])
    assert r.exit_code != 0 and "'X' is not one of the --stores names (O, M)" in r.output
    r = CliRunner().invoke(cli, ["train", "--protocol", "ocim:M", "--store", "a.zarr", "--stores", "M=m.zarr",
                                 "--model", "cdcn", "--out", "x"])
    assert r.exit_code != 0 and "takes its stores from --stores" in r.output


def test_the_grid_runs_as_dask_tasks_with_the_same_table(tmp_path):
    from distributed import LocalCluster

    store = make_store(str(tmp_path / "s.zarr"), n=24)
    args = [*BASE, "--param", "alpha=0.5,1.0", "--seeds", "1"]
    local = CliRunner().invoke(cli, ["grid", "--store", store, *args, "--out", str(tmp_path / "a")])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        remote = CliRunner().invoke(cli, ["grid", "--store", store, *args, "--scheduler", c.scheduler_address,
                                          "--out", str(tmp_path / "b")])
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    assert (tmp_path / "a" / "grid.csv").read_text() == (tmp_path / "b" / "grid.csv").read_text()
