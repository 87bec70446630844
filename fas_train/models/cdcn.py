"""CDCN and CDCN++ (Yu et al. 2020): central difference networks regressing a 32x32 map.

CDCN (docs/papers.md): conv 64; three blocks 128-196-128, each followed by a max-pool; the three block
outputs resized to 32x32 and concatenated (384); head 384 -> 128 -> 64 -> 1 with ReLU; theta 0.7.
CDCN++ here is CDCN with the paper's multiscale spatial attention (kernels 7, 5, 3 on the
channel-mean and channel-max maps) on the three block outputs; the NAS-searched block widths of
CDCN++ are not reproduced (choice, stated here).

Target: the live channel of the three-channel label at 32x32 (`pyramid/32`, channel 1), i.e.
pseudo-depth on the live face and 0 on attack regions — CDCN's "depth for bona fide, zeros for
attacks", extended to partial attacks. Loss: MSE + contrastive depth loss. Attack score: 1 - the
mean of the predicted map.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import MODELS, FasModel
from .cdc import CDConv, contrastive_depth_loss, conv_bn_relu


def _block(cin: int, widths: tuple[int, int, int], theta: float) -> nn.Sequential:
    a, b, c = widths
    return nn.Sequential(conv_bn_relu(CDConv(cin, a, theta=theta), a), conv_bn_relu(CDConv(a, b, theta=theta), b),
                         conv_bn_relu(CDConv(b, c, theta=theta), c), nn.MaxPool2d(3, stride=2, padding=1))


class SpatialAttention(nn.Module):
    def __init__(self, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(a))


class CDCN(FasModel):
    """(B, 3, S, S) image -> (B, 1, 32, 32) map. width scales every channel count (1.0 = paper)."""

    train_needs = needs = ("pyramid/32",)
    map_size = 32
    card = {"outputs": "1 x 32 x 32 live-depth map", "loss": "MSE + contrastive depth loss vs the live channel of pyramid/32",
            "score": "1 - the map's mean"}

    def __init__(self, theta: float = 0.7, width: float = 1.0, attention: bool = False):
        super().__init__()
        w = lambda c: max(4, int(round(c * width)))  # noqa: E731
        widths = (w(128), w(196), w(128))
        self.stem = conv_bn_relu(CDConv(3, w(64), theta=theta), w(64))
        self.blocks = nn.ModuleList([_block(w(64), widths, theta), _block(widths[2], widths, theta),
                                     _block(widths[2], widths, theta)])
        self.attention = nn.ModuleList([SpatialAttention(k) for k in (7, 5, 3)]) if attention else None
        c = self.feature_channels = 3 * widths[2]
        self.head = nn.Sequential(conv_bn_relu(CDConv(c, w(128), theta=theta), w(128)),
                                  conv_bn_relu(CDConv(w(128), w(64), theta=theta), w(64)),
                                  CDConv(w(64), 1, theta=theta), nn.ReLU())

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """The three block outputs resized to 32x32 and concatenated: (B, feature_channels, 32, 32)."""
        x = self.stem(image)
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            f = self.attention[i](x) if self.attention is not None else x
            feats.append(F.interpolate(f, size=(self.map_size, self.map_size), mode="bilinear", align_corners=False))
        return torch.cat(feats, dim=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image))

    def target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return batch["pyramid/32"][:, 1:2]

    def loss(self, out, batch):
        t = self.target(batch)
        mse = F.mse_loss(out, t)
        cd = contrastive_depth_loss(out, t)
        return mse + cd, {"mse": mse.detach(), "cd": cd.detach()}

    def score(self, out, batch):
        return 1.0 - out.flatten(1).mean(dim=1)


@MODELS.register("cdcn")
def cdcn(**kw) -> CDCN:
    return CDCN(**kw)


@MODELS.register("cdcnpp")
def cdcnpp(**kw) -> CDCN:
    return CDCN(attention=True, **kw)
