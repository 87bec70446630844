"""SAM checkpoints: validated before any work, loaded with weights_only, identified by sha256."""

from __future__ import annotations

import re
from pathlib import Path

from annotator.core.errors import AnnotatorError, SettingError

# model type -> (image encoder embed dim, encoder depth); read off the official state dicts.
MODEL_TYPES = {"vit_b": (768, 12), "vit_l": (1024, 24), "vit_h": (1280, 32)}
CHECKPOINT_HELP = ("official checkpoints: https://github.com/facebookresearch/segment-anything#model-checkpoints "
                   "(sam_vit_h_4b8939.pth, sam_vit_l_0b3195.pth, sam_vit_b_01ec64.pth)")
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
_BLOCK = re.compile(r"^image_encoder\.blocks\.(\d+)\.")


def detect_model_type(state: dict) -> str | None:
    """The model type whose encoder width and depth match a SAM state dict, or None."""
    w = state.get("image_encoder.patch_embed.proj.weight")
    if w is None or getattr(w, "ndim", 0) != 4:
        return None
    depth = 1 + max((int(m.group(1)) for k in state if (m := _BLOCK.match(k))), default=-1)
    for name, (dim, d) in MODEL_TYPES.items():
        if w.shape[0] == dim and depth == d:
            return name
    return None


def load_state_dict(path: str | Path, model_type: str) -> dict:
    """Load and check a checkpoint for `model_type`; every problem is a one-line AnnotatorError."""
    import torch

    if model_type not in MODEL_TYPES:
        raise AnnotatorError(f"unknown --sam-model {model_type!r}; choose one of {', '.join(MODEL_TYPES)}")
    p = Path(path)
    if not p.is_file():
        raise SettingError("sam_checkpoint", f"{path} does not exist; download one: {CHECKPOINT_HELP}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except PermissionError:
        raise SettingError("sam_checkpoint", f"{path} is not readable (permission denied)") from None
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SettingError("sam_checkpoint", f"{path} is not a loadable PyTorch checkpoint ({first[:160]})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # some re-saved checkpoints nest the state dict
    if not isinstance(state, dict) or not any(str(k).startswith("image_encoder.") for k in state):
        raise SettingError("sam_checkpoint", f"{path} is not a SAM state dict (no image_encoder.* weights)")
    found = detect_model_type(state)
    if found != model_type:
        what = f"a {found} checkpoint" if found else "a SAM checkpoint of no known size"
        raise SettingError("sam_checkpoint", f"{path} is {what}, but --sam-model is {model_type}; "
                             f"pass --sam-model {found}" if found else f"--sam-checkpoint {path} is {what}")
    _check_fits(state, model_type, path)
    return state


def _check_fits(state: dict, model_type: str, path) -> None:
    """Every key and shape of the model, and nothing else (on the meta device: no memory, no init)."""
    import torch
    from segment_anything import sam_model_registry

    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in sam_model_registry[model_type]().state_dict().items()}
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(getattr(state[k], "shape", ())) != expected[k])
    if missing or extra or wrong:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                 f"{len(extra)} unexpected (e.g. {extra[0]})" if extra else "",
                 f"{len(wrong)} of wrong shape (e.g. {wrong[0]}: {tuple(state[wrong[0]].shape)} "
                 f"instead of {expected[wrong[0]]})" if wrong else ""]
        raise SettingError("sam_checkpoint", f"{path} does not fit {model_type}: weights "
                             + "; ".join(p for p in parts if p))


def build_model(model_type: str, state: dict | None = None):
    """The segment-anything model of `model_type`, with `state` loaded strictly when given."""
    import torch
    from segment_anything import sam_model_registry

    if state is None:
        return sam_model_registry[model_type]()
    # Built without initialisation (random init of vit_h alone takes longer than loading it).
    with torch.device("meta"):
        model = sam_model_registry[model_type]()
    model = model.to_empty(device="cpu")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = [l.strip() for l in str(e).splitlines() if l.strip()]
        raise AnnotatorError(f"checkpoint does not fit {model_type}: {' '.join(lines[1:3])[:200]}") from None
    # Non-persistent buffers are not in checkpoints: the constants of segment_anything.build_sam.
    model.pixel_mean.copy_(torch.tensor(PIXEL_MEAN).view(-1, 1, 1))
    model.pixel_std.copy_(torch.tensor(PIXEL_STD).view(-1, 1, 1))
    return model.eval()
