"""Training logs of a run directory: log.csv (one row per step and per epoch) and TensorBoard (tb/)."""

from __future__ import annotations

import csv
from pathlib import Path


DEV_FIGURES = ("hter", "acer", "eer", "auc", "threshold")


class RunLog:
    """Appends to RUN/log.csv (columns kind, epoch, step, loss, lr, seconds, parts as JSON: a step's
    loss parts, an epoch's dev figures) and writes the same scalars to RUN/tb; a resumed run keeps
    appending."""

    COLUMNS = ("kind", "epoch", "step", "loss", "lr", "seconds", "parts")

    def __init__(self, run: Path):
        self.path = Path(run) / "log.csv"
        self.tb_dir = Path(run) / "tb"

    def __enter__(self) -> "RunLog":
        new = not self.path.exists()
        self._file = open(self.path, "a", newline="")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(self.COLUMNS)
        from torch.utils.tensorboard import SummaryWriter

        self._tb = SummaryWriter(str(self.tb_dir))
        return self

    def __exit__(self, *exc) -> None:
        self._tb.close()
        self._file.close()

    def step(self, epoch: int, step: int, loss: float, parts: dict[str, float], lr: float) -> None:
        import json

        self._csv.writerow(["step", epoch + 1, step, f"{loss:.6g}", f"{lr:.6g}", "", json.dumps(parts)])
        self._tb.add_scalar("train/loss", loss, step)
        for k, v in parts.items():
            self._tb.add_scalar(f"train/{k}", v, step)
        self._tb.add_scalar("train/lr", lr, step)

    def epoch(self, epoch: int, step: int, loss: float, seconds: float, dev: dict | None = None,
              best: bool = False) -> None:
        """The epoch's row: its mean training loss and, in parts, the dev figures (dev_hter, dev_acer,
        dev_eer, dev_auc, dev_threshold) and best (1 when this epoch became best.pt)."""
        import json

        parts = {f"dev_{k}": v for k, v in (dev or {}).items() if k in DEV_FIGURES} | {"best": int(best)}
        self._csv.writerow(["epoch", epoch + 1, step, f"{loss:.6g}", "", f"{seconds:.2f}", json.dumps(parts)])
        self._file.flush()
        self._tb.add_scalar("epoch/loss", loss, epoch + 1)
        for k, v in parts.items():
            if k != "best":
                self._tb.add_scalar(f"dev/{k.removeprefix('dev_')}", v, epoch + 1)
        self._tb.flush()
