"""A run's files: the checkpoint (model, optimizer, scheduler, epoch), its loading and the run's config."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch

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


def checkpoint_path(run: str | Path, checkpoint: str | None = None) -> Path:
    """RUN/last.pt for None or "last", RUN/best.pt for "best", else the path given."""
    if checkpoint in CHECKPOINT_NAMES:
        path = Path(run) / CHECKPOINT_NAMES[checkpoint]
        if checkpoint == "best" and not path.is_file() and (Path(run) / CHECKPOINT).is_file():
            raise AnnotatorError(f"{run} has no best.pt (trained by a release without dev checks); train on with "
                                 f"`fas-train train --out {run}` and more --epochs, or use --checkpoint last")
        return path
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
