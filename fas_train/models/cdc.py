"""Central difference convolutions (CDCN, Yu et al. 2020) and the dual-cross kernels of DC-CDN (2021).

y = conv(x, W) - theta * conv(x, sum of W over its window) — the second term is a 1x1 conv with the
summed kernel (CDCN, docs/papers.md). Kernels are assembled from the weights at call time, so they live on
the weights' (and the input's) device and dtype.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class CDConv(nn.Module):
    """3x3 central difference conv: (B, Cin, H, W) -> (B, Cout, H/stride, W/stride)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, theta: float = 0.7):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        self.stride, self.theta = stride, theta

    def kernel(self) -> torch.Tensor:
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel()
        y = F.conv2d(x, k, stride=self.stride, padding=1)
        if self.theta == 0:
            return y
        return y - self.theta * F.conv2d(x, k.sum(dim=(2, 3), keepdim=True), stride=self.stride)


class CrossConv(CDConv):
    """DC-CDN's 5-weight cross kernels with central difference: "+" (horizontal-vertical, the
    centre and its 4 edge neighbours) or "x" (diagonal, the centre and its 4 corners)."""

    _PLUS = (1, 3, 4, 5, 7)  # positions in the flattened 3x3 window
    _DIAG = (0, 2, 4, 6, 8)

    def __init__(self, cin: int, cout: int, shape: str = "+", stride: int = 1, theta: float = 0.8):
        super().__init__(cin, cout, stride, theta)
        if shape not in ("+", "x"):
            raise ValueError(f"cross shape must be '+' or 'x', got {shape!r}")
        self.weight = nn.Parameter(torch.empty(cout, cin, 5))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        self.register_buffer("_where", torch.tensor(self._PLUS if shape == "+" else self._DIAG), persistent=False)

    def kernel(self) -> torch.Tensor:
        cout, cin, _ = self.weight.shape
        k = self.weight.new_zeros(cout, cin, 9)
        k = k.index_copy(2, self._where.to(k.device), self.weight)
        return k.view(cout, cin, 3, 3)


def conv_bn_relu(conv: nn.Module, cout: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def contrastive_depth_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Contrastive depth loss (Wang et al. 2020): the 8 kernels with -1 at the centre and +1 at one
    neighbour, applied per channel without padding to (B, C, H, W) prediction and target; MSE
    (reduction "mean"), or (B,) per row ("row")."""
    c = pred.shape[1]
    k = pred.new_zeros(8, 9)
    neighbours = [0, 1, 2, 3, 5, 6, 7, 8]
    k[torch.arange(8), neighbours] = 1
    k[:, 4] = -1
    k = k.view(8, 1, 3, 3).repeat(c, 1, 1, 1)  # (8C, 1, 3, 3): 8 kernels per channel, depthwise
    diff = F.conv2d(pred, k, groups=c) - F.conv2d(target.to(pred.dtype), k, groups=c)
    sq = diff * diff
    return sq.flatten(1).mean(dim=1) if reduction == "row" else sq.mean()
