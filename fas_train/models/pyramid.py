"""Pyramid supervision (docs/papers.md: Pyramid supervision): `resnet50_ps` and `cdcn_ps`.

Both read the store's `pyramid/<k>` levels (area means of the three-channel label, in [0, 1] after
fas_train/inputs.py) and return one tensor per batch, the maps of every scale flattened and
concatenated (so the trainer treats them as any other output); `unpack` splits it again.

Binary spoof targets (resnet50_ps), a choice the paper leaves open for partial attacks: a cell of
level k is spoof (1) when its attack channel outweighs its live channel and at most half of it is
background, else live / background (0). A whole-face print is 1 over the face, a bona fide face 0
everywhere, partial eyes 1 only on the eye cells.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import MODELS, FasModel
from .cdc import CDConv, contrastive_depth_loss
from .cdcn import CDCN


def binary_targets(level: torch.Tensor) -> torch.Tensor:
    """(B, 3, k, k) pyramid level in [0, 1] (attack, live, background) -> (B, 1, k, k) float 0/1."""
    attack, live, background = level[:, 0:1], level[:, 1:2], level[:, 2:3]
    return ((attack > live) & (background <= 0.5)).float()


def unpack(out: torch.Tensor, scales: tuple[int, ...], lead: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(the first `lead` columns, [(B, 1, k, k) per scale]) of a packed (B, lead + sum k^2) output."""
    maps, at = [], lead
    for k in scales:
        maps.append(out[:, at:at + k * k].view(-1, 1, k, k))
        at += k * k
    return out[:, :lead], maps


def _scales(scales) -> tuple[int, ...]:
    scales = tuple(sorted({int(k) for k in scales}, reverse=True))
    if not scales or any(k < 1 for k in scales):
        raise ValueError(f"pyramid scales must be positive integers, got {scales}")
    return scales


class ResNet50PS(FasModel):
    """(B, 3, S, S) image -> (B, 1 + sum k^2): the live/spoof logit, then the sigmoid spoof mask of
    each scale k. Features: torchvision's ResNet50; each scale k takes the deepest stage whose map is
    at least k x k for a 256 input (layer4 = S/32 for 8, 4, 2, 1; layer2 = S/8 for a single 32),
    average-pooled to k x k, then an unshared 1x1 conv + sigmoid. The masks, flattened and concatenated, feed
    the classifier (one linear layer). Loss: mean BCE over scales + BCE of the logit on is_attack.
    Score: sigmoid(logit). `width` scales the bottleneck widths (torchvision's width_per_group);
    `pretrained`: "imagenet", a resnet50 state-dict file, or None (random init, the default)."""

    card = {"outputs": "live/spoof logit + a k x k spoof mask per --pyramid scale (default 8, 4, 2, 1)",
            "loss": "mean BCE of the masks vs binary pyramid/<k> targets + BCE of the logit on is_attack",
            "score": "sigmoid(logit)"}

    def __init__(self, scales=(8, 4, 2, 1), width: float = 1.0, pretrained: str | None = None):
        super().__init__()
        from torchvision.models import resnet50

        from .pretrained import load_backbone

        self.scales = _scales(scales)
        self.train_needs = tuple(f"pyramid/{k}" for k in self.scales)
        self.needs = ()
        net = resnet50(weights=None, width_per_group=max(4, int(round(64 * width))))
        load_backbone(net, "resnet50", pretrained)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        channels = (256, 512, 1024, 2048)
        self.stage_of = {k: self.stage_for(k) for k in self.scales}
        self.heads = nn.ModuleDict({str(k): nn.Conv2d(channels[i], 1, 1) for k, i in self.stage_of.items()})
        self.classifier = nn.Linear(sum(k * k for k in self.scales), 1)

    @staticmethod
    def stage_for(k: int, size: int = 256) -> int:
        """The deepest stage (0-3, strides 4-32) whose map is at least k x k for a size x size input;
        fixed for the paper's 256 (other input sizes pool the same stage to k x k)."""
        fits = [i for i, stride in enumerate((4, 8, 16, 32)) if size // stride >= k]
        return fits[-1] if fits else 0

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        feats, x = [], self.stem(image)
        for stage in self.stages[:max(self.stage_of.values()) + 1]:
            x = stage(x)
            feats.append(x)
        masks = [torch.sigmoid(self.heads[str(k)](pool_to(feats[self.stage_of[k]], k))).flatten(1)
                 for k in self.scales]
        flat = torch.cat(masks, dim=1)
        return torch.cat([self.classifier(flat), flat], dim=1)

    def loss(self, out, batch):
        logit, masks = unpack(out, self.scales, lead=1)
        bce = torch.stack([F.binary_cross_entropy(m.clamp(1e-6, 1 - 1e-6), binary_targets(batch[f"pyramid/{k}"]))
                           for m, k in zip(masks, self.scales)]).mean()
        cls = F.binary_cross_entropy_with_logits(logit[:, 0], batch["is_attack"].float())
        return bce + cls, {"mask_bce": bce.detach(), "cls_bce": cls.detach()}

    def score(self, out, batch):
        return torch.sigmoid(out[:, 0])


class CDCNPS(CDCN):
    """CDCN with depth supervision at several scales: (B, 3, S, S) -> (B, sum k^2), the predicted
    live-depth map of each scale k (32: CDCN's own head; smaller k: an unshared 1x1 central
    difference conv on the concatenated features average-pooled to k, + ReLU). Loss per scale:
    MSE + contrastive depth loss against the live channel of `pyramid/<k>`, averaged over scales.
    Score: 1 - the mean over scales of each map's mean (the maps are live depth)."""

    card = {"outputs": "a k x k live-depth map per --pyramid scale (default 32, 16)",
            "loss": "mean over scales of MSE + contrastive depth loss vs the live channel of pyramid/<k>",
            "score": "1 - the mean over scales of each map's mean"}

    def __init__(self, scales=(32, 16), theta: float = 0.7, width: float = 1.0, attention: bool = False):
        super().__init__(theta=theta, width=width, attention=attention)
        self.scales = _scales(scales)
        self.train_needs = self.needs = tuple(f"pyramid/{k}" for k in self.scales)
        c = self.feature_channels
        self.side = nn.ModuleDict({str(k): nn.Sequential(CDConv(c, 1, theta=theta), nn.ReLU())
                                   for k in self.scales if k != self.map_size})

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        cat = self.features(image)
        maps = [self.head(cat) if k == self.map_size else self.side[str(k)](pool_to(cat, k))
                for k in self.scales]
        return torch.cat([m.flatten(1) for m in maps], dim=1)

    def loss(self, out, batch):
        _, maps = unpack(out, self.scales)
        mse, cd = [], []
        for m, k in zip(maps, self.scales):
            t = batch[f"pyramid/{k}"][:, 1:2]
            mse.append(F.mse_loss(m, t))
            cd.append(contrastive_depth_loss(m, t) if k >= 3 else torch.zeros((), device=m.device))
        mse, cd = torch.stack(mse).mean(), torch.stack(cd).mean()
        return mse + cd, {"mse": mse.detach(), "cd": cd.detach()}

    def score(self, out, batch):
        _, maps = unpack(out, self.scales)
        return 1.0 - torch.stack([m.flatten(1).mean(dim=1) for m in maps]).mean(dim=0)


def pool_to(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, k, k) area means: adaptive average pooling, written as a plain
    average pooling when H and W are multiples of k (the same values; ONNX exports only that form)."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h % k == 0 and w % k == 0:
        return F.avg_pool2d(x, (h // k, w // k))
    return F.adaptive_avg_pool2d(x, k)


@MODELS.register("resnet50_ps", options=("pretrained", "scales"))
def resnet50_ps(**kw) -> ResNet50PS:
    return ResNet50PS(**kw)


@MODELS.register("cdcn_ps", options=("scales",))
def cdcn_ps(**kw) -> CDCNPS:
    return CDCNPS(**kw)
