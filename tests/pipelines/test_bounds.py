"""Absurd values are one-line errors before any work: nothing enumerated, allocated or written."""

import os

import pytest
import torch
from click.testing import CliRunner

from annotator.config import MAX_FRAMES_PER_VIDEO, AnnotateConfig, check_workers, max_workers
from annotator.core.errors import AnnotatorError, SettingError
from annotator.label import Policy
from pipelines.cli import cli as annotate_cli
from fas_train.cli import cli as train_cli
from helpers import sync_config
from pipelines.cluster import local_client, read_slurm_config

CORES = os.cpu_count() or 1


def one_line_error(result, message: str) -> None:
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert result.exit_code != 0, result.output
    assert len(lines) == 1 and lines[0] == f"Error: {message}", result.output


@pytest.fixture
def no_enumeration(monkeypatch):
    """annotate run must refuse before it asks the dataset for a single sample."""
    import pipelines.prepare

    def refuse(*a, **k):
        raise AssertionError("the dataset was enumerated before the settings were checked")

    monkeypatch.setattr(pipelines.prepare, "enumerate_samples", refuse)


@pytest.mark.parametrize("kw, message", [
    ({"frames_per_video": 1_000_000_000}, "frames_per_video must be at most 10000, got 1000000000"),
    ({"frames_per_video": 0}, "frames_per_video must be at least 1, got 0"),
    ({"sampling": "first:20000"}, "sampling takes at most 10000 frames per video, got 'first:20000'; use every:N "
                                  "or all for long videos"),
    ({"size": 65536}, "size must be a multiple of 32 (for the pyramid) in 32..2048, got 65536"),
    ({"size": 2080}, "size must be a multiple of 32 (for the pyramid) in 32..2048, got 2080"),
    ({"size": 100}, "size must be a multiple of 32 (for the pyramid) in 32..2048, got 100"),
    ({"shard_size": 1_000_000_000}, "shard_size must be at most 4096 (a shard is held whole in memory; leave it "
                                    "out to have it chosen), got 1000000000"),
    ({"size": 1024, "shard_size": 257}, "shard_size must be at most 256 for crops of 1024 px (a shard is held whole "
                                        "in memory; leave it out to have it chosen), got 257"),
    ({"shard_size": 0}, "shard_size must be at least 1, got 0"),
])
def test_config_bounds_are_setting_errors_for_library_callers(kw, message):
    with pytest.raises(SettingError) as e:
        sync_config(dataset="sample", root="", **kw).validate()
    assert str(e.value) == message


def test_values_at_the_bounds_pass():
    for kw in ({"frames_per_video": MAX_FRAMES_PER_VIDEO}, {"size": 2048, "shard_size": 64}, {"size": 32},
               {"shard_size": 4096}, {"sampling": "every:1000000"}):
        sync_config(dataset="sample", root="", **kw).validate()
    check_workers(max_workers())
    check_workers(None)
    with pytest.raises(SettingError, match=rf"^workers must be at most {4 * CORES} \(4 x the {CORES} cores here\), "
                                           rf"got {4 * CORES + 1}$"):
        check_workers(4 * CORES + 1)


@pytest.mark.parametrize("args, message", [
    (["--frames-per-video", "1000000000"], "--frames-per-video must be at most 10000, got 1000000000"),
    (["--workers", "1000000000"], f"--workers must be at most {4 * CORES} (4 x the {CORES} cores here), "
                                  "got 1000000000"),
    (["--workers", "0"], "--workers must be at least 1, got 0"),
    (["--size", "65536"], "--size must be a multiple of 32 (for the pyramid) in 32..2048, got 65536"),
    (["--shard-size", "1000000000"], "--shard-size must be at most 4096 (a shard is held whole in memory; leave it "
                                     "out to have it chosen), got 1000000000"),
])
def test_annotate_run_refuses_absurd_values_before_any_work(tmp_path, no_enumeration, args, message):
    out = tmp_path / "x.zarr"
    r = CliRunner().invoke(annotate_cli, ["run", "--dataset", "sample", "--out", str(out), "--cluster", "none", *args])
    one_line_error(r, message)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_local_cluster_refuses_too_many_workers_before_starting():
    with pytest.raises(SettingError, match="^workers must be at most"):
        with local_client(workers=1_000_000_000):
            raise AssertionError("a cluster was started")


@pytest.mark.parametrize("text, message", [
    ("slurm = 3\n", "slurm must be a [slurm] table of settings, got 3; write it as in README's slurm.toml"),
    ('[slurm]\nqueue = "q"\nwalltime = "1:00:00"\ncores = 1\nmemory = "1GB"\njobs = 0\n', "jobs must be in 1..1000, got 0"),
    ('[slurm]\nqueue = "q"\nwalltime = "1:00:00"\ncores = 0\nmemory = "1GB"\njobs = 2\n', "cores must be in 1..1024, got 0"),
    ('[slurm]\nqueue = "q"\nwalltime = "1:00:00"\ncores = 1\nmemory = "1GB"\njobs = true\n', "jobs must be a whole number, got True"),
])
def test_cluster_configs_with_absurd_values_are_refused(tmp_path, no_enumeration, text, message):
    conf = tmp_path / "slurm.toml"
    conf.write_text(text)
    with pytest.raises(SettingError) as e:
        read_slurm_config(str(conf))
    assert str(e.value) == f"cluster_config {conf}: {message}"
    out = tmp_path / "x.zarr"
    r = CliRunner().invoke(annotate_cli, ["run", "--dataset", "sample", "--out", str(out), "--cluster", "slurm",
                                          "--cluster-config", str(conf)])
    one_line_error(r, f"--cluster-config {conf}: {message}")
    assert not out.exists()


def test_policies_that_are_not_tables_are_refused(tmp_path, no_enumeration):
    bad = tmp_path / "p.toml"
    bad.write_text("types = 7\n")
    with pytest.raises(AnnotatorError) as e:
        Policy.load(bad)
    assert str(e.value) == (f"policy file {bad}: types must be tables [types.<name>] with attack and live lists, "
                            "got types = 7; see annotator/label/policy.toml")
    with pytest.raises(AnnotatorError, match=r"^policy: expected a \[types.<name>\] table per attack type, got types = 7$"):
        Policy.from_table({"types": 7})
    with pytest.raises(AnnotatorError, match=r"^policy \[types.print\]: attack must be a list of region names such "
                                             r"as \[\"skin\"\], got 'face'$"):
        Policy.from_table({"types": {"print": {"attack": "face", "live": []}}})
    with pytest.raises(AnnotatorError, match="outside_depth must be a number in"):
        Policy.from_table({"types": {"print": {"attack": [], "live": []}}, "outside_depth": True})
    out = tmp_path / "x.zarr"
    r = CliRunner().invoke(annotate_cli, ["run", "--dataset", "sample", "--out", str(out), "--policy", str(bad)])
    one_line_error(r, str(e.value))
    assert not out.exists()


def test_augment_refuses_absurd_values_before_reading_the_store(tmp_path):
    out = tmp_path / "aug.zarr"
    for args, message in ((["--rho", "1000000"], "--rho must be at most 5, the exchangeable regions (eyes, brows, "
                                                 "nose, mouth, skin), got 1000000"),
                          (["--copies", "1000000"], "--copies must be at most 1000, got 1000000"),
                          (["--gamma", "nan"], "--gamma must be in [0, 1], got nan")):
        r = CliRunner().invoke(annotate_cli, ["augment", str(tmp_path / "missing.zarr"), "--out", str(out), *args])
        one_line_error(r, message)
    assert list(tmp_path.iterdir()) == []
    from annotator.augment import mcrea

    batch = {"image": torch.zeros(2, 32, 32, 3, dtype=torch.uint8), "label": torch.zeros(2, 3, 32, 32, dtype=torch.uint8),
             "depth": torch.zeros(2, 32, 32, dtype=torch.uint8), "region": torch.zeros(2, 32, 32, dtype=torch.uint8),
             "landmarks": torch.zeros(2, 478, 3)}
    with pytest.raises(ValueError, match="^--rho must be at most 5"):
        mcrea(batch, 0.5, 6)
    mcrea(batch, 0.5, 5)  # the largest meaningful value runs


@pytest.mark.parametrize("args, message", [
    (["--width", "0"], "--width must be a finite number in (0, 4] (1 = the paper's channels), got 0.0"),
    (["--width", "-1"], "--width must be a finite number in (0, 4] (1 = the paper's channels), got -1.0"),
    (["--width", "nan"], "--width must be a finite number in (0, 4] (1 = the paper's channels), got nan"),
    (["--width", "inf"], "--width must be a finite number in (0, 4] (1 = the paper's channels), got inf"),
    (["--width", "4.5"], "--width must be a finite number in (0, 4] (1 = the paper's channels), got 4.5"),
    (["--lr-step", "0"], "--lr-step must be at least 1 (epochs between learning-rate halvings), got 0"),
    (["--batch", "1000000000"], "--batch must be at most 4096, got 1000000000"),
    (["--batch", "0"], "--batch must be at least 1, got 0"),
])
def test_fas_train_refuses_absurd_values_before_opening_a_store(tmp_path, args, message):
    out = tmp_path / "run"
    # the store does not exist: a check that came after opening it would say so instead
    r = CliRunner().invoke(train_cli, ["train", "--store", str(tmp_path / "none.zarr"), "--model", "cdcn",
                                       "--out", str(out), *args])
    one_line_error(r, message)
    assert not out.exists()


def test_fas_train_grid_and_infer_bound_their_batch_and_width(tmp_path):
    r = CliRunner().invoke(train_cli, ["grid", "--store", str(tmp_path / "none.zarr"), "--model", "cdcn",
                                       "--param", "lr=0.1", "--batch", "1000000000", "--out", str(tmp_path / "g")])
    one_line_error(r, "--batch must be at most 4096, got 1000000000")
    r = CliRunner().invoke(train_cli, ["grid", "--store", str(tmp_path / "none.zarr"), "--model", "cdcn",
                                       "--param", "lr=0.1", "--width", "0", "--out", str(tmp_path / "g")])
    one_line_error(r, "--width must be a finite number in (0, 4] (1 = the paper's channels), got 0.0")
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (64, 64)).save(image)
    r = CliRunner().invoke(train_cli, ["infer", "--run", str(tmp_path / "norun"), str(image), "--batch", "1000000000"])
    one_line_error(r, "--batch must be at most 4096, got 1000000000")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_models_check_their_width_for_library_callers():
    from fas_train.models import create

    for width in (0, -1, float("nan"), float("inf"), 5):
        with pytest.raises(SettingError, match=r"^width must be a finite number in \(0, 4\]"):
            create("cdcn", width=width)
    assert create("cdcn", width=0.1) is not None  # `fas-train models` builds them this small


def test_help_states_the_bounds():
    run_help = CliRunner().invoke(annotate_cli, ["run", "--help"]).output
    for text in ("(1..10000)", "32..2048", "at most 4096", "at most 4 per core", "jobs (1..1000)"):
        assert text in " ".join(run_help.split()), text
    augment_help = " ".join(CliRunner().invoke(annotate_cli, ["augment", "--help"]).output.split())
    assert "0..5" in augment_help and "(1..1000)" in augment_help and "in [0, 1]" in augment_help
    export_help = " ".join(CliRunner().invoke(annotate_cli, ["export", "--help"]).output.split())
    assert "at most 4 per core" in export_help
    train_help = " ".join(CliRunner().invoke(train_cli, ["train", "--help"]).output.split())
    for text in ("(1..4096)", "(0, 4]", "(at least 1)", "(0..5)"):
        assert text in train_help, text


def test_annotate_config_keeps_its_defaults_valid():
    AnnotateConfig(dataset="sample", root="", policy=Policy.default().table).validate()
