"""CCDD, image branch (docs/papers.md: Domain-agnostic features): a live/spoof classifier whose
features are made domain-agnostic by a class-conditional domain discriminator behind a gradient
reversal layer (GRL).

Backbone: torchvision's ResNet18 (global-average-pooled 512 features). Classifier: one linear
logit, BCE on is_attack. Discriminator: shared FC(512 -> 256)-ReLU-Dropout(0.5), then a live head and
a spoof head, each a linear layer predicting the source domain (the store a row came from: the
batch's `domain`) of the rows of its own class only (cross-entropy over those rows; 0 when the batch
has none). The GRL passes features unchanged forward and multiplies the gradient by -lambda
backward; lambda follows the DANN schedule the paper uses, lambda(p) = 2 / (1 + exp(-10 p)) - 1 for
training progress p in [0, 1] (set by the trainer each step through `progress`), logged per step.
Score: sigmoid(logit). The video branch is not built yet.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

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


class CCDD(FasModel):
    """(B, 3, S, S) image -> (B, 1 + 2 D): the live/spoof logit, then the live head's and the spoof
    head's D domain logits. `domains`: the number of source domains (the training stores, or the
    values of the meta column `domain_key`); `width` is not used."""

    train_needs = needs = ()
    card = {"outputs": "live/spoof logit + domain logits of the live and the spoof discriminator head",
            "loss": "BCE(logit, is_attack) + CE of each class-conditional head on its class's rows, behind a GRL "
                    "(lambda = 2/(1+exp(-10p))-1)",
            "score": "sigmoid(logit)"}

    def __init__(self, domains: int = 1, width: float = 1.0, dropout: float = 0.5, pretrained: str | None = None,
                 domain_key: str = "", domain_values: list | None = None):
        # domain_key / domain_values: recorded with the run; the trainer maps each row's value to its domain
        super().__init__()
        from torchvision.models import resnet18

        from .pretrained import load_backbone

        net = resnet18(weights=None)
        load_backbone(net, "resnet18", pretrained)
        net.fc = nn.Identity()
        self.backbone = net
        self.classifier = nn.Linear(512, 1)
        self.shared = nn.Sequential(nn.Linear(512, 256), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.live_head = nn.Linear(256, max(1, domains))
        self.spoof_head = nn.Linear(256, max(1, domains))
        self.domains = max(1, domains)
        self.progress = 0.0  # training progress in [0, 1]: the trainer sets it every step

    def on_step(self, progress: float) -> None:
        self.progress = progress

    @property
    def lam(self) -> float:
        return dann_lambda(self.progress)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        f = self.backbone(image)
        h = self.shared(grl(f, self.lam))
        return torch.cat([self.classifier(f), self.live_head(h), self.spoof_head(h)], dim=1)

    def loss(self, out, batch):
        attack = batch["is_attack"].bool()
        logit, live_d, spoof_d = out[:, 0], out[:, 1:1 + self.domains], out[:, 1 + self.domains:]
        cls = F.binary_cross_entropy_with_logits(logit, attack.float())
        domain = batch["domain"].long()
        zero = out.sum() * 0.0

        def head_loss(logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits[rows], domain[rows]) if rows.any() else zero

        disc = head_loss(live_d, ~attack) + head_loss(spoof_d, attack)
        return cls + disc, {"cls": cls.detach(), "domain": disc.detach(),
                            "lambda": torch.tensor(self.lam, device=out.device)}

    def score(self, out, batch):
        return torch.sigmoid(out[:, 0])


@MODELS.register("ccdd")
def ccdd(**kw) -> CCDD:
    return CCDD(**kw)
