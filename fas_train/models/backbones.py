"""Feature backbones by name for the models that take `--backbone` (ccdd): each factory returns a
module mapping (B, 3, S, S) inputs to (B, C) global-average-pooled features, and C."""

from __future__ import annotations

import torch.nn as nn

from annotator.core.registry import Registry

from .pretrained import load_backbone

BACKBONES: Registry = Registry("backbone")


def _torchvision_resnet(name: str, pretrained: str | None) -> tuple[nn.Module, int]:
    import torchvision.models as tvm

    net = getattr(tvm, name)(weights=None)
    load_backbone(net, name, pretrained)
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


@BACKBONES.register("resnet18")
def resnet18(pretrained: str | None = None) -> tuple[nn.Module, int]:
    return _torchvision_resnet("resnet18", pretrained)


@BACKBONES.register("resnet50")
def resnet50(pretrained: str | None = None) -> tuple[nn.Module, int]:
    return _torchvision_resnet("resnet50", pretrained)
