"""Training that reports as it goes: rows per group at the start, dev figures per epoch, best.pt,
--patience, and eval's counts behind each figure."""

import csv
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from synthetic import make_store

from annotator.core.errors import AnnotatorError
from annotator.store import qa
from fas_train import train as train_module
from fas_train.cli import cli
from fas_train.config import TrainConfig
from fas_train.dev_check import Best
from fas_train.metrics import Scores, thin_figures, evaluate
from fas_train.scoring import score, scoring_loader
from fas_train.selection import select
from fas_train.train import train
from helpers import assert_one_line_error


def _cfg(store, **kw):
    kw = {"model": "cdcn", "train": [store], "protocol": "all", "epochs": 2, "batch": 8, "lr": 3e-3,
          "size": 32, "width": 0.1, "workers": 0, "augment": False, **kw}
    return TrainConfig(**kw)


def _eer_hter_auc(score_, is_attack):
    """An independent computation: the EER threshold by brute force over every observed score, HTER
    there, and the AUC as the share of (attack, bona fide) pairs ranked right (ties one half)."""
    att, bf = score_[is_attack], score_[~is_attack]
    best = None
    for t in np.append(np.unique(score_), np.inf):
        apcer, bpcer = np.mean(att < t), np.mean(bf >= t)
        if best is None or abs(apcer - bpcer) < best[0]:
            best = (abs(apcer - bpcer), (apcer + bpcer) / 2)
    auc = np.mean([(a > b) + 0.5 * (a == b) for a in att for b in bf])
    return best[1], auc


def test_the_run_says_its_rows_and_logs_dev_figures_that_match_an_independent_computation(tmp_path):
    url = make_store(str(tmp_path / "s.zarr"), n=24)
    qa.set_flag(url, 3, "bad", "")
    qa.set_flag(url, 6, "bad", "")
    run = tmp_path / "run"
    result = train(_cfg(url, exclude_flagged=True), str(run), device="cpu", progress=False)

    rows = json.loads((run / "rows.json").read_text())
    is_attack = (np.arange(24) // 2) % 2 == 1
    kept = np.ones(24, bool)
    kept[[3, 6]] = False
    counts = {"rows": 22, "bona_fide": int((~is_attack & kept).sum()), "attack": int((is_attack & kept).sum())}
    assert counts == {"rows": 22, "bona_fide": 12, "attack": 10}  # rows 3 and 6 are attacks
    assert rows["train"] == {**counts, "flagged_out": 2, "by_store": {url: counts}}
    assert rows["dev"]["rows"] == 24 and rows["dev"]["flagged_out"] == 0  # dev and test keep flagged rows

    epochs = [r for r in csv.DictReader(open(run / "log.csv")) if r["kind"] == "epoch"]
    assert len(epochs) == 2
    last = json.loads(epochs[-1]["parts"])
    sel = select([url], "all", "dev", needs=result.model.needs)
    values = score(result.model, scoring_loader(result.model, sel, 8, 0), 32, torch.device("cpu"))
    hter, auc = _eer_hter_auc(values, sel.meta["is_attack"])
    assert last["dev_hter"] == pytest.approx(hter) and last["dev_auc"] == pytest.approx(auc)
    assert last["dev_eer"] == pytest.approx(result.dev[-1]["eer"])

    # best.pt is the epoch of the lowest dev HTER (the first of equals), and eval reads it by name
    hters = [json.loads(r["parts"])["dev_hter"] for r in epochs]
    best_epoch = int(np.argmin(hters))
    assert [json.loads(r["parts"])["best"] for r in epochs][best_epoch] == 1
    assert torch.load(run / "best.pt", weights_only=True)["epoch"] == best_epoch
    assert result.best == {"metric": "hter", "epoch": best_epoch + 1, "value": pytest.approx(min(hters))}
    out = CliRunner().invoke(cli, ["eval", "--run", str(run), "--workers", "0", "--checkpoint", "best", "--device", "cpu"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout[out.stdout.index("{"):])
    assert report["epoch"] == best_epoch + 1 and report["checkpoint"].endswith("best.pt")
    assert report["counts"]["frame"]["test"] == "12 bona fide, 12 attack (print 12)"
    assert report["counts"]["video"]["test"] == "6 bona fide, 6 attack (print 6)"
    assert "video-level test figures rest on fewer than 10 videos of a class: BPCER on 6 bona fide" in out.stderr


def test_patience_stops_the_run_keeps_the_best_and_a_resume_respects_it(tmp_path, monkeypatch):
    url = make_store(str(tmp_path / "s.zarr"), n=16)
    script = iter([0.30, 0.20, 0.25, 0.26, 0.10, 0.12])  # the dev HTER of epochs 1..6

    def scripted(scores, rule):
        return {"hter": next(script), "acer": 0.5, "eer": 0.5, "auc": 0.5, "threshold": 0.0,
                "n_bona_fide": int((~scores.is_attack).sum()), "n_attack": int(scores.is_attack.sum())}

    monkeypatch.setattr(train_module, "dev_metrics", scripted)
    run = tmp_path / "run"
    result = train(_cfg(url, epochs=6, patience=2), str(run), device="cpu", progress=False)
    assert result.stopped_early and result.epochs == 4 and len(result.losses) == 4  # epochs 3, 4 no better than 2
    assert result.best["epoch"] == 2 and result.best["value"] == pytest.approx(0.20)
    assert torch.load(run / "best.pt", weights_only=True)["epoch"] == 1
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 3

    again = train(_cfg(url, epochs=6, patience=2), str(run), device="cpu", progress=False)
    assert again.stopped_early and again.losses == []  # already out of patience: nothing more runs

    more = train(_cfg(url, epochs=6, patience=3), str(run), device="cpu", progress=False)  # patience may change
    assert len(more.losses) == 2 and more.best["epoch"] == 5 and not more.stopped_early
    assert torch.load(run / "best.pt", weights_only=True)["epoch"] == 4


def test_best_by_auc_prefers_higher_and_a_one_class_dev_falls_back_to_the_training_loss(tmp_path, capsys):
    best = Best("auc")
    assert [best.offer(e, v) for e, v in enumerate([0.6, 0.5, 0.9, float("nan")])] == [True, False, True, False]
    assert (best.epoch, best.value, best.waited(5)) == (2, 0.9, 3)

    url = make_store(str(tmp_path / "s.zarr"), n=16, split=["train"] * 8 + ["dev"] * 4 + ["test"] * 4,
                     is_attack=[i % 2 == 1 for i in range(8)] + [False] * 4 + [True, False] * 2)
    result = train(_cfg(url, protocol="split", epochs=2), str(tmp_path / "run"), device="cpu", progress=False)
    assert "the dev group holds 4 bona fide and 0 attack rows: no dev figures" in capsys.readouterr().err
    assert result.dev == [{}, {}] and result.best["metric"] == "loss"
    assert result.best["epoch"] == int(np.argmin(result.losses)) + 1


def test_thin_figures_name_the_small_classes():
    s = Scores(np.r_[np.linspace(0, 1, 30), [0.9, 0.8, 0.7]], [False] * 30 + [True] * 3, ["bonafide"] * 30 + ["print"] * 2 + ["replay"])
    notes = thin_figures(evaluate(s, s, "eer"))
    assert notes == ["frame-level test figures rest on fewer than 10 frames of a class: APCER on 3 attack; "
                     "APCER per species on print 2, replay 1",
                     "frame-level dev figures rest on fewer than 10 frames of a class: APCER on 3 attack; "
                     "APCER per species on print 2, replay 1"]
    big = Scores(np.linspace(0, 1, 40), [False] * 20 + [True] * 20, ["bonafide"] * 20 + ["print"] * 20)
    assert thin_figures(evaluate(big, big, "eer")) == []


def test_bad_reporting_settings_are_one_line_errors(tmp_path):
    url = make_store(str(tmp_path / "s.zarr"), n=8)
    base = ["train", "--store", url, "--protocol", "all", "--model", "cdcn", "--epochs", "1", "--size", "32",
            "--width", "0.1", "--workers", "0", "--out", str(tmp_path / "r")]
    assert_one_line_error(CliRunner().invoke(cli, base + ["--threshold", "median"]),
                          "--threshold unknown rule 'median'; use eer, bpcer1 or a finite number")
    assert_one_line_error(CliRunner().invoke(cli, base + ["--patience", "-1"]),
                          "--patience must be 0 (never stop early) or more epochs, got -1")
    assert_one_line_error(CliRunner().invoke(cli, base + ["--best-by", "f1"]),
                          "--best-by unknown metric 'f1'; choose one of: hter, acer, eer, auc, loss")
    with pytest.raises(AnnotatorError, match="best_by unknown metric 'f1'; choose one of: hter, acer, eer, auc, loss"):
        train(_cfg(url, best_by="f1"), str(tmp_path / "r2"), device="cpu", progress=False)
    # a run of an earlier release has last.pt only
    run = tmp_path / "old"
    train(_cfg(url, epochs=1), str(run), device="cpu", progress=False)
    (run / "best.pt").unlink()
    out = CliRunner().invoke(cli, ["eval", "--run", str(run), "--checkpoint", "best", "--workers", "0"])
    assert_one_line_error(out, "has no best.pt (trained by a release without dev checks)")


def test_infer_and_export_onnx_decide_with_the_weights_eval_calibrated(tmp_path):
    """eval's thresholds belong to one checkpoint's weights: export-onnx (and infer, through the same
    load_decider) load those weights by default, and refuse other weights rather than pair them with
    thresholds chosen for another epoch."""
    import shutil

    from fas_train.checkpoints import load_decider
    from fas_train.evaluate import evaluate_run

    url = make_store(str(tmp_path / "s.zarr"), n=16)
    run = tmp_path / "r"
    train(_cfg(url, epochs=1), str(run), device="cpu", progress=False)
    shutil.copyfile(run / "last.pt", tmp_path / "e1.pt")
    train(_cfg(url, epochs=2), str(run), device="cpu", progress=False)
    (run / "best.pt").unlink()  # last.pt (epoch 2) the only candidate of the run's own names
    evaluate_run(str(run), [url], "all", device="cpu", workers=0, checkpoint=str(tmp_path / "e1.pt"))
    with pytest.raises(AnnotatorError, match=r"holds thresholds chosen for .*e1.pt \(epoch 1\), not for last.pt or "
                                             r"best.pt: run `fas-train eval --run .*` first, or pass --threshold"):
        load_decider(run, None)
    *_, ckpt, report = load_decider(run, str(tmp_path / "e1.pt"))
    assert ckpt["epoch"] + 1 == report["epoch"] == 1
    _, _, ckpt, report = load_decider(run, None, calibrated=False)  # --threshold given: last.pt, no report
    assert ckpt["epoch"] + 1 == 2 and report is None
    onnx = str(tmp_path / "m.onnx")
    r = CliRunner().invoke(cli, ["export-onnx", "--run", str(run), "--out", onnx])  # last.pt: eval did not score it
    assert r.exit_code == 0 and "m.onnx.json holds no decision threshold" in r.output, r.output
    sidecar = json.loads(open(onnx + ".json").read())
    assert sidecar["epoch"] == 2 and "threshold" not in sidecar
    r = CliRunner().invoke(cli, ["export-onnx", "--run", str(run), "--out", onnx, "--checkpoint", str(tmp_path / "e1.pt")])
    assert r.exit_code == 0 and "no decision threshold" not in r.output, r.output
    sidecar = json.loads(open(onnx + ".json").read())
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert sidecar["epoch"] == 1 and sidecar["threshold"]["frame"]["value"] == metrics["frame"]["threshold"]
    evaluate_run(str(run), [url], "all", device="cpu", workers=0)  # now last.pt
    *_, ckpt, report = load_decider(run, None)
    assert ckpt["epoch"] + 1 == report["epoch"] == 2 and report["step"] == ckpt["step"]
    # another run of the same length: same epoch and step, other weights; the file's sha256 tells them apart
    other = tmp_path / "other"
    train(_cfg(url, epochs=2, lr=1e-2), str(other), device="cpu", progress=False)
    evaluate_run(str(run), [url], "all", device="cpu", workers=0, checkpoint=str(other / "last.pt"))
    with pytest.raises(AnnotatorError, match="holds thresholds chosen for .*other/last.pt"):
        load_decider(run, None)


def test_eval_takes_the_runs_threshold_rule_and_refuses_non_numbers(tmp_path):
    url = make_store(str(tmp_path / "s.zarr"), n=16)
    run = tmp_path / "r"
    train(_cfg(url, epochs=1, threshold="bpcer1"), str(run), device="cpu", progress=False)
    r = CliRunner().invoke(cli, ["eval", "--run", str(run), "--workers", "0"])
    assert r.exit_code == 0, r.output
    report = json.loads((run / "eval" / "metrics.json").read_text())
    assert report["frame"]["threshold_rule"] == report["video"]["threshold_rule"] == "bpcer1"
    for value in ("nan", "inf", "-inf"):
        assert_one_line_error(CliRunner().invoke(cli, ["eval", "--run", str(run), "--threshold", value]),
                              f"threshold '{value}' is not a finite number; use eer, bpcer1 or a finite number")
    assert_one_line_error(CliRunner().invoke(cli, ["train", "--store", url, "--protocol", "all", "--model", "cdcn",
                                                   "--out", str(tmp_path / "r4"), "--threshold", "nan"]),
                          "--threshold 'nan' is not a finite number")
    with pytest.raises(AnnotatorError, match="threshold 'nan' is not a finite number"):
        train(_cfg(url, threshold="nan"), str(tmp_path / "r2"), device="cpu", progress=False)
    assert_one_line_error(CliRunner().invoke(cli, ["eval", "--run", str(run), "--checkpoint", "bets"]),
                          "no checkpoint file bets: --checkpoint takes best, last or a checkpoint file")
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    assert_one_line_error(CliRunner().invoke(cli, ["eval", "--run", str(run), "--checkpoint", str(tmp_path / "notes.pt")]),
                          "is not a fas-train checkpoint (torch.load: ")
    base = ["train", "--store", url, "--protocol", "all", "--model", "cdcn", "--out", str(tmp_path / "r3")]
    assert_one_line_error(CliRunner().invoke(cli, base + ["--patience", "1.5"]),
                          "Invalid value for '--patience': '1.5' is not a valid integer; see `cli train --help`")


def test_a_protocol_without_dev_names_the_ones_with_it(tmp_path):
    from annotator.core.samples import SPLIT_CODES
    from fas_train.selection import select

    codes = np.array([SPLIT_CODES["train"], SPLIT_CODES["test"]] * 8, dtype=np.int8)
    with_dev = codes.copy()
    with_dev[::4] = SPLIT_CODES["dev"]
    url = make_store(str(tmp_path / "s.zarr"), n=16, protocols={"intra_test": codes, "intra_test_dev": with_dev})
    with pytest.raises(AnnotatorError, match=r"protocol 'intra_test' selects no annotated rows of group 'dev' in "
                                             r".*s.zarr; protocols with a dev group: intra_test_dev$"):
        select([url], "intra_test", "dev")
    assert len(select([url], "intra_test_dev", "dev")) == 4


def test_a_rerun_says_what_it_resumes_or_that_nothing_is_left(tmp_path, capsys):
    url = make_store(str(tmp_path / "s.zarr"), n=16)
    run = str(tmp_path / "r")
    train(_cfg(url, epochs=1), run, device="cpu", progress=False)
    assert "resuming" not in capsys.readouterr().err
    result = train(_cfg(url, epochs=2), run, device="cpu", progress=False)
    assert f"resuming {run} after epoch 1 of 2" in capsys.readouterr().err and len(result.losses) == 1
    result = train(_cfg(url, epochs=2), run, device="cpu", progress=False)
    err = capsys.readouterr().err
    assert f"nothing to train: {run} has run 2 epoch(s) and --epochs is 2 (give more to train on)" in err
    assert result.losses == [] and "epoch 2/2" not in err
