"""LGSC (docs/papers.md: LGSC): a spoof-cue generator and an auxiliary classifier.

Generator: the ResNet18 U-Net of unet.py (stages E5, D1..D4), then an upsampling to S and a 3x3
conv + tanh: the cue (B, 3, S, S), in the image's (x - 127.5) / 128 scale.
Losses (weights reg 5, triplet 1, cls 5 by default, as the paper):
- regression: L1 of the cues of live samples towards 0 (spoof cues are left free);
- triplet: batch-all over (anchor live, positive live, negative spoof) triplets with margin 0.5, on
  the L2-normalised global-average-pooled features of E5 and D1..D4 (the paper's "E5..D4"; the
  choice of these five stages is ours), averaged over the stages; the batch-all loss is the mean
  over the triplets whose loss is positive;
- classification: an auxiliary ResNet18 on image + cue, one logit, BCE on is_attack.
Score: the mean absolute cue. The model returns one packed tensor (cue, logit, stage features);
`unpack` splits it.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import MODELS, FasModel
from .unet import STAGE_CHANNELS, ResNet18UNet



def batch_all_triplet(features: torch.Tensor, is_attack: torch.Tensor, margin: float = 0.5
                      ) -> tuple[torch.Tensor, int, int]:
    """(loss, positive triplets, all valid triplets) of (B, C) L2-normalised features: anchors and
    positives live (a != p), negatives spoof; loss = mean of relu(d(a, p) - d(a, n) + margin) over
    the triplets where it is positive (0 when there are none). d: Euclidean distance."""
    d = torch.cdist(features, features)
    live = ~is_attack.bool()
    spoof = is_attack.bool()
    valid = (live[:, None, None] & live[None, :, None] & spoof[None, None, :])
    valid &= ~torch.eye(len(features), dtype=torch.bool, device=features.device)[:, :, None]
    loss = F.relu(d[:, :, None] - d[:, None, :] + margin) * valid
    positive = (loss > 1e-12) & valid
    n_pos = int(positive.sum())
    total = loss.sum() / n_pos if n_pos else loss.sum() * 0.0
    return total, n_pos, int(valid.sum())


def unpack(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """(cue (B, 3, S, S), logit (B,), [stage features (B, C) for E5, D1..D4]) of a packed output."""
    extra = 1 + sum(STAGE_CHANNELS)
    side = math.isqrt(int(out.shape[1] - extra) // 3)  # int(): a plain number also while tracing (ONNX)
    cue = out[:, :3 * side * side].view(-1, 3, side, side)
    at = 3 * side * side
    logit = out[:, at]
    feats, at = [], at + 1
    for c in STAGE_CHANNELS:
        feats.append(out[:, at:at + c])
        at += c
    return cue, logit, feats


class LGSC(FasModel):
    """(B, 3, S, S) image -> packed (cue, logit, stage features). `width` is not used (torchvision's
    ResNet18 has no width setting); `reg`, `triplet`, `cls`: the loss weights; `margin`: the
    triplet margin; `pretrained`: "imagenet" or a resnet18 state-dict file for the encoder."""

    train_needs = needs = ()
    balanced = True  # the trainer draws live:spoof 1:1 batches for it
    card = {"outputs": "3 x S x S spoof cue (tanh) + auxiliary logit",
            "loss": "5 L1(live cues) + 1 batch-all triplet (E5, D1..D4 features, margin 0.5) + 5 BCE(classifier on image + cue)",
            "score": "mean |cue|"}

    def __init__(self, width: float = 1.0, reg: float = 5.0, triplet: float = 1.0, cls: float = 5.0,
                 margin: float = 0.5, pretrained: str | None = None):
        super().__init__()
        from torchvision.models import resnet18

        self.unet = ResNet18UNet(pretrained)  # the generator's encoder takes --pretrained; the classifier starts random
        self.to_cue = nn.Conv2d(64, 3, 3, padding=1)
        aux = resnet18(weights=None)
        aux.fc = nn.Linear(aux.fc.in_features, 1)
        self.classifier = aux
        self.weights, self.margin = (reg, triplet, cls), margin

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        stages = self.unet(image)
        cue = torch.tanh(self.to_cue(F.interpolate(stages[-1], size=image.shape[-2:], mode="bilinear",
                                                   align_corners=False)))
        logit = self.classifier(image + cue)
        feats = [F.normalize(f.mean(dim=(2, 3)), dim=1) for f in stages]
        return torch.cat([cue.flatten(1), logit, *feats], dim=1)

    def loss(self, out, batch):
        cue, logit, feats = unpack(out)
        attack = batch["is_attack"].bool()
        live = ~attack
        reg = cue[live].abs().mean() if live.any() else cue.sum() * 0.0
        trip = torch.stack([batch_all_triplet(f, attack, self.margin)[0] for f in feats]).mean()
        cls = F.binary_cross_entropy_with_logits(logit, attack.float())
        w_reg, w_trip, w_cls = self.weights
        return w_reg * reg + w_trip * trip + w_cls * cls, {"reg": reg.detach(), "triplet": trip.detach(),
                                                           "cls": cls.detach()}

    def score(self, out, batch):
        return unpack(out)[0].abs().flatten(1).mean(dim=1)


@MODELS.register("lgsc", options=("pretrained",))
def lgsc(**kw) -> LGSC:
    return LGSC(**kw)
