"""Backbone weights: torchvision's ImageNet weights from the torch hub cache, or a user's state dict,
checked for fit before any training (`fas-train train --pretrained imagenet|PATH`)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from annotator.core.errors import SettingError

# torchvision's ImageNet-1k (V1) weights per backbone: what `--pretrained imagenet` loads.
IMAGENET = {"resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
            "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth"}


def imagenet_file(backbone: str) -> Path:
    """Where torch's hub cache keeps the backbone's ImageNet file (downloaded there when absent)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET[backbone].rsplit("/", 1)[1]


def _fetch(backbone: str) -> Path:
    import urllib.request

    path = imagenet_file(backbone)
    if path.exists():
        return path
    url = IMAGENET[backbone]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=30) as r, open(path.with_suffix(".part"), "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        path.with_suffix(".part").rename(path)
        return path
    except OSError as e:
        raise SettingError("pretrained", f"imagenet needs torchvision's ImageNet weights for {backbone} and they are not "
                                         f"in the torch cache, nor downloadable here ({e}): place {path.name} "
                                         f"(from {url}) at {path}") from None


def load_backbone(net: nn.Module, backbone: str, spec: str | None) -> None:
    """Load `spec` ("imagenet", a state-dict file, or None for random init) into `net` (a torchvision
    model of `backbone`); a one-line error when the file is missing, unreadable or does not fit."""
    if not spec:
        return
    path = _fetch(backbone) if spec == "imagenet" else Path(spec)
    if not path.is_file():
        raise SettingError("pretrained", f"{path} does not exist; give imagenet or a {backbone} state-dict file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SettingError("pretrained", f"{path} is not a loadable state dict ({str(e).splitlines()[0][:160]})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or shapes:
        raise SettingError("pretrained", f"{path} does not fit {backbone} (at this --width): {len(missing)} weight(s) "
                                         f"missing (first: {missing[:2]}), {len(shapes)} of another shape "
                                         f"(first: {shapes[:2]})")
    net.load_state_dict({k: state[k] for k in own})
