"""Evaluation of a trained run: scores on dev and test, ISO metrics with the dev threshold applied
to test, scores CSVs and ROC / DET curves."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import NormalDist

import numpy as np

from annotator.core.errors import SettingError

from fas_train.metrics import Scores, cross_dataset, evaluate, roc, write_scores
from fas_train.selection import Selection, select
from annotator.core.digest import sha256
from fas_train.checkpoints import checkpoint_path, load_run
from fas_train.scoring import device_of, score, score_videos, scores_of, scoring_loader


def evaluate_run(run: str, stores: list[str], protocol: str, test_stores: list[str] | None = None,
                 dev_stores: list[str] | None = None, rule: str = "eer", device: str | None = None,
                 checkpoint: str | None = None, out: str | None = None, workers: int | None = None,
                 save_cues: int = 0, save_masks: int = 0) -> dict:
    """Score dev (dev_stores or stores) and test (test_stores or stores), write RUN/eval/ (or out):
    metrics.json, scores_dev.csv, scores_test.csv, roc.png, det.png. Returns the metrics.
    save_cues: for a model with spoof cues (lgsc), also write cues/<row>_<sample_id>.png for the first
    N test rows: the input image beside its cue (|cue| per pixel, brighter = larger).
    A model with segmentation maps (segdec) also gets "segmentation" in the report: pixel-level
    APCER (spoof pixels of the label called live), BPCER (live pixels called spoof) and their mean,
    the segmentation HTER; save_masks writes masks/<row>_<sample_id>.png for the first N test rows:
    the image with the predicted spoof pixels in red | the same with the label's attack pixels.

    A model with a video branch (ccdd --video) scores each video with it: "video" (and
    "cross_dataset") use those scores, and the CSVs get a video_score column.

    When the test stores differ from the dev stores (leave-one-dataset-out), the report also holds
    "cross_dataset": HTER at the target's own EER threshold (common, optimistic) and at the source
    dev threshold (honest), labelled as such.
    """
    dev_stores = dev_stores or stores
    test_stores = test_stores or stores
    cfg, model, ckpt = load_run(run, checkpoint)
    _check_pictures(model, ckpt["model"], save_cues, save_masks)
    dev_sel = select(dev_stores, protocol, "dev", needs=model.needs)
    test_sel = select(test_stores, protocol, "test", needs=model.needs)
    where = device_of(device)
    model.to(where)
    workers = cfg.workers if workers is None else workers
    (dev, test), by_video, extra = _score_groups(model, cfg, (dev_sel, test_sel), workers, where)
    report = {
        "run": str(run), "model": ckpt["model"], "epoch": int(ckpt["epoch"]) + 1, "step": int(ckpt["step"]),
        "protocol": protocol,
        "checkpoint": str(checkpoint_path(run, checkpoint)),
        "checkpoint_sha256": sha256(checkpoint_path(run, checkpoint)),  # names the weights (checkpoints.load_decider)
        "dev_stores": dev_stores, "test_stores": test_stores,
        "score": "higher = more likely an attack",
        "frame": evaluate(test, dev, rule),
        "video": evaluate(by_video[1], by_video[0], rule, video=True),
    }
    if model.frames:
        report["video"]["score"] = f"the video branch's (LSTM over {model.frames} evenly spaced frames)"
    if sorted(test_stores) != sorted(dev_stores):
        report["cross_dataset"] = cross_dataset(by_video[1], by_video[0], video=True)
    folder = Path(out) if out else Path(run) / "eval"
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "spoof_probability"):
        report["segmentation"] = segmentation_quality(model, test_sel, cfg.batch, cfg.size, where,
                                                      folder / "masks" if save_masks else None, save_masks)
    for name, sel, s in (("dev", dev_sel, dev), ("test", test_sel, test)):
        write_scores(str(folder / f"scores_{name}.csv"), s,
                     {"sample_id": sel.meta["sample_id"], "dataset": sel.meta["dataset"], **extra.get(name, {})})
    (folder / "metrics.json").write_text(json.dumps(report, indent=2))
    plot_curves(test, folder, report["frame"]["threshold"])
    if save_cues:
        write_cues(model, test_sel, save_cues, cfg.size, where, folder / "cues")
    return report


def _check_pictures(model, name: str, save_cues: int, save_masks: int) -> None:
    """One-line errors for pictures the run's model cannot draw, before anything is scored."""
    if save_cues and not hasattr(model, "to_cue"):
        raise SettingError("save_cues", f"needs a model with spoof cues (lgsc); this run's is {name}")
    if save_masks and not hasattr(model, "spoof_probability"):
        raise SettingError("save_masks", f"needs a model with segmentation maps (segdec); this run's is {name}")


def _score_groups(model, cfg, sels: tuple[Selection, Selection], workers: int, where):
    """((dev, test) frame Scores, (dev, test) video-level Scores, extra CSV columns by group name) of
    the dev and test selections."""
    dev_sel, test_sel = sels
    dev, test = (scores_of(sel, score(model, scoring_loader(model, sel, cfg.batch, workers), cfg.size, where))
                 for sel in (dev_sel, test_sel))
    by_video = dev, test  # video level: the mean of the frame scores, or a video branch's own score
    extra = {}
    if model.frames:
        values = [score_videos(model, sel, cfg.batch, cfg.size, workers, where) for sel in (dev_sel, test_sel)]
        by_video = tuple(scores_of(sel, v) for sel, v in zip((dev_sel, test_sel), values))
        extra = {"dev": {"video_score": values[0]}, "test": {"video_score": values[1]}}
    return (dev, test), by_video, extra


def pixels(image) -> np.ndarray:
    """(B, 3, S, S) model input ((x - 127.5) / 128) -> (B, S, S, 3) uint8 RGB, for the PNGs."""
    return (image * 128 + 127.5).clamp(0, 255).permute(0, 2, 3, 1).byte().cpu().numpy()


def png_name(sel: Selection, row: int) -> str:
    """<row>_<sample_id>.png, the name of a row's picture in eval's masks/ and cues/."""
    return f"{row:06d}_{str(sel.meta['sample_id'][row]).replace('/', '_')}.png"


def segmentation_quality(model, sel, batch: int, size: int | None, device, folder: Path | None = None,
                         n_png: int = 0) -> dict:
    """Pixel-level APCER / BPCER / HTER of the model's spoof maps against the label maps of sel (a
    pixel is spoof in the label when its attack channel is > 0, live when its live channel is)."""
    import torch
    from PIL import Image

    from fas_train.data import StoreStream
    from fas_train.inputs import to_inputs

    counts = {"spoof": 0, "spoof_missed": 0, "live": 0, "live_flagged": 0}
    written = 0
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    model.eval()
    for b in StoreStream(sel, ("image", "label"), batch, shuffle=False):
        x = to_inputs(b, device, size)
        with torch.no_grad():
            called = model.spoof_probability(model(x["image"]).float()) > 0.5
        spoof, live = x["label"][:, 0] > 0, x["label"][:, 1] > 0
        counts["spoof"] += int(spoof.sum())
        counts["spoof_missed"] += int((spoof & ~called).sum())
        counts["live"] += int(live.sum())
        counts["live_flagged"] += int((live & called).sum())
        if folder is not None and written < n_png:
            image = pixels(x["image"])
            for j, row in enumerate(b["index"].tolist()):
                if written == n_png:
                    break
                pred, truth = image[j].copy(), image[j].copy()
                pred[called[j].cpu().numpy()] = (pred[called[j].cpu().numpy()] * 0.4 + [153, 0, 0]).astype(np.uint8)
                truth[spoof[j].cpu().numpy()] = (truth[spoof[j].cpu().numpy()] * 0.4 + [153, 0, 0]).astype(np.uint8)
                Image.fromarray(np.concatenate([pred, truth], axis=1)).save(folder / png_name(sel, row))
                written += 1
    apcer = counts["spoof_missed"] / counts["spoof"] if counts["spoof"] else float("nan")
    bpcer = counts["live_flagged"] / counts["live"] if counts["live"] else float("nan")
    return {"apcer": apcer, "bpcer": bpcer, "hter": (apcer + bpcer) / 2, "spoof_pixels": counts["spoof"],
            "live_pixels": counts["live"], "rule": "a pixel is spoof when the predicted spoof probability > 0.5"}


def write_cues(model, sel, n: int, size: int | None, device, folder: Path) -> list[Path]:
    """PNGs of the first n rows of sel: image | |cue| (scaled so that 1 is white), as LGSC shows them."""
    import torch
    from PIL import Image

    from fas_train.data import StoreStream
    from fas_train.inputs import to_inputs
    from fas_train.models.lgsc import unpack

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    model.eval()
    for b in StoreStream(sel, ("image",), min(n, 16), shuffle=False):
        x = to_inputs(b, device, size)
        with torch.no_grad():
            cue = unpack(model(x["image"]).float())[0]
        image = pixels(x["image"])
        mag = (cue.abs().mean(dim=1).clamp(0, 1) * 255).byte().cpu().numpy()
        for j, row in enumerate(b["index"].tolist()):
            if len(written) == n:
                return written
            sheet = np.concatenate([image[j], np.repeat(mag[j][..., None], 3, axis=2)], axis=1)
            path = folder / png_name(sel, row)
            Image.fromarray(sheet).save(path)
            written.append(path)
    return written


def plot_curves(s: Scores, folder: Path, threshold: float) -> None:
    """roc.png (attacks detected vs bona fide rejected) and det.png (APCER vs BPCER on normal-deviate
    axes) of a set, with the operating point of `threshold` marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fpr, tpr, _ = roc(s)
    bf = s.score[~s.is_attack]
    att = s.score[s.is_attack]
    op_b, op_a = float((bf >= threshold).mean()), float((att < threshold).mean())
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, lw=1.5)
    ax.plot([op_b], [1 - op_a], "o", label=f"threshold {threshold:.4g}")
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
    ax.set(xlabel="BPCER (bona fide rejected)", ylabel="1 - APCER (attacks detected)", title="ROC", xlim=(0, 1),
           ylim=(0, 1))
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(folder / "roc.png", dpi=120)
    plt.close(fig)

    nd = NormalDist()
    eps = 1e-4

    def probit(p):
        return [nd.inv_cdf(min(max(float(v), eps), 1 - eps)) for v in np.atleast_1d(p)]

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(probit(1 - tpr), probit(fpr), lw=1.5)
    ax.plot(probit(op_a), probit(op_b), "o", label=f"threshold {threshold:.4g}")
    ticks = [0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99, 0.999]
    ax.set_xticks(probit(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(probit(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set(xlabel="APCER (%)", ylabel="BPCER (%)", title="DET")
    ax.grid(True, lw=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(folder / "det.png", dpi=120)
    plt.close(fig)
