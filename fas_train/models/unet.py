"""A U-Net on torchvision's ResNet18, shared by the models that predict pixel maps (lgsc, segdec).

Encoder stages E1 (stem, S/2), E2 (S/4), E3 (S/8), E4 (S/16), E5 (S/32); decoder stages D1 (E5 up +
E4), D2 (+ E3), D3 (+ E2), D4 (+ E1), each a 3x3 conv + BN + ReLU after the skip concatenation.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

STAGE_CHANNELS = (512, 256, 128, 64, 64)  # E5, D1, D2, D3, D4


def _up_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResNet18UNet(nn.Module):
    """(B, 3, S, S) -> [E5, D1, D2, D3, D4] feature maps; `pretrained` ("imagenet" or a resnet18
    state-dict file) initialises the encoder."""

    def __init__(self, pretrained: str | None = None):
        super().__init__()
        from torchvision.models import resnet18

        from .pretrained import load_backbone

        enc = resnet18(weights=None)
        load_backbone(enc, "resnet18", pretrained)
        self.e1 = nn.Sequential(enc.conv1, enc.bn1, enc.relu)
        self.e2 = nn.Sequential(enc.maxpool, enc.layer1)
        self.e3, self.e4, self.e5 = enc.layer2, enc.layer3, enc.layer4
        self.d1 = _up_block(512 + 256, 256)
        self.d2 = _up_block(256 + 128, 128)
        self.d3 = _up_block(128 + 64, 64)
        self.d4 = _up_block(64 + 64, 64)

    @staticmethod
    def _up(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], dim=1)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        e1 = self.e1(image)
        e2 = self.e2(e1)
        e3 = self.e3(e2)
        e4 = self.e4(e3)
        e5 = self.e5(e4)
        d1 = self.d1(self._up(e5, e4))
        d2 = self.d2(self._up(d1, e3))
        d3 = self.d3(self._up(d2, e2))
        d4 = self.d4(self._up(d3, e1))
        return [e5, d1, d2, d3, d4]
