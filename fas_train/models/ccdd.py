"""CCDD (docs/papers.md: Domain-agnostic features): a live/spoof classifier whose features are made
domain-agnostic by class-conditional domain discriminators behind gradient reversal layers (GRL),
with an optional video branch.

Image branch (IB): a backbone from fas_train/models/backbones.py (ResNet18 by default; the paper's is
ResNet-50) -> (B, C) pooled features -> one live/spoof logit (BCE on is_attack). Its discriminator
(DIB) sits behind a GRL: FC1-ReLU-Dropout, FC2-ReLU-Dropout (256 wide, dropout 0.5: the paper's
layer list; the widths are ours), then a live head and a spoof head, each a linear layer predicting
the source domain (the batch's `domain`: the store a row came from, or a meta column's value) of the
rows of its own class only (cross-entropy over those rows; 0 when the batch has none).

Video branch (VB, `video=True`): T frames of one video through the same backbone (shared weights),
an LSTM (C -> 256 hidden) over them, the last hidden state -> its own live/spoof logit and, behind
its own GRL, its own discriminator (DVB, the same layout). The trainer alternates an IB step on an
image batch with a VB step on a batch of whole-video sequences (fas_train/videos.py); the loss of each
is eq. 1 / eq. 2 of the paper with lambda_IB = lambda_VB = 1. The video score is the LSTM's.

GRL: identity forward, the gradient times -lambda backward. lambda: constant 0.2 as the paper's
experiments use (`grl_lambda=0.2`), or `grl_lambda="dann"`: the DANN schedule
2 / (1 + exp(-10 p)) - 1 over training progress p in [0, 1] (set by the trainer each step). Either
way it is logged per step. Score: sigmoid(logit).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from annotator.core.errors import SettingError

from .backbones import BACKBONES
from .base import MODELS, FasModel


class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.lam * grad, None


def grl(x: torch.Tensor, lam: float) -> torch.Tensor:
    """Identity forward; backward multiplies the incoming gradient by -lam."""
    return GradReverse.apply(x, lam)


def dann_lambda(p: float) -> float:
    """2 / (1 + exp(-10 p)) - 1: 0 at the start of training, towards 1 at the end."""
    return 2.0 / (1.0 + math.exp(-10.0 * min(max(p, 0.0), 1.0))) - 1.0


class Discriminator(nn.Module):
    """(B, dim) features -> (B, 2 D): the live head's D domain logits, then the spoof head's."""

    def __init__(self, dim: int, domains: int, hidden: int = 256, dropout: float = 0.5):
        super().__init__()
        self.shared = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                    nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.live_head = nn.Linear(hidden, domains)
        self.spoof_head = nn.Linear(hidden, domains)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        h = self.shared(f)
        return torch.cat([self.live_head(h), self.spoof_head(h)], dim=1)


def conditional_domain_loss(logits: torch.Tensor, is_attack: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the live head (first half of logits' columns) on the live rows plus that of
    the spoof head (second half) on the spoof rows; a head without rows of its class adds 0."""
    d = logits.shape[1] // 2
    attack = is_attack.bool()
    zero = logits.sum() * 0.0

    def head(cols: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(cols[rows], domain[rows].long()) if rows.any() else zero

    return head(logits[:, :d], ~attack) + head(logits[:, d:], attack)


class CCDD(FasModel):
    """forward: (B, 3, S, S) images -> (B, 1 + 2 D): the live/spoof logit, then the live head's and
    the spoof head's D domain logits. forward_video: (B * T, 3, S, S), B sequences of T frames in
    order -> (B, 1 + 2 D) of the video branch. `domains`: the number of source domains; `width` is
    not used; `frames` (T) and `video_batch` (sequences per VB step) matter with `video=True`."""

    train_needs = needs = ()
    card = {"outputs": "live/spoof logit + domain logits of the live and the spoof discriminator head "
                       "(per image; per video sequence with --video)",
            "loss": "BCE(logit, is_attack) + CE of each class-conditional head on its class's rows, behind a GRL "
                    "(lambda 0.2, or the DANN schedule); with --video IB and VB steps alternate",
            "score": "sigmoid(logit); with --video the video score is the LSTM's"}

    def __init__(self, domains: int = 1, width: float = 1.0, dropout: float = 0.5, pretrained: str | None = None,
                 backbone: str = "resnet18", grl_lambda: float | str = 0.2, video: bool = False, frames: int = 8,
                 video_batch: int = 6, hidden: int = 256, domain_key: str = "", domain_values: list | None = None):
        # domain_key / domain_values: recorded with the run; the trainer maps each row's value to its domain
        super().__init__()
        if grl_lambda != "dann" and not isinstance(grl_lambda, (int, float)):
            raise SettingError("grl_lambda", f"takes a number or `dann`, got {grl_lambda!r}")
        if video and (frames < 1 or video_batch < 1):
            raise SettingError("frames" if frames < 1 else "video_batch",
                               f"must be at least 1, got {frames if frames < 1 else video_batch}")
        self.backbone, dim = BACKBONES.create(backbone, pretrained=pretrained)
        self.domains = max(1, domains)
        self.classifier = nn.Linear(dim, 1)
        self.discriminator = Discriminator(dim, self.domains, dropout=dropout)
        self.grl_lambda = grl_lambda
        self.frames = frames if video else 0
        self.video_batch = video_batch if video else 0
        if video:
            self.lstm = nn.LSTM(dim, hidden, batch_first=True)
            self.video_classifier = nn.Linear(hidden, 1)
            self.video_discriminator = Discriminator(hidden, self.domains, dropout=dropout)
        self.progress = 0.0  # training progress in [0, 1]: the trainer sets it every step

    def on_step(self, progress: float) -> None:
        self.progress = progress

    @property
    def lam(self) -> float:
        return dann_lambda(self.progress) if self.grl_lambda == "dann" else float(self.grl_lambda)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        f = self.backbone(image)
        return torch.cat([self.classifier(f), self.discriminator(grl(f, self.lam))], dim=1)

    def forward_video(self, image: torch.Tensor) -> torch.Tensor:
        if not self.frames:
            raise SettingError("video", "this ccdd has no video branch; train it with --video")
        n = image.shape[0]
        if n % self.frames:
            raise ValueError(f"expected B * {self.frames} frames (whole sequences), got {n}")
        f = self.backbone(image).view(n // self.frames, self.frames, -1)
        _, (h, _) = self.lstm(f)
        h = h[-1]  # (B, hidden): the state after the last frame
        return torch.cat([self.video_classifier(h), self.video_discriminator(grl(h, self.lam))], dim=1)

    def loss(self, out, batch):
        cls = F.binary_cross_entropy_with_logits(out[:, 0], batch["is_attack"].float())
        disc = conditional_domain_loss(out[:, 1:], batch["is_attack"], batch["domain"])
        return cls + disc, {"cls": cls.detach(), "domain": disc.detach(),
                            "lambda": torch.tensor(self.lam, device=out.device)}

    def video_loss(self, out, batch):
        """Eq. 2 on a VB batch: out (B, 1 + 2 D) of forward_video; batch columns per frame (B * T)."""
        is_attack, domain = batch["is_attack"][::self.frames], batch["domain"][::self.frames]
        cls = F.binary_cross_entropy_with_logits(out[:, 0], is_attack.float())
        disc = conditional_domain_loss(out[:, 1:], is_attack, domain)
        return cls + disc, {"video_cls": cls.detach(), "video_domain": disc.detach(),
                            "lambda": torch.tensor(self.lam, device=out.device)}

    def score(self, out, batch):
        return torch.sigmoid(out[:, 0])

    def video_score(self, out):
        """(B,) attack scores of B sequences from forward_video's output."""
        return torch.sigmoid(out[:, 0])


@MODELS.register("ccdd", options=("pretrained", "domain_key", "backbone", "grl_lambda", "video", "frames", "video_batch",
                                  "domains"))
def ccdd(**kw) -> CCDD:
    return CCDD(**kw)
