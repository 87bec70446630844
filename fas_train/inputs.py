"""Store-layout uint8 batches -> model inputs on the training device, with the usual augmentations.

Geometric augmentations (random resized crop) go through one affine grid per batch applied to the
image and every map alike (bilinear for image, label, depth and pyramid levels; nearest for region
ids), so labels stay aligned with pixels; colour jitter touches the image only. Flips happen in the
loader workers (data.flip_batch), before MCREA's landmarks are lost.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """crop: smallest side share of the random square crop (1 = none); colour: brightness,
    contrast and saturation factors drawn from [1 - colour, 1 + colour] (0 = none)."""

    crop: float = 0.85
    colour: float = 0.2


def to_inputs(batch: dict[str, torch.Tensor], device: torch.device | str, size: int | None = None,
              augment: Augment | None = None, generator: torch.Generator | None = None,
              group: int = 1) -> dict[str, torch.Tensor]:
    """Float inputs: image (B, 3, s, s) scaled as (x - 127.5) / 128; label (B, 3, s, s), depth
    (B, 1, s, s) and pyramid/<k> (B, 3, k, k) in [0, 1]; region (B, s, s) int64; s = `size` or the
    store's S. index, is_attack, domain, attack_code and row_weight pass through. group: the augmentation is drawn once per `group`
    consecutive rows (the frames of one video sequence share their crop and colours); B must be a
    multiple of it."""
    out: dict[str, torch.Tensor] = {}
    for k in ("index", "is_attack", "domain", "attack_code", "row_weight"):
        if k in batch:
            out[k] = batch[k].to(device, non_blocking=True)
    maps = _maps(batch, device)
    s = size or next(iter(maps.values())).shape[-1]
    n = next(iter(maps.values())).shape[0]
    if n % group:
        raise ValueError(f"expected a multiple of {group} rows (whole sequences), got {n}")

    def draw(*shape):  # one draw per group, repeated over its rows
        return torch.rand(n // group, *shape, generator=generator).repeat_interleave(group, dim=0)

    theta = _crop(augment, n, draw, device)
    _resample(maps, theta, n, s)
    if "image" in maps:
        img = maps["image"] / 255.0
        if augment is not None and augment.colour > 0:
            img = _jitter(img, augment.colour, draw, device)
        out["image"] = (img * 255.0 - 127.5) / 128.0
    if "label" in maps:
        out["label"] = maps["label"] / 255.0
    if "depth" in maps:
        out["depth"] = maps["depth"] / 255.0
    if "region" in maps:
        out["region"] = maps["region"][:, 0].round().long()
    out.update(_pyramid(batch, device, theta))
    return out


def _maps(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """The batch's image and maps on the device as float (B, C, S, S), in store values (0 .. 255)."""
    maps = {}
    if "image" in batch:
        maps["image"] = batch["image"].to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    if "label" in batch:
        maps["label"] = batch["label"].to(device, non_blocking=True).float()
    if "depth" in batch:
        maps["depth"] = batch["depth"].to(device, non_blocking=True)[:, None].float()
    if "region" in batch:
        maps["region"] = batch["region"].to(device, non_blocking=True)[:, None].float()
    return maps


def _crop(augment: Augment | None, n: int, draw, device) -> torch.Tensor | None:
    """(n, 2, 3) affine matrices of random square crops on the device, or None for no crop."""
    if augment is None or not augment.crop < 1:
        return None
    side = augment.crop + (1 - augment.crop) * draw()
    shift = (1 - side)[:, None] * (2 * draw(2) - 1)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = side
    theta[:, :, 2] = shift
    return theta.to(device)


def _resample(maps: dict[str, torch.Tensor], theta: torch.Tensor | None, n: int, s: int) -> None:
    """Crop (theta) or resize every map to s x s in place of the dict's values."""
    for k, v in maps.items():
        mode = "nearest" if k == "region" else "bilinear"
        if theta is not None:
            grid = F.affine_grid(theta, [n, v.shape[1], s, s], align_corners=False)
            v = F.grid_sample(v, grid, mode=mode, padding_mode="border", align_corners=False)
        elif v.shape[-1] != s:
            v = F.interpolate(v, size=(s, s), mode=mode, **({} if mode == "nearest" else {"align_corners": False}))
        maps[k] = v


def _jitter(img: torch.Tensor, c: float, draw, device) -> torch.Tensor:
    """Brightness, contrast and saturation of img (B, 3, S, S) in [0, 1] scaled by factors in
    [1 - c, 1 + c], drawn in that order."""

    def factor():
        return (1 - c + 2 * c * draw(1, 1, 1)).to(device)

    img = img * factor()  # brightness
    mean = img.mean(dim=(1, 2, 3), keepdim=True)
    img = (img - mean) * factor() + mean  # contrast
    grey = img.mean(dim=1, keepdim=True)
    img = (img - grey) * factor() + grey  # saturation
    return img.clamp(0, 1)


def _pyramid(batch: dict[str, torch.Tensor], device, theta: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The batch's pyramid/<k> levels on the device in [0, 1], cropped alike."""
    out = {}
    for k, v in batch.items():
        if k.startswith("pyramid/"):
            p = v.to(device, non_blocking=True).float() / 255.0
            if theta is not None:  # the crop also applies to the coarse levels
                grid = F.affine_grid(theta, list(p.shape), align_corners=False)
                p = F.grid_sample(p, grid, mode="bilinear", padding_mode="border", align_corners=False)
            out[k] = p
    return out
