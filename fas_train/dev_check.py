"""The dev set's figures after every training epoch and the best epoch by one of them, as the FAS
codebases compared against report them (a dev ACER / HTER per epoch, the best model kept).

The threshold is chosen on the dev scores themselves by the run's rule (eer, bpcer1 or a number:
fas_train/metrics.py choose_threshold), at frame level, so these figures rank epochs; the honest
test figures come from `fas-train eval`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fas_train.metrics import Scores, at_threshold, choose_threshold, threshold_free

# the metrics a run can keep its best epoch by; True: lower is better
BEST_BY = {"hter": True, "acer": True, "eer": True, "auc": False, "loss": True}


def dev_metrics(s: Scores, rule: str) -> dict:
    """{hter, acer, eer, auc, threshold, n_bona_fide, n_attack} of frame scores, the threshold
    chosen on s by rule."""
    t = choose_threshold(s, rule)
    at = at_threshold(s, t)
    free = threshold_free(s)
    return {"hter": at["hter"], "acer": at["acer"], "eer": free["eer"], "auc": free["auc"], "threshold": t,
            "n_bona_fide": int((~s.is_attack).sum()), "n_attack": int(s.is_attack.sum())}


def can_rank(is_attack: np.ndarray) -> bool:
    """Whether a dev group can give metrics: it holds both classes."""
    return bool(is_attack.any() and not is_attack.all())


@dataclass
class Best:
    """The best epoch so far (0-based; -1 before any) by `metric`, kept in every checkpoint so a
    resumed run goes on comparing and counting patience."""

    metric: str
    epoch: int = -1
    value: float = math.nan

    def improves(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.epoch < 0 or not math.isfinite(self.value):
            return True
        return value < self.value if BEST_BY[self.metric] else value > self.value

    def offer(self, epoch: int, value: float) -> bool:
        """Take (epoch, value) when it improves on the best; whether it did."""
        if self.improves(value):
            self.epoch, self.value = epoch, float(value)
            return True
        return False

    def waited(self, epoch: int) -> int:
        """Epochs finished after the best one, up to and including `epoch`."""
        return epoch - self.epoch

    def as_dict(self) -> dict:
        return {"metric": self.metric, "epoch": self.epoch, "value": self.value}

    @classmethod
    def from_checkpoint(cls, ckpt: dict | None, metric: str) -> "Best":
        """The best of a checkpoint written by this run (a run of an earlier release, or one that ranked
        by another metric, starts afresh)."""
        saved = (ckpt or {}).get("best") or {}
        if saved.get("metric") != metric:
            return cls(metric)
        return cls(metric, int(saved["epoch"]), float(saved["value"]))


def epoch_line(epoch: int, epochs: int, loss: float, dev: dict, best: Best, improved: bool, rule: str) -> str:
    """One line per epoch on stderr: training loss, the dev figures, the best epoch."""
    text = f"epoch {epoch + 1}/{epochs}  loss {loss:.4f}"
    if dev:
        text += (f"  dev HTER {100 * dev['hter']:.2f}%  ACER {100 * dev['acer']:.2f}%  EER {100 * dev['eer']:.2f}%"
                 f"  AUC {dev['auc']:.4f}  (threshold {rule}, {dev['n_bona_fide']} bona fide / {dev['n_attack']} "
                 "attack frames)")
    text += f"  {'best' if improved else f'best {best.metric} at epoch {best.epoch + 1}'}"
    return text
