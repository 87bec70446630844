"""A run's files: the checkpoint (model, optimizer, scheduler, epoch), its loading and the run's config."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch

from annotator.core.errors import AnnotatorError
from fas_train.config import CHECKPOINT, TrainConfig
from fas_train.models import FasModel


def save_checkpoint(path: Path, cfg: TrainConfig, model, optimizer, scheduler, epoch: int, step: int) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": cfg.model, "config": dataclasses.asdict(cfg), "state_dict": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch, "step": step}, tmp)
    os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint intact


def load_checkpoint(path: str | Path, model_name: str | None = None) -> dict:
    """A checkpoint dict (loaded with weights_only=True); one-line errors for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise AnnotatorError(f"no checkpoint at {path}; train first with `fas-train train --out {path.parent}`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise AnnotatorError(f"{path} is not a loadable checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})") from None
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


def load_run(run: str | Path, checkpoint: str | None = None) -> tuple[TrainConfig, FasModel, dict]:
    """(settings, model with the checkpoint's weights, checkpoint) of a run; `checkpoint` defaults to
    RUN/last.pt."""
    cfg = run_config(run)
    path = Path(checkpoint) if checkpoint else Path(run) / CHECKPOINT
    ckpt = load_checkpoint(path, cfg.model)
    model = cfg.build_model(pretrained=False)
    restore(model, ckpt, path)
    return cfg, model, ckpt
