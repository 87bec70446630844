import csv
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from synthetic import make_store

from annotator.core.errors import AnnotatorError
from fas_train.cli import cli
from fas_train.evaluate import evaluate_run
from fas_train.metrics import read_scores
from fas_train.models import MODELS
from fas_train.selection import select
from fas_train.config import TrainConfig
from fas_train.scoring import score, scoring_loader
from fas_train.train import train


def _cfg(store, **kw):
    kw = {"model": "dccdn3", "train": [store], "protocol": "all", "epochs": 4, "batch": 16, "lr": 3e-3,
          "size": 64, "width": 0.15, "workers": 0, "augment": False, **kw}
    return TrainConfig(**kw)


@pytest.mark.parametrize("name", MODELS.names())
def test_training_lowers_the_loss_and_eval_reloads_identical_scores(sample_store, tmp_path, name):
    url, _ = sample_store
    run = tmp_path / "run"
    result = train(_cfg(url, model=name), str(run), device="cpu", progress=False)
    assert len(result.losses) == 4 and result.losses[-1] < 0.8 * result.losses[0], result.losses
    assert {"config.json", "last.pt", "log.csv", "tb"} <= {p.name for p in run.iterdir()}
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == ["1", "2", "3", "4"]
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["model"] == name and ckpt["epoch"] == 3

    sel = select([url], "all", "test", needs=result.model.needs)
    expected = score(result.model, scoring_loader(result.model, sel, 16, 0), 64, torch.device("cpu"))
    report = evaluate_run(str(run), [url], "all", device="cpu", workers=0)
    got = read_scores(str(run / "eval" / "scores_test.csv"))
    np.testing.assert_allclose(got.score, expected, rtol=1e-6, atol=1e-7)
    assert got.is_attack.tolist() == sel.meta["is_attack"].tolist()
    assert report["frame"]["threshold_from"] == "dev" and report["video"]["level"] == "video"
    assert report["frame"]["n_attack"] == 3 and report["frame"]["n_bona_fide"] == 12
    for f in ("metrics.json", "roc.png", "det.png", "scores_dev.csv"):
        assert (run / "eval" / f).stat().st_size > 0
    assert json.loads((run / "eval" / "metrics.json").read_text())["model"] == name


def test_a_rerun_resumes_after_the_last_epoch(sample_store, tmp_path):
    url, _ = sample_store
    run = str(tmp_path / "run")
    train(_cfg(url, epochs=1), run, device="cpu", progress=False)
    second = train(_cfg(url, epochs=2), run, device="cpu", progress=False)
    assert len(second.losses) == 1  # only epoch 2 ran
    assert torch.load(f"{run}/last.pt", weights_only=True)["epoch"] == 1
    with pytest.raises(AnnotatorError, match=r"different settings \(lr\)"):
        train(_cfg(url, epochs=3, lr=1e-4), run, device="cpu", progress=False)


def test_bad_inputs_are_one_line_errors(sample_store, tmp_path):
    url, _ = sample_store
    lean = make_store(str(tmp_path / "lean.zarr"), n=8, drop=("region",))
    run = tmp_path / "run"
    train(_cfg(url, epochs=1, model="cdcn"), str(run), device="cpu", progress=False)
    dcc = tmp_path / "dcc"
    train(_cfg(url, epochs=1), str(dcc), device="cpu", progress=False)
    base = ["train", "--store", url, "--protocol", "all", "--epochs", "1", "--size", "64", "--width", "0.1",
            "--workers", "0", "--out", str(tmp_path / "x")]
    cases = [
        (base + ["--model", "resnet"], f"unknown model 'resnet'; choose one of: {', '.join(MODELS.names())}"),
        (["train", "--store", url, "--protocol", "grandtest", "--model", "cdcn", "--out", str(tmp_path / "y")],
         "has no protocol 'grandtest'"),
        (["train", "--store", url, "--protocol", "split", "--model", "cdcn", "--out", str(tmp_path / "y")],
         "selects no annotated rows of group 'train'"),
        (["train", "--store", lean, "--protocol", "all", "--model", "dccdn3", "--out", str(tmp_path / "y")],
         "lacks region, which this model needs"),
        (["eval", "--run", str(dcc), "--checkpoint", str(run / "last.pt")],
         "is a checkpoint of model 'cdcn', not 'dccdn3'"),
        (["eval", "--run", str(tmp_path / "nowhere")], "is not a training run"),
        (base + ["--model", "cdcn", "--batch", "0"], "--batch must be at least 1"),
        (["train", "--model", "cdcn", "--out", "z"], "give either --store"),
        (base + ["--model", "dccdn3", "--mcrea", "2"], "--mcrea must be in [0, 1], got 2.0"),
    ]
    for args, msg in cases:
        r = CliRunner().invoke(cli, args)
        assert r.exit_code != 0, (args, r.output)
        assert msg in r.output and "Traceback" not in r.output, (args, r.output)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    r = CliRunner().invoke(cli, ["eval", "--run", str(dcc), "--checkpoint", str(tmp_path / "junk.pt")])
    assert r.exit_code != 0 and "junk.pt is not a fas-train checkpoint (torch.load: UnpicklingError)" in r.output


def test_leave_one_dataset_out_reports_both_threshold_variants(tmp_path):
    splits = ["train"] * 8 + ["dev"] * 4 + ["test"] * 4
    a = make_store(str(tmp_path / "a.zarr"), n=16, split=splits, seed=1)
    b = make_store(str(tmp_path / "b.zarr"), n=16, split=splits, seed=2)
    c = make_store(str(tmp_path / "c.zarr"), n=16, split=splits, seed=3)
    run = str(tmp_path / "ocim")
    r = CliRunner().invoke(cli, ["train", "--train", f"{a},{b}", "--test", c, "--protocol", "split", "--model",
                                 "dccdn3", "--epochs", "1", "--batch", "8", "--width", "0.1", "--workers", "0",
                                 "--device", "cpu", "--out", run])
    assert r.exit_code == 0, r.output
    assert len(select([a, b], "split", "train")) == 16
    r = CliRunner().invoke(cli, ["eval", "--run", run, "--device", "cpu", "--workers", "0"])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "ocim" / "eval" / "metrics.json").read_text())
    assert report["dev_stores"] == [a, b] and report["test_stores"] == [c]
    cross = report["cross_dataset"]
    assert cross["target_eer"]["threshold_from"] == "test (optimistic)"
    assert cross["source_dev"]["threshold_from"] == "dev"
    # the honest variant uses the sources' dev EER threshold, the optimistic one the target's own
    dev = read_scores(str(tmp_path / "ocim" / "eval" / "scores_dev.csv")).by_video()
    test = read_scores(str(tmp_path / "ocim" / "eval" / "scores_test.csv")).by_video()
    from fas_train.metrics import eer_threshold

    assert cross["source_dev"]["threshold"] == pytest.approx(eer_threshold(dev))
    assert cross["target_eer"]["threshold"] == pytest.approx(eer_threshold(test))
    assert len(test.score) == 2  # 4 test rows of c, 2 frames per video


def test_pyramid_scales_from_the_cli_are_recorded_and_checked(sample_store, tmp_path):
    url, _ = sample_store
    base = ["train", "--store", url, "--protocol", "all", "--epochs", "1", "--batch", "8", "--size", "64",
            "--width", "0.1", "--workers", "0", "--no-augment"]
    r = CliRunner().invoke(cli, base + ["--model", "resnet50_ps", "--pyramid", "8,4", "--out", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["model_options"] == {"scales": [8, 4]}
    r = CliRunner().invoke(cli, base + ["--model", "cdcn_ps", "--pyramid", "3", "--out", str(tmp_path / "x")])
    assert r.exit_code != 0 and "--pyramid takes scales among 32, 16, 8, 4, 2, 1" in r.output
    r = CliRunner().invoke(cli, base + ["--model", "dccdn3", "--pyramid", "8", "--out", str(tmp_path / "y")])
    assert r.exit_code != 0 and "--pyramid applies to --model cdcn_ps and --model resnet50_ps" in r.output


def test_models_lists_every_model_with_its_card():
    r = CliRunner().invoke(cli, ["models"])
    assert r.exit_code == 0
    for name in MODELS.names():
        block = r.output.split(f"{name}\n", 1)[1].split("\n")[:5]
        assert block[0].startswith("    trains on: image") and all(
            line.split(":")[0].strip() in ("scores from", "outputs", "loss", "score") for line in block[1:])
        assert "(not described)" not in "\n".join(block), name


def test_pretrained_file_that_does_not_fit_is_a_one_line_error(sample_store, tmp_path):
    import torch

    bad = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    r = CliRunner().invoke(cli, ["train", "--store", sample_store[0], "--protocol", "all", "--model", "resnet50_ps",
                                 "--pretrained", str(bad), "--workers", "0", "--out", str(tmp_path / "r")])
    lines = [l for l in r.output.splitlines() if l.strip()]
    assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith(f"Error: --pretrained {bad} does not fit resnet50")


def _one_epoch_then_eval(url, folder, model: str, *eval_args):
    """Train `model` one epoch into folder, run `fas-train eval` with eval_args; the eval output."""
    train(_cfg(url, model=model, epochs=1), str(folder), device="cpu", progress=False)
    return CliRunner().invoke(cli, ["eval", "--run", str(folder), "--workers", "0", *eval_args])


def _pngs(folder, n: int) -> list:
    """The PNGs of folder: n of them, each image | map side by side at the runs' --size 64."""
    from PIL import Image

    pngs = sorted(folder.glob("*.png"))
    assert len(pngs) == n and np.asarray(Image.open(pngs[0])).shape == (64, 128, 3)
    return pngs


def test_eval_saves_lgsc_cues_next_to_their_images(sample_store, tmp_path):
    url, _ = sample_store
    r = _one_epoch_then_eval(url, tmp_path / "lgsc", "lgsc", "--save-cues", "3")
    assert r.exit_code == 0, r.output
    _pngs(tmp_path / "lgsc" / "eval" / "cues", 3)
    r = _one_epoch_then_eval(url, tmp_path / "cdcn", "cdcn", "--save-cues", "3")
    assert r.exit_code == 1 and "Error: --save-cues needs a model with spoof cues (lgsc); this run's is cdcn" in r.output


def test_ccdd_trains_on_three_stores_as_domains_and_logs_lambda(tmp_path):
    stores = [make_store(str(tmp_path / f"d{k}.zarr"), n=24, seed=k) for k in range(3)]
    cfg = _cfg(stores[0], model="ccdd", train=stores, size=32, epochs=6, batch=24,
               model_options={"domains": 3, "grl_lambda": "dann"})
    run = tmp_path / "run"
    result = train(cfg, str(run), device="cpu", progress=False)
    assert result.losses[-1] < result.losses[0], result.losses
    rows = [r for r in csv.DictReader(open(run / "log.csv")) if r["kind"] == "step"]
    lams = [json.loads(r["parts"])["lambda"] for r in rows]
    assert lams[0] == 0.0 and all(b > a for a, b in zip(lams, lams[1:]))  # the DANN schedule, rising
    sel = select(stores, "all", "test")
    assert sorted(set(sel.domain.tolist())) == [0, 1, 2]
    expected = score(result.model, scoring_loader(result.model, sel, 16, 0), 32, torch.device("cpu"))
    evaluate_run(str(run), stores, "all", device="cpu", workers=0)
    np.testing.assert_allclose(read_scores(str(run / "eval" / "scores_test.csv")).score, expected, rtol=1e-6, atol=1e-7)


def test_segdec_eval_reports_pixel_hter_and_writes_overlays(sample_store, tmp_path):
    from fas_train.evaluate import segmentation_quality

    url, _ = sample_store
    run = tmp_path / "seg"
    r = _one_epoch_then_eval(url, run, "segdec", "--save-masks", "2")
    assert r.exit_code == 0, r.output
    seg = json.loads((run / "eval" / "metrics.json").read_text())["segmentation"]
    assert seg["spoof_pixels"] > 0 and seg["live_pixels"] > 0
    assert seg["hter"] == pytest.approx((seg["apcer"] + seg["bpcer"]) / 2)
    _pngs(run / "eval" / "masks", 2)

    class Always:  # a model that calls every pixel spoof: APCER 0, BPCER 1, by construction
        def eval(self):
            return self

        def __call__(self, image):
            return image

        def spoof_probability(self, out):
            return torch.ones(out.shape[0], out.shape[2], out.shape[3])

    sel = select([url], "all", "test")
    fixed = segmentation_quality(Always(), sel, 16, 64, "cpu")
    assert (fixed["apcer"], fixed["bpcer"], fixed["hter"]) == (0.0, 1.0, 0.5)
    assert fixed["spoof_pixels"] == seg["spoof_pixels"] and fixed["live_pixels"] == seg["live_pixels"]


def test_ccdd_domains_from_a_meta_column(tmp_path):
    stores = [make_store(str(tmp_path / f"k{k}.zarr"), n=24, seed=k) for k in range(2)]
    base = ["train", "--train", ",".join(stores), "--protocol", "all", "--model", "ccdd", "--epochs", "1", "--batch",
            "12", "--size", "32", "--workers", "0", "--no-augment"]
    r = CliRunner().invoke(cli, base + ["--domain-key", "attack_type", "--out", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    options = json.loads((tmp_path / "r" / "config.json").read_text())["model_options"]
    assert options == {"domains": 2, "domain_key": "attack_type", "domain_values": ["bonafide", "print"]}
    sel = select(stores, "all", "train", columns=("attack_type",))
    sel.use_domain_key("attack_type", options["domain_values"])
    assert sel.domain.tolist() == [int(t == "print") for t in sel.meta["attack_type"]]
    r = CliRunner().invoke(cli, base + ["--domain-key", "dataset", "--out", str(tmp_path / "x")])
    assert r.exit_code == 1 and "--domain-key dataset: the training rows hold 1 value(s) (synthetic)" in r.output
    r = CliRunner().invoke(cli, base + ["--domain-key", "camera", "--out", str(tmp_path / "y")])
    assert r.exit_code == 1 and "has no meta column camera" in r.output
