"""DC-CDN (Yu et al. 2021) with three output channels at the input resolution: the model of Fine-grained annotation (docs/papers.md).

Two streams of the same layout, one of "+" (horizontal-vertical) and one of "x" (diagonal) 5-weight
central difference kernels (theta 0.8): stem 80; block 1: 160, 256, 160; block 2: 192, 160, 224,
160; block 3: 160, 192, 160; each block ends in a max-pool. After each block a Cross Feature
Interaction Module mixes the streams, x1 <- g * x1 + (1 - g) * x2 and x2 <- h * x2 + (1 - h) * x1,
with learnable gates g = sigmoid(a), h = sigmoid(b) initialised at 0.5. Each stream concatenates
its three block outputs resized to 32x32 and reduces them to 160; the two heads are concatenated
and reduced to the map (160, then `channels` with ReLU). Fine-grained annotation asks for 3 channels and an output
as large as the input; the paper does not say how, so the 32x32 map is resized bilinearly to the
input size (choice, stated here). `width` scales every channel count (1.0 = the paper).

Loss (Fine-grained annotation, eq. 3): L = alpha * MSE + beta * CD on the three-channel label (values / 255);
the paper does not give alpha and beta: both default to 1.
Score (eq. 4-6): F_attack = mean of the attack channel over the face area A_face (regions 1-5),
F_real = mean of the live channel over the key regions A_key (eyes, nose, mouth: 3-5), taken from
the store's region map; the attack score is F_attack - F_real, so eq. 6's "attack if F_attack >
F_real + epsilon" is "score > epsilon", with epsilon the threshold chosen on dev (metrics.py).
A sample with no face (or key) pixels in its region map uses the whole map for that mean.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from annotator.face.regions import FACE_REGIONS, KEY_REGIONS

from .base import MODELS, FasModel, per_row, row_mean
from .cdc import CrossConv, contrastive_depth_loss, conv_bn_relu

_BLOCKS = ((160, 256, 160), (192, 160, 224, 160), (160, 192, 160))


class _Stream(nn.Module):
    def __init__(self, shape: str, theta: float, w) -> None:
        super().__init__()
        self.stem = conv_bn_relu(CrossConv(3, w(80), shape, theta=theta), w(80))
        self.blocks = nn.ModuleList()
        cin = w(80)
        for widths in _BLOCKS:
            layers = []
            for c in widths:
                layers.append(conv_bn_relu(CrossConv(cin, w(c), shape, theta=theta), w(c)))
                cin = w(c)
            self.blocks.append(nn.Sequential(*layers, nn.MaxPool2d(3, stride=2, padding=1)))
        self.head = conv_bn_relu(CrossConv(3 * w(160), w(160), shape, theta=theta), w(160))


class DCCDN(FasModel):
    """(B, 3, S, S) image -> (B, channels, S, S) map (channels 3: attack, live, background)."""

    train_needs = ("label",)
    weighs_rows = True  # its pixel losses (MSE, contrastive depth) weigh each row: --weight-by
    predicts_label_map = True
    card = {"outputs": "3 x S x S attack / live / background map",
            "loss": "alpha MSE + beta contrastive depth loss on the three-channel label (Fine-grained annotation, eq. 3)",
            "score": "F_attack - F_real: mean attack over the face minus mean live over eyes, nose, mouth (eq. 4-5)"}
    needs = ("label", "region")  # the region map is the decision rule's A_face and A_key
    score_needs = ("region",)
    map_size = 32

    def __init__(self, channels: int = 3, theta: float = 0.8, width: float = 1.0, alpha: float = 1.0,
                 beta: float = 1.0):
        super().__init__()
        w = lambda c: max(4, int(round(c * width)))  # noqa: E731
        self.plus, self.diag = _Stream("+", theta, w), _Stream("x", theta, w)
        self.gates = nn.Parameter(torch.zeros(2, len(_BLOCKS)))  # sigmoid(0) = 0.5
        self.fuse = nn.Sequential(conv_bn_relu(CrossConv(2 * w(160), w(160), "+", theta=theta), w(160)),
                                  CrossConv(w(160), channels, "+", theta=theta), nn.ReLU())
        self.alpha, self.beta = alpha, beta

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        size = image.shape[-2:]
        x1, x2 = self.plus.stem(image), self.diag.stem(image)
        f1, f2 = [], []
        for i in range(len(_BLOCKS)):
            x1, x2 = self.plus.blocks[i](x1), self.diag.blocks[i](x2)
            g, h = torch.sigmoid(self.gates[0, i]), torch.sigmoid(self.gates[1, i])
            x1, x2 = g * x1 + (1 - g) * x2, h * x2 + (1 - h) * x1
            f1.append(F.interpolate(x1, size=(self.map_size,) * 2, mode="bilinear", align_corners=False))
            f2.append(F.interpolate(x2, size=(self.map_size,) * 2, mode="bilinear", align_corners=False))
        h1, h2 = self.plus.head(torch.cat(f1, 1)), self.diag.head(torch.cat(f2, 1))
        out = self.fuse(torch.cat([h1, h2], 1))
        return F.interpolate(out, size=size, mode="bilinear", align_corners=False)

    def loss(self, out, batch):
        t = batch["label"]
        mse = row_mean(per_row((out - t) ** 2), batch)
        cd = row_mean(contrastive_depth_loss(out, t, reduction="row"), batch)
        return self.alpha * mse + self.beta * cd, {"mse": mse.detach(), "cd": cd.detach()}

    def score(self, out, batch):
        return decision_score(out, batch["region"])


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(x.dtype)
    n = mask.flatten(1).sum(1)
    full = x.flatten(1).mean(1)
    part = (x * mask).flatten(1).sum(1) / n.clamp(min=1)
    return torch.where(n > 0, part, full)


def decision_score(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Fine-grained annotation eq. 4-5 as a score: F_attack - F_real. maps (B, >=2, S, S) channels attack, live;
    region (B, S, S) region ids at the same size. Returns (B,) float."""
    # membership by broadcast comparison rather than torch.isin: the same values, and ONNX-exportable
    face = (region[..., None] == torch.tensor(FACE_REGIONS, device=region.device)).any(-1)
    key = (region[..., None] == torch.tensor(KEY_REGIONS, device=region.device)).any(-1)
    return _masked_mean(maps[:, 0].float(), face) - _masked_mean(maps[:, 1].float(), key)


@MODELS.register("dccdn3", options=("alpha", "beta"))
def dccdn3(**kw) -> DCCDN:
    return DCCDN(channels=3, **kw)
