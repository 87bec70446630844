"""segdec (docs/papers.md: Segmentation-decoder supplement): a live/spoof classifier with a
segmentation decoder and a supervised contrastive loss on its embeddings.

Network: the ResNet18 U-Net of unet.py; the classifier is one linear logit on the pooled E5
features; the embedding a 2-layer MLP (512 -> 256 -> 128) on the same, L2-normalised; the decoder's
D4 map, upsampled to S, goes through a 1x1 conv to C segmentation logits (sigmoid per channel).
Segmentation targets from the store's label (channels attack, live, background in [0, 1]):
- `seg_classes="binary"`: C = 2, channel 0 live (label live > 0), channel 1 spoof (label attack > 0);
- `seg_classes="types"`: C = 1 + number of canonical attack types (annotator.label.ATTACK_TYPES):
  channel 0 live, channel 1 + t the attack pixels of rows of type t (zero for other rows).
Loss = BCE(logit, is_attack) + w_con * supervised contrastive (live vs spoof as the classes,
temperature 0.1; anchors without a positive are skipped) + w_seg * mean per-pixel BCE of the C
channels. Score: sigmoid(logit). Pixel decisions for the segmentation HTER: a pixel is called spoof
when the spoof probability (binary: channel 1; types: the largest attack channel) is above 0.5.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import MODELS, FasModel, per_row, row_mean
from .unet import ResNet18UNet

EMBED = 128


def supervised_contrastive(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Khosla et al.'s SupCon over L2-normalised z (B, D): mean over anchors with at least one positive
    of -1/|P(i)| sum_p log(exp(z_i.z_p / t) / sum_{a != i} exp(z_i.z_a / t))."""
    n = len(z)
    sim = z @ z.T / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positive.sum(dim=1)
    keep = counts > 0
    if not keep.any():
        return z.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~positive, 0.0)).sum(dim=1)[keep] / counts[keep]
    return per_anchor.mean()


def seg_targets(label: torch.Tensor, attack_code: torch.Tensor | None, classes: str, n_types: int) -> torch.Tensor:
    """(B, C, S, S) 0/1 targets from a (B, 3, S, S) label in [0, 1] (see the module doc)."""
    live = (label[:, 1:2] > 0).float()
    attack = (label[:, 0:1] > 0).float()
    if classes == "binary":
        return torch.cat([live, attack], dim=1)
    per_type = torch.zeros((label.shape[0], n_types, *label.shape[-2:]), device=label.device)
    rows = torch.nonzero(attack_code >= 0).flatten()
    per_type[rows, attack_code[rows]] = attack[rows, 0]
    return torch.cat([live, per_type], dim=1)


class SegDec(FasModel):
    """(B, 3, S, S) -> packed (logit, embedding (128), C x S x S segmentation logits)."""

    train_needs = ("label",)
    weighs_rows = True  # its segmentation loss weighs each row: --weight-by
    needs = ()
    card = {"outputs": "live/spoof logit + 128-d embedding + C segmentation maps (binary: live, spoof; types: "
                       "live + one per attack type)",
            "loss": "BCE(logit) + w_con supervised contrastive (t 0.1) + w_seg per-pixel BCE vs the label maps",
            "score": "sigmoid(logit)"}

    def __init__(self, seg_classes: str = "binary", w_con: float = 0.5, w_seg: float = 0.5, width: float = 1.0,
                 pretrained: str | None = None, temperature: float = 0.1):
        super().__init__()
        from annotator.label import ATTACK_TYPES

        if seg_classes not in ("binary", "types"):
            raise ValueError(f"seg_classes must be binary or types, got {seg_classes!r}")
        self.seg_classes, self.w_con, self.w_seg, self.temperature = seg_classes, w_con, w_seg, temperature
        self.n_types = len(ATTACK_TYPES)
        self.channels = 2 if seg_classes == "binary" else 1 + self.n_types
        self.unet = ResNet18UNet(pretrained)
        self.classifier = nn.Linear(512, 1)
        self.embed = nn.Sequential(nn.Linear(512, 256), nn.ReLU(inplace=True), nn.Linear(256, EMBED))
        self.seg = nn.Conv2d(64, self.channels, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        stages = self.unet(image)
        pooled = stages[0].mean(dim=(2, 3))
        z = F.normalize(self.embed(pooled), dim=1)
        seg = self.seg(F.interpolate(stages[-1], size=image.shape[-2:], mode="bilinear", align_corners=False))
        return torch.cat([self.classifier(pooled), z, seg.flatten(1)], dim=1)

    def unpack(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logit (B,), embedding (B, 128), segmentation logits (B, C, S, S))."""
        side = math.isqrt(int(out.shape[1] - 1 - EMBED) // self.channels)  # int(): plain also while tracing
        return out[:, 0], out[:, 1:1 + EMBED], out[:, 1 + EMBED:].reshape(-1, self.channels, side, side)

    def spoof_probability(self, out: torch.Tensor) -> torch.Tensor:
        """(B, S, S) per-pixel spoof probability (see the module doc)."""
        seg = torch.sigmoid(self.unpack(out)[2])
        return seg[:, 1] if self.seg_classes == "binary" else seg[:, 1:].amax(dim=1)

    def loss(self, out, batch):
        logit, z, seg = self.unpack(out)
        attack = batch["is_attack"].bool()
        cls = F.binary_cross_entropy_with_logits(logit, attack.float())
        con = supervised_contrastive(z, attack.long(), self.temperature)
        target = seg_targets(batch["label"], batch.get("attack_code"), self.seg_classes, self.n_types)
        segl = row_mean(per_row(F.binary_cross_entropy_with_logits(
            seg, F.interpolate(target, size=seg.shape[-2:], mode="nearest"), reduction="none")), batch)
        return cls + self.w_con * con + self.w_seg * segl, {"cls": cls.detach(), "contrastive": con.detach(),
                                                              "segmentation": segl.detach()}

    def score(self, out, batch):
        return torch.sigmoid(out[:, 0])


@MODELS.register("segdec", options=("pretrained", "seg_classes", "w_con", "w_seg"))
def segdec(**kw) -> SegDec:
    return SegDec(**kw)
