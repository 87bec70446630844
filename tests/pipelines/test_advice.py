"""Advice that names what was meant: the closest registered name, and each input scored once."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from annotator.datasets import DATASETS
from annotator.core.errors import AnnotatorError
from annotator.core.registry import Registry
from pipelines.cli import cli as annotate_cli
from fas_train.cli import cli as train_cli
from fas_train.infer import media_inputs
from fas_train.models import MODELS


@pytest.mark.parametrize("registry, typed, meant", [
    (DATASETS, "replay_attack", "replay-attack"), (DATASETS, "OULU_NPU", "oulu-npu"), (DATASETS, "wmca9", "wmca"),
    (MODELS, "dccnd3", "dccdn3"), (MODELS, "cdnc", "cdcn"),
])
def test_an_unknown_name_suggests_the_closest(registry, typed, meant):
    with pytest.raises(AnnotatorError) as e:
        registry.get(typed)
    assert str(e.value) == (f"unknown {registry.kind} {typed!r}; choose one of: {', '.join(registry.names())}; "
                            f"did you mean {meant!r}?")


def test_a_name_like_none_of_them_gets_the_list_alone():
    reg = Registry("thing")
    for name in ("alpha", "beta"):
        reg.register(name)(object)
    with pytest.raises(AnnotatorError) as e:
        reg.get("zzz")
    assert str(e.value) == "unknown thing 'zzz'; choose one of: alpha, beta"


def test_the_commands_show_the_suggestion_in_one_line(tmp_path):
    r = CliRunner().invoke(annotate_cli, ["run", "--dataset", "replay_attack", "--root", str(tmp_path),
                                          "--out", str(tmp_path / "x.zarr")])
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert r.exit_code == 1 and len(lines) == 1 and lines[0].endswith("; did you mean 'replay-attack'?"), r.output
    r = CliRunner().invoke(train_cli, ["train", "--store", str(tmp_path / "s.zarr"), "--model", "dccnd3",
                                       "--out", str(tmp_path / "run")])
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert r.exit_code == 1 and len(lines) == 1 and lines[0].endswith("; did you mean 'dccdn3'?"), r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.fixture
def media(tmp_path):
    """dir/ with a.png and b.png (blank walls: no face), and a link to a.png beside dir/."""
    folder = tmp_path / "dir"
    folder.mkdir()
    for name, grey in (("a.png", 100), ("b.png", 150)):
        Image.fromarray(np.full((120, 120, 3), grey, np.uint8)).save(folder / name)
    os.symlink(folder / "a.png", tmp_path / "link.png")
    return tmp_path


def test_inputs_naming_one_file_twice_are_kept_once_in_first_seen_order(media, monkeypatch):
    a, b, folder = media / "dir" / "a.png", media / "dir" / "b.png", media / "dir"
    assert media_inputs([str(a), str(folder)]) == [a, b]
    assert media_inputs([str(b), str(media / "link.png"), str(folder), str(a)]) == [b, media / "link.png"]
    monkeypatch.chdir(media)
    assert media_inputs(["dir/a.png", "./dir/a.png", "dir"]) == [a.relative_to(media), b.relative_to(media)]


def test_infer_prints_one_line_per_unique_input(sample_store, media, tmp_path):
    from fas_train.config import TrainConfig
    from fas_train.train import train

    url, _ = sample_store
    run = tmp_path / "run"
    train(TrainConfig(model="cdcn", train=[url], protocol="all", epochs=1, batch=8, size=64, width=0.25, workers=0,
                      augment=False), str(run), device="cpu", progress=False)
    a, folder = media / "dir" / "a.png", media / "dir"
    r = CliRunner().invoke(train_cli, ["infer", "--run", str(run), "--threshold", "0.5", str(a), str(folder),
                                       str(media / "link.png")])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert [x["input"] for x in lines] == [str(a), str(folder / "b.png")]
    assert all(x["status"] == "no_face" for x in lines)
