"""Training and scoring loops. A run directory holds config.json, rows.json (the rows of each group),
last.pt (the checkpoint, written atomically after every epoch), best.pt (the epoch with the best dev
figure), log.csv and tb/ (TensorBoard); a rerun on the same directory with the same settings resumes
after the last finished epoch."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from annotator.core.errors import AnnotatorError, SettingError
from fas_train.checkpoints import keep_as, load_checkpoint, restore, save_checkpoint
from fas_train.config import ANNOTATE_CONFIG, BEST_CHECKPOINT, CHECKPOINT, TrainConfig
from fas_train.dev_check import Best, can_rank, dev_metrics, epoch_line
from fas_train.row_counts import describe, row_counts
from fas_train.data import StoreStream
from fas_train.inputs import Augment, to_inputs
from fas_train.models import FasModel
from fas_train.scoring import autocast, device_of, fields_for, loader, score, scores_of, scoring_loader
from fas_train.selection import Selection, select

SYNC_EVERY = 10  # training steps between reads of the loss by the host
RESUMABLE = ("epochs", "patience")  # settings a resumed run may change


class LossReader:
    """Losses of the steps of one epoch, read from the device every SYNC_EVERY steps in one copy
    (not a stall at every step), then checked, summed and logged."""

    def __init__(self, log, epoch: int):
        self.log, self.epoch = log, epoch
        self.pending: list[tuple[int, torch.Tensor, int, dict, float]] = []  # step, loss, rows, parts, lr
        self.total, self.rows = 0.0, 0

    def add(self, step: int, loss: torch.Tensor, rows: int, parts: dict, lr: float, bar) -> None:
        self.pending.append((step, loss.detach(), rows, parts, lr))
        if len(self.pending) == SYNC_EVERY:
            self.flush(bar)

    def flush(self, bar) -> None:
        if not self.pending:
            return
        # image and video steps name their parts differently: one table over all names, each row
        # logging its own
        names = sorted({n for *_, parts, _ in self.pending for n in parts})
        none = torch.tensor(float("nan"), device=self.pending[0][1].device)
        table = torch.stack([torch.stack([v.float(), *(p.get(n, none).float() for n in names)])
                             for _, v, _, p, _ in self.pending]).cpu().tolist()
        for row, (step, _, rows, parts, lr) in zip(table, self.pending):
            if not math.isfinite(row[0]):
                raise AnnotatorError(f"loss became {row[0]} at epoch {self.epoch + 1} step {step}; lower --lr")
            self.total, self.rows = self.total + row[0] * rows, self.rows + rows
            self.log.step(self.epoch, step, row[0], {n: x for n, x in zip(names, row[1:]) if n in parts}, lr)
        bar.set_postfix(loss=f"{table[-1][0]:.4f}")
        self.pending.clear()



@dataclass
class TrainResult:
    run: str
    epochs: int  # the last epoch run (1-based): cfg.epochs, or fewer when patience stopped the run
    losses: list[float]  # mean training loss of each epoch run by this call
    model: FasModel  # the trained model (the last epoch's), in eval mode
    dev: list[dict] = dataclasses.field(default_factory=list)  # each epoch's dev figures ({} without them)
    best: dict = dataclasses.field(default_factory=dict)  # {metric, epoch (1-based), value}
    stopped_early: bool = False
    rows: dict = dataclasses.field(default_factory=dict)  # row_counts() of train / dev / test

    def summary(self) -> dict:
        return {"run": self.run, "epochs": self.epochs, "losses": self.losses,
                "dev": [{k: round(v, 6) for k, v in d.items() if k in ("hter", "acer", "eer", "auc")} for d in self.dev],
                "best": self.best, "stopped_early": self.stopped_early}


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def train(cfg: TrainConfig, out: str, device: str | None = None, progress: bool = True) -> TrainResult:
    """Train cfg.model on the `train` group of cfg.protocol, resuming `out` when it holds a run.
    Before the first step it says the rows of each group (RUN/rows.json); after each epoch it scores
    the dev group, logs its figures and keeps RUN/best.pt (fas_train/dev_check.py)."""
    cfg.validate()
    dev = device_of(device)
    run = Path(out)
    torch.manual_seed(cfg.seed)
    model = cfg.build_model()
    if cfg.weight_by and not model.weighs_rows:
        raise SettingError("weight_by", f"model {cfg.model} has no per-row pixel loss to weigh (`fas-train models` "
                                        "lists the models that do)")
    groups = _select_groups(cfg, model)
    _save_settings(cfg, run)
    rows = row_counts(groups, cfg.model_options.get("domain_values"))
    (run / "rows.json").write_text(json.dumps(rows, indent=2))
    for line in describe(rows, cfg.exclude_flagged):
        say(line)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=0.5)
    ckpt = _resume(run / CHECKPOINT, cfg, model, opt, sched)
    start, step = (ckpt["epoch"] + 1, ckpt["step"]) if ckpt else (0, 0)
    ranks = can_rank(groups["dev"].meta["is_attack"])
    best = Best.from_checkpoint(ckpt, cfg.best_by if ranks else "loss")
    if not ranks and cfg.best_by != "loss":
        say(f"note: the dev group holds {rows['dev']['bona_fide']} bona fide and {rows['dev']['attack']} attack rows: "
            "no dev figures; best.pt is the epoch of the lowest training loss")
    stream, videos = _streams(cfg, model, groups["train"])
    steps = len(stream) + (len(videos) if videos else 0)  # per epoch
    epochs = _Epochs(cfg, model, opt, dev, Augment() if cfg.augment else None,
                     torch.Generator().manual_seed(cfg.seed), steps, progress)
    from fas_train.logs import RunLog

    # a rerun of a run that patience ended trains no further
    result = TrainResult(str(run), start, [], model, rows=rows, stopped_early=_out_of_patience(cfg, best, start - 1))
    if start and not result.stopped_early:
        say(f"resuming {run} after epoch {start} of {cfg.epochs}" if start < cfg.epochs else
            f"nothing to train: {run} has run {start} epoch(s) and --epochs is {cfg.epochs} (give more to train on)")
    batches = [loader(stream, cfg.workers)]  # once per run: their workers persist across epochs
    dev_batches = scoring_loader(model, groups["dev"], cfg.batch, cfg.workers) if ranks else None
    if videos:
        batches.append(loader(videos, cfg.workers))
    with RunLog(run) as log:
        for epoch in range(start, start if result.stopped_early else cfg.epochs):
            for each in (stream, videos):
                if each is not None:
                    each.set_epoch(epoch)
            t0 = time.perf_counter()
            step, mean = epochs.run(batches, log, epoch, step)
            sched.step()
            figures = dev_metrics(scores_of(groups["dev"], score(model, dev_batches, cfg.size, dev)),
                                 cfg.threshold) if ranks else {}
            improved = best.offer(epoch, mean if best.metric == "loss" else figures[best.metric])
            log.epoch(epoch, step, mean, time.perf_counter() - t0, figures, improved)
            save_checkpoint(run / CHECKPOINT, cfg, model, opt, sched, epoch, step,
                            {"dev": figures, "best": best.as_dict()})
            if improved:
                keep_as(run / CHECKPOINT, run / BEST_CHECKPOINT)
            say(epoch_line(epoch, cfg.epochs, mean, figures, best, improved, cfg.threshold))
            result.losses.append(mean)
            result.dev.append(figures)
            result.epochs = epoch + 1
            if _out_of_patience(cfg, best, epoch):
                result.stopped_early = True
                break
    if result.stopped_early:
        say(f"stopped early: no better dev {best.metric} in {cfg.patience} epoch(s) after epoch {best.epoch + 1} "
            f"(--patience {cfg.patience}); best.pt holds epoch {best.epoch + 1}")
    result.best = {**best.as_dict(), "epoch": best.epoch + 1}
    result.model = model.eval()
    return result


def _out_of_patience(cfg: TrainConfig, best: Best, epoch: int) -> bool:
    """Whether patience ends the run after `epoch` (0-based; -1: none run yet)."""
    return bool(cfg.patience) and best.epoch >= 0 and best.waited(epoch) >= cfg.patience


def _select_groups(cfg: TrainConfig, model: FasModel) -> dict[str, Selection]:
    """The rows of the train, dev and test groups (checked now: a bad protocol or an empty split must
    fail before hours of training)."""
    key = cfg.model_options.get("domain_key")
    columns = tuple(c for c in (key, cfg.weight_by) if c and not c.startswith("audit:"))
    sel = select(cfg.train, cfg.protocol, "train", needs=model.needs, columns=columns,
                 exclude_flagged=cfg.exclude_flagged)
    if cfg.weight_by:
        sel.weigh_rows(cfg.weight_by, cfg.weight_floor)
    if key:  # domains from a meta column instead of the stores
        sel.use_domain_key(key, cfg.model_options["domain_values"])
    return {"train": sel, "dev": select(cfg.dev_stores, cfg.protocol, "dev", needs=model.needs),
            "test": select(cfg.test_stores, cfg.protocol, "test", needs=model.needs)}


def _save_settings(cfg: TrainConfig, run: Path) -> None:
    """Write RUN/config.json and the first store's annotate config; a one-line error when run holds
    a run with other settings (the epoch count may differ: a rerun trains on)."""
    run.mkdir(parents=True, exist_ok=True)
    saved = run / "config.json"
    if saved.exists():
        before = json.loads(saved.read_text())
        now = json.loads(json.dumps(dataclasses.asdict(cfg)))
        # a setting added after a run was made counts as its default there
        defaults = json.loads(json.dumps(dataclasses.asdict(TrainConfig(model=cfg.model, train=cfg.train))))
        diff = [k for k in now if k not in RESUMABLE and before.get(k, defaults[k]) != now[k]]
        if diff:
            raise AnnotatorError(f"{run} holds a run with different settings ({', '.join(diff)}); "
                                 "use another --out or the same settings to resume")
    saved.write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    from annotator.store import open_store

    store_config = dict(open_store(cfg.train[0]).attrs.get("config", {}))
    (run / ANNOTATE_CONFIG).write_text(json.dumps(store_config, indent=2))


def _resume(path: Path, cfg: TrainConfig, model: FasModel, opt, sched) -> dict | None:
    """The checkpoint of the run (its state loaded into model, opt and sched), or None for a new run."""
    if not path.exists():
        return None
    ckpt = load_checkpoint(path, cfg.model)
    restore(model, ckpt, path)
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    return ckpt


def _streams(cfg: TrainConfig, model: FasModel, sel: Selection):
    """(the image stream, the video stream or None) of the training rows."""
    mcrea = {"gamma": cfg.mcrea, "rho": cfg.mcrea_rho, "scheme": cfg.mcrea_scheme} if cfg.mcrea else None
    stream = StoreStream(sel, fields_for(model, True), cfg.batch, shuffle=True, seed=cfg.seed, drop_last=len(sel) > cfg.batch,
                         mcrea=mcrea, flip=cfg.augment, balance=model.balanced)
    videos = None
    if model.frames:  # a video branch: its steps alternate with the image steps
        from fas_train.videos import VideoStream

        videos = VideoStream(sel, fields_for(model, True), model.video_batch, model.frames, shuffle=True,
                             seed=cfg.seed, flip=cfg.augment)
    return stream, videos


@dataclass
class _Epochs:
    """What the training epochs of one run share; run() trains one."""

    cfg: TrainConfig
    model: FasModel
    opt: torch.optim.Optimizer
    device: torch.device
    augment: Augment | None
    gen: torch.Generator
    steps: int  # per epoch
    progress: bool

    def run(self, batches: list, log, epoch: int, step: int) -> tuple[int, float]:
        """One epoch over the alternating batches; (steps done after it, mean training loss)."""
        from tqdm import tqdm

        cfg, model, opt = self.cfg, self.model, self.opt
        self.gen.manual_seed(cfg.seed * 1_000_003 + epoch)
        model.train()
        losses_read = LossReader(log, epoch)
        bar = tqdm(alternate(*batches), total=self.steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                   disable=not self.progress)
        for branch, batch in bar:
            model.on_step(step / max(1, cfg.epochs * self.steps))
            loss, parts, rows = self._loss(branch, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            losses_read.add(step, loss, rows, parts, opt.param_groups[0]["lr"], bar)
        losses_read.flush(bar)
        return step, losses_read.total / max(losses_read.rows, 1)

    def _loss(self, branch: int, batch: dict):
        """(loss, its parts, rows) of an image batch (branch 0) or a video batch (branch 1)."""
        cfg, model, dev = self.cfg, self.model, self.device
        if branch == 0:
            x = to_inputs(batch, dev, cfg.size, self.augment, self.gen)
            with autocast(dev):
                pred = model(x["image"])
            loss, parts = model.loss(pred.float(), x)
        else:
            x = to_inputs(batch, dev, cfg.size, self.augment, self.gen, group=model.frames)
            with autocast(dev):
                pred = model.forward_video(x["image"])
            loss, parts = model.video_loss(pred.float(), x)
        return loss, parts, len(x["image"])


def alternate(*iterables):
    """(k, item) from each iterable in turn, one item at a time, until all are exhausted (one that
    ends first drops out and the others go on)."""
    its = [iter(x) for x in iterables]
    live = list(range(len(its)))
    while live:
        for k in list(live):
            try:
                yield k, next(its[k])
            except StopIteration:
                live.remove(k)


