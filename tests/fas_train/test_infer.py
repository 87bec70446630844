"""`fas-train infer` crops like the store and scores like `fas-train eval`."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fas_train.cli import cli
from fas_train.evaluate import evaluate_run
from fas_train.config import TrainConfig
from fas_train.train import train

SAMPLE = Path(__file__).resolve().parents[2] / "annotator/datasets/sample_data"


def _trained(url, folder, model, **options):
    cfg = TrainConfig(model=model, train=[url], protocol="all", epochs=1, batch=8, size=64, width=0.25, workers=0,
                      augment=False, model_options=options)
    train(cfg, str(folder), device="cpu", progress=False)
    evaluate_run(str(folder), [url], "all", device="cpu", workers=0)
    return folder


def _eval_scores(folder) -> dict[tuple[str, int], float]:
    """sample_id -> (score, video_score) that `fas-train eval` wrote for that store row."""
    out = {}
    for r in csv.DictReader(open(folder / "eval" / "scores_test.csv")):
        out[r["sample_id"]] = float(r["score"]), float(r.get("video_score") or "nan")
    return out


def _frame_of(url) -> dict[str, int]:
    import zarr

    root = zarr.open_group(url, mode="r")
    return dict(zip(root["meta/sample_id"][:].tolist(), root["meta/frame_index"][:].tolist()))


@pytest.mark.parametrize("model, options", [("cdcn", {}), ("dccdn3", {}),
                                            ("ccdd", {"video": True, "frames": 4, "video_batch": 1})])
def test_infer_gives_evals_scores_for_the_same_frames(sample_store, tmp_path, model, options):
    url, _ = sample_store
    run = _trained(url, tmp_path / model, model, **options)
    r = CliRunner().invoke(cli, ["infer", "--run", str(run), str(SAMPLE)])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert len(lines) == 6 and all(x["status"] == "ok" for x in lines)
    report = json.loads((run / "eval" / "metrics.json").read_text())
    assert f"frame threshold {report['frame']['threshold']:.6g} (rule eer, from dev of {url}" in r.stderr
    expected, frames = _eval_scores(run), _frame_of(url)
    by_key = {(sid.split("#")[0].rsplit("/", 1)[-1], frames[sid]): v for sid, v in expected.items()}
    for x in lines:
        name = Path(x["input"]).name
        if x["kind"] == "image":
            assert x["score"] == pytest.approx(by_key[(name, -1)][0], abs=1e-5)
            limit = report["frame"]["threshold"]
        else:
            assert len(x["frames"]) == 10
            for f in x["frames"]:
                assert f["score"] == pytest.approx(by_key[(name, f["frame_index"])][0], abs=1e-5)
            video = [v for (n, _), v in by_key.items() if n == name]
            want = video[0][1] if model == "ccdd" else np.mean([s for s, _ in video])  # LSTM, or the mean
            assert x["score"] == pytest.approx(want, abs=1e-5)
            limit = report["video"]["threshold"]
        assert x["decision"] == ("attack" if x["score"] >= limit else "bona fide") and x["threshold"] == limit
        x0, y0, x1, y1 = x["face_box"]
        assert 0 <= x0 < x1 and 0 <= y0 < y1


def test_infer_reports_inputs_without_a_face_and_refuses_bad_inputs(sample_store, tmp_path):
    url, _ = sample_store
    run = _trained(url, tmp_path / "r", "cdcn")
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank)
    r = CliRunner().invoke(cli, ["infer", "--run", str(run), str(blank), "--threshold", "0.5"])
    assert r.exit_code == 0, r.output
    line = json.loads(r.stdout.splitlines()[-1])
    assert line["status"] == "no_face" and "no usable face" in line["error"] and "score" not in line
    assert "frame threshold 0.5 (rule given, from --threshold)" in r.stderr
    for args, message in (([str(tmp_path / "nope.jpg")], "nope.jpg does not exist"),
                          ([str(tmp_path / "run.txt")], "is not an image or video"),
                          ([str(blank), "--fan-checkpoint", "w.pth"], "--fan-checkpoint and --fan-depth-checkpoint do not apply")):
        (tmp_path / "run.txt").write_text("x")
        r = CliRunner().invoke(cli, ["infer", "--run", str(run), *args])
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output
    (run / "eval" / "metrics.json").unlink()
    r = CliRunner().invoke(cli, ["infer", "--run", str(run), str(blank)])
    assert r.exit_code == 1 and "run `fas-train eval --run" in r.output


def test_infer_on_a_fan_store_scores_like_eval(tmp_path):
    """A run trained on a --landmarker fan store: infer rebuilds FAN from the store's config and
    crops as the store did (random FAN weights: the points are arbitrary but deterministic)."""
    import torch
    from face_alignment.models import FAN

    from helpers import sync_config
    from pipelines.run import run as annotate

    torch.manual_seed(0)
    weights = tmp_path / "2DFAN4-11f355bf06.pth.tar"
    torch.save(FAN(4).state_dict(), weights)
    url = str(tmp_path / "fan.zarr")
    annotate(sync_config(dataset="sample", root="", landmarker="fan", landmarker_options={"checkpoint": str(weights)},
                         frames_per_video=2), url, cluster="none", progress=False)
    folder = _trained(url, tmp_path / "cdcn", "cdcn")
    image = SAMPLE / "bonafide" / "astronaut.jpg"
    r = CliRunner().invoke(cli, ["infer", "--run", str(folder), str(image)])
    assert r.exit_code == 0, r.output
    line = json.loads([x for x in r.stdout.splitlines() if x.startswith("{")][-1])
    assert line["status"] == "ok"
    expected = _eval_scores(folder)["bonafide/astronaut.jpg"][0]
    assert line["score"] == pytest.approx(expected, abs=1e-5)
    # on a machine where the weights lie elsewhere: found by --fan-checkpoint or in the hub cache,
    # always checked against the store's sha256
    moved = tmp_path / "elsewhere" / weights.name
    moved.parent.mkdir()
    weights.rename(moved)
    old_hub = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        r = CliRunner().invoke(cli, ["infer", "--run", str(folder), str(image)])
        assert r.exit_code == 1 and "--fan-checkpoint 2DFAN4-11f355bf06.pth.tar (sha256" in r.output, r.output
        assert "Traceback" not in r.output
        for args in (["--fan-checkpoint", str(moved)], []):
            if not args:  # the hub cache, where face-alignment keeps its files
                (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
                moved.rename(tmp_path / "hub" / "checkpoints" / weights.name)
            r = CliRunner().invoke(cli, ["infer", "--run", str(folder), str(image), *args])
            assert r.exit_code == 0, r.output
            assert json.loads([x for x in r.stdout.splitlines() if x.startswith("{")][-1])["score"] == \
                pytest.approx(expected, abs=1e-5)
        other = tmp_path / "other.pth.tar"
        torch.manual_seed(1)
        torch.save(FAN(4).state_dict(), other)
        r = CliRunner().invoke(cli, ["infer", "--run", str(folder), str(image), "--fan-checkpoint", str(other)])
        assert r.exit_code == 1 and "is not the FAN the store was made with" in r.output, r.output
    finally:
        torch.hub.set_dir(old_hub)
