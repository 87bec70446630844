"""A run's files: the checkpoint (model, optimizer, scheduler, epoch), its loading and the run's config."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch

from annotator.core.digest import sha256
from annotator.core.errors import AnnotatorError
from fas_train.config import CHECKPOINT, CHECKPOINT_NAMES, TrainConfig
from fas_train.models import FasModel


def save_checkpoint(path: Path, cfg: TrainConfig, model, optimizer, scheduler, epoch: int, step: int,
                    extra: dict | None = None) -> None:
    """Write the checkpoint atomically; extra: more entries (the epoch's dev figures, the best epoch)."""
    tmp = path.with_suffix(".tmp")
    torch.save({"model": cfg.model, "config": dataclasses.asdict(cfg), "state_dict": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch, "step": step, **(extra or {})}, tmp)
    os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint intact


def keep_as(source: Path, path: Path) -> None:
    """Copy a written checkpoint to another name (best.pt), atomically like save_checkpoint."""
    import shutil

    tmp = path.with_suffix(".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, model_name: str | None = None) -> dict:
    """A checkpoint dict (loaded with weights_only=True); one-line errors for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise AnnotatorError(f"no checkpoint at {path}; train first with `fas-train train --out {path.parent}`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch's own text runs to several sentences of advice that does not apply
        raise AnnotatorError(f"{path} is not a fas-train checkpoint (torch.load: {type(e).__name__}): not a file "
                             "`fas-train train` wrote, or a damaged one") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "model" not in ckpt:
        raise AnnotatorError(f"{path} is not a fas-train checkpoint (no model name and state_dict)")
    if model_name is not None and ckpt["model"] != model_name:
        raise AnnotatorError(f"{path} is a checkpoint of model {ckpt['model']!r}, not {model_name!r}")
    return ckpt


def restore(model: FasModel, ckpt: dict, path) -> None:
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise AnnotatorError(f"{path} does not fit model {ckpt['model']!r} with these settings ({first})") from None


def run_config(run: str | Path) -> TrainConfig:
    """The settings of a training run directory; a one-line error when it is not one."""
    run = Path(run)
    if not (run / "config.json").is_file():
        raise AnnotatorError(f"{run} is not a training run (no config.json); train with `fas-train train --out {run}`")
    return TrainConfig(**json.loads((run / "config.json").read_text()))


def checkpoint_path(run: str | Path, checkpoint: str | None = None) -> Path:
    """RUN/last.pt for None or "last", RUN/best.pt for "best", else the path given."""
    if checkpoint in CHECKPOINT_NAMES:
        path = Path(run) / CHECKPOINT_NAMES[checkpoint]
        if checkpoint == "best" and not path.is_file() and (Path(run) / CHECKPOINT).is_file():
            raise AnnotatorError(f"{run} has no best.pt (trained by a release without dev checks); train on with "
                                 f"`fas-train train --out {run}` and more --epochs, or use --checkpoint last")
        return path
    if checkpoint and not Path(checkpoint).is_file():
        raise AnnotatorError(f"no checkpoint file {checkpoint}: --checkpoint takes best, last or a checkpoint file")
    return Path(checkpoint) if checkpoint else Path(run) / CHECKPOINT


def load_run(run: str | Path, checkpoint: str | None = None) -> tuple[TrainConfig, FasModel, dict]:
    """(settings, model with the checkpoint's weights, checkpoint) of a run; `checkpoint`: "last"
    (the default, RUN/last.pt), "best" (RUN/best.pt) or a file."""
    cfg = run_config(run)
    path = checkpoint_path(run, checkpoint)
    ckpt = load_checkpoint(path, cfg.model)
    model = cfg.build_model(pretrained=False)
    restore(model, ckpt, path)
    return cfg, model, ckpt


def eval_report(run: str | Path) -> dict | None:
    """RUN/eval/metrics.json, what `fas-train eval` last wrote there; None before any eval."""
    path = Path(run) / "eval" / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _calibrated(report: dict, path: Path, ckpt: dict) -> bool:
    """Whether the report's thresholds were chosen on the weights of the checkpoint file at `path`:
    the file's sha256 (best.pt is a byte copy of last.pt at its epoch); a report from before the hash
    was recorded compares epoch and step."""
    if "checkpoint_sha256" in report:
        return report["checkpoint_sha256"] == sha256(path)
    return report.get("epoch") == int(ckpt["epoch"]) + 1 and report.get("step", ckpt.get("step")) == ckpt.get("step")


def load_decider(run: str | Path, checkpoint: str | None, calibrated: bool = True
                 ) -> tuple[TrainConfig, FasModel, dict, dict | None]:
    """(settings, model, checkpoint, eval report) for infer and export-onnx, which decide with the
    thresholds `fas-train eval` chose on dev for one checkpoint's weights.

    checkpoint: best, last or a file; by default the one eval scored (last.pt, else best.pt: the
    weights RUN/eval/metrics.json names), last.pt when eval scored neither or has not run. The
    report: RUN/eval/metrics.json when it was calibrated on these weights, else None. calibrated:
    the caller decides with the report's thresholds (infer), so weights eval did not score are a
    one-line error instead of a silent mismatch."""
    report = eval_report(run)
    loaded = []
    for name in [checkpoint] if checkpoint else ["last", "best"]:
        path = checkpoint_path(run, name) if name != "best" or checkpoint else Path(run) / CHECKPOINT_NAMES["best"]
        if not path.is_file() and loaded:  # no best.pt beside last.pt: nothing more to try
            continue
        cfg, model, ckpt = load_run(run, name)
        if report is not None and _calibrated(report, path, ckpt):
            return cfg, model, ckpt, report
        loaded.append((cfg, model, ckpt))
        if report is None:
            break
    if report is None or not calibrated:
        return (*loaded[0], None)
    raise AnnotatorError(
        f"{Path(run) / 'eval' / 'metrics.json'} holds thresholds chosen for {report.get('checkpoint')} (epoch "
        f"{report.get('epoch')}), not for {checkpoint or 'last.pt or best.pt'}: run `fas-train eval --run {run}"
        f"{' --checkpoint ' + checkpoint if checkpoint else ''}` first, or pass --threshold")
