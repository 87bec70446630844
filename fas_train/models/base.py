"""What every trainer model provides besides forward: the store fields it reads, its loss, its
attack score (higher = more likely an attack; fas_train/metrics.py), all on batches from inputs.py."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from annotator.core.errors import SettingError
from annotator.core.registry import Registry

MODELS: Registry = Registry("model")


class FasModel(nn.Module):
    #: store arrays the model reads besides image: for its loss, and in all (loss and score).
    #: Checked against each store before any work; training reads only train_needs.
    train_needs: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    #: the store arrays score() reads from the batch (a subset of needs): what `fas-train infer`
    #: and the ONNX graph must supply besides the image.
    score_needs: tuple[str, ...] = ()
    #: training batches drawn live:spoof 1:1 (fas_train.data.StoreStream(balance=True)).
    balanced: bool = False
    #: what `fas-train models` prints: outputs, loss and score rule, one line each.
    card: dict[str, str] = {}
    #: frames T per sequence of a video branch (0: none). A model with one also has
    #: forward_video((B * T, 3, S, S)) -> per-sequence output, video_loss(out, batch) on batches of
    #: whole-video sequences (fas_train/videos.py) and video_score(out) -> (B,); `video_batch`
    #: sequences per video step. The trainer then alternates image and video steps.
    frames: int = 0
    video_batch: int = 0
    #: its pixel loss weighs each row by batch["row_weight"] (`fas-train train --weight-by`).
    weighs_rows: bool = False
    #: forward returns the (B, 3, S, S) attack / live / background map (`fas-train audit`).
    predicts_label_map: bool = False

    def loss(self, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(scalar loss, its named parts as detached 0-d tensors for the logs: the trainer reads them
        from the device every few steps, not at each one)."""
        raise NotImplementedError

    def on_step(self, progress: float) -> None:
        """Called by the trainer before each training step with the progress in [0, 1]."""

    def score(self, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) attack scores, higher = more likely an attack."""
        raise NotImplementedError


def row_mean(per_row: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The mean of a (B,) per-row loss weighted by batch["row_weight"] (all 1 without --weight-by,
    which is the plain mean: every row has as many pixels)."""
    w = batch.get("row_weight")
    if w is None:
        return per_row.mean()
    w = w.to(per_row.dtype)
    return (per_row * w).sum() / w.sum().clamp(min=1e-6)


def per_row(x: torch.Tensor) -> torch.Tensor:
    """(B, ...) elementwise loss -> (B,) its mean per row."""
    return x.flatten(1).mean(dim=1)


MAX_WIDTH = 4.0  # channel multiplier: 4 x the paper's channels is already ~16 x its compute


def check_width(width) -> None:
    """A finite channel multiplier in (0, MAX_WIDTH]: the models round width x channels and keep at
    least 4, so 0 or a negative width would silently build a 4-channel net, and NaN fails deep inside."""
    if not (isinstance(width, (int, float)) and math.isfinite(width) and 0 < width <= MAX_WIDTH):
        raise SettingError("width", f"must be a finite number in (0, {MAX_WIDTH:g}] (1 = the paper's channels), "
                                    f"got {width}")


def create(name: str, **kwargs) -> FasModel:
    """Model `name`; its width checked first (every caller builds models through here)."""
    if "width" in kwargs:
        check_width(kwargs["width"])
    return MODELS.create(name, **kwargs)
