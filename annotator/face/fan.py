"""FAN landmarks (face-alignment 1.5: A. Bulat and G. Tzimiropoulos's 2D/3D FAN, its own model code
and pre/post-processing), 68 points per face, run in batches on a device (bf16 autocast on CUDA).

Boxes come from this tool's detector (face-alignment's detectors are not used). Weights are
face-alignment 1.5's official state dicts, never downloaded here: `2DFAN4-11f355bf06.pth.tar`,
`3DFAN4-7835d9f11d.pth.tar` and, for 3D, the ResNetDepth `depth-2a464da4ea.pth.tar`, read from the
torch hub cache where face-alignment keeps them ($TORCH_HOME/hub/checkpoints/) or from given paths,
loaded with weights_only=True into face_alignment.models.FAN(4) / ResNetDepth and checked for fit
before any work (check_checkpoints). Points: x, y in frame pixels; z in the same units, larger =
nearer: 3D FAN's own (face-alignment's scaling, its sign set by layouts.orient_depth), 2D FAN's fitted
from MediaPipe's canonical face (layouts.fit_canonical_depth). The layout is ibug-68 (docs/labels.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from annotator.core.digest import sha256
from annotator.core.errors import SettingError
from .detect import FaceBox
from .layouts import fit_canonical_depth, orient_depth

FILES = {"2d": "2DFAN4-11f355bf06.pth.tar", "3d": "3DFAN4-7835d9f11d.pth.tar", "depth": "depth-2a464da4ea.pth.tar"}
URL = "https://www.adrianbulat.com/downloads/python-fan/"
N_POINTS = 68


def default_path(name: str) -> Path:
    """Where face-alignment keeps the file: the torch hub cache's checkpoints folder."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FILES[name]


def _state(path: Path, setting: str, name: str) -> dict:
    """The state dict in a checkpoint file (the official depth file wraps it in "state_dict" with
    DataParallel's "module." prefixes); one-line errors for a missing or unreadable file."""
    if not path.is_file():
        raise SettingError(setting, f"{FILES[name]} is not at {path}: download {URL}{FILES[name]} and place it there "
                                    f"(or give its path with --{setting.replace('_', '-')})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SettingError(setting, f"{path} is not a loadable state dict ({type(e).__name__}: "
                                    f"{str(e).splitlines()[0][:160]})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise SettingError(setting, f"{path} holds a {type(state).__name__}, not a state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _fit(net: torch.nn.Module, state: dict, path: Path, setting: str, what: str) -> None:
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or shapes:
        raise SettingError(setting, f"{path} does not fit {what}: {len(missing)} weight(s) missing (first: "
                                    f"{missing[:2]}), {len(shapes)} of another shape (first: {shapes[:2]})")
    net.load_state_dict({k: state[k] for k in own})


def load_networks(kind: str = "2d", checkpoint: str | None = None, depth_checkpoint: str | None = None
                  ) -> tuple[torch.nn.Module, torch.nn.Module | None, dict]:
    """(FAN, ResNetDepth or None, {"type", "checkpoint"[, "depth_checkpoint"]} resolved), on the CPU in
    eval mode; one-line SettingErrors for every checkpoint problem."""
    if kind not in ("2d", "3d"):
        raise SettingError("fan_type", f"takes 2d or 3d, got {kind!r}")
    try:
        from face_alignment.models import FAN, ResNetDepth
    except ImportError:
        raise SettingError("landmarker", "fan needs face-alignment: pip install 'fas-annotator[fan]'") from None

    path = Path(checkpoint) if checkpoint else default_path(kind)
    fan = FAN(4)
    _fit(fan, _state(path, "fan_checkpoint", kind), path, "fan_checkpoint", f"face-alignment's FAN ({kind.upper()}FAN4)")
    info = {"type": kind, "checkpoint": str(path.resolve())}
    depth = None
    if kind == "3d":
        dpath = Path(depth_checkpoint) if depth_checkpoint else default_path("depth")
        depth = ResNetDepth()
        _fit(depth, _state(dpath, "fan_depth_checkpoint", "depth"), dpath, "fan_depth_checkpoint",
             "face-alignment's ResNetDepth")
        info.update(depth_checkpoint=str(dpath.resolve()))
    return fan.eval(), (depth.eval() if depth is not None else None), info


class FanLandmarker:
    """68 FAN points for (frame, box) pairs, batched. device: "cuda", "cpu" or None (CUDA when present).
    As a store's landmarker (`--landmarker fan`) it takes a shard's faces in one `landmarks` call."""

    batched = True

    def __init__(self, kind: str = "2d", checkpoint: str | None = None, depth_checkpoint: str | None = None,
                 device: str | None = None, batch: int = 64):
        self.fan, self.depth, self.info = load_networks(kind, checkpoint, depth_checkpoint)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.fan.to(self.device)
        if self.depth is not None:
            self.depth.to(self.device)
        self.batch = batch

    def __call__(self, frame: np.ndarray, face: FaceBox, context: float | None = None) -> np.ndarray:
        """(68, 3) float32 points of one face (HWC uint8 RGB frame, XYXY pixel box). FAN crops by the
        box itself; `context` (FaceMesh's search square) does not apply."""
        return self.landmarks([(frame, face)])[0]

    @torch.no_grad()
    def landmarks(self, items: list[tuple[np.ndarray, FaceBox]]) -> list[np.ndarray]:
        """(68, 3) float32 points per (frame, box), in frame pixels, computed `batch` faces at a time."""
        from face_alignment.utils import (CENTER_Y_OFFSET, CROP_RESOLUTION, REFERENCE_SCALE, SCALE_FACTOR, crop,
                                          draw_gaussian, get_preds_fromhm)

        centers, scales, crops = [], [], []
        for frame, face in items:
            x0, y0, x1, y1 = face.box
            center = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0 - (y1 - y0) * CENTER_Y_OFFSET])
            scale = (x1 - x0 + y1 - y0) / REFERENCE_SCALE
            centers.append(center)
            scales.append(scale)
            crops.append(crop(frame, center, scale).transpose(2, 0, 1).astype(np.float32) / 255.0)
        out = []
        cast = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else \
            torch.autocast("cpu", enabled=False)
        for s in range(0, len(crops), self.batch):
            x = torch.from_numpy(np.stack(crops[s:s + self.batch])).to(self.device)
            with cast:
                heat = self.fan(x)
            heat = (heat[-1] if isinstance(heat, list) else heat).float()
            hm = heat.cpu().numpy()
            for j in range(len(x)):
                c, sc = centers[s + j], scales[s + j]
                pts, pts_img, _ = get_preds_fromhm(hm[j:j + 1], c, sc)
                pts, pts_img = pts.reshape(N_POINTS, 2) * 4, pts_img.reshape(N_POINTS, 2)
                if self.depth is None:
                    z = fit_canonical_depth(pts_img)[:, None]
                else:
                    maps = np.zeros((N_POINTS, CROP_RESOLUTION, CROP_RESOLUTION), np.float32)
                    for k in range(N_POINTS):
                        if pts[k, 0] > 0 and pts[k, 1] > 0:
                            maps[k] = draw_gaussian(maps[k], pts[k], 2)
                    inp = torch.cat([x[j:j + 1].float(), torch.from_numpy(maps)[None].to(self.device)], 1)
                    with cast:
                        d = self.depth(inp)
                    z = orient_depth(d.float().cpu().numpy().reshape(N_POINTS) / (CROP_RESOLUTION / (SCALE_FACTOR * sc)))
                    z = z[:, None]
                out.append(np.concatenate([pts_img, z], axis=1).astype(np.float32))
        return out


def check_checkpoints(kind: str = "2d", checkpoint: str | None = None, depth_checkpoint: str | None = None) -> dict:
    """The provenance of the FAN weights a run will use ({"type", "checkpoint", "sha256"[,
    "depth_checkpoint", "depth_sha256"]}), after checking that they load and fit."""
    info = load_networks(kind, checkpoint, depth_checkpoint)[2]
    info["sha256"] = sha256(Path(info["checkpoint"]))
    if "depth_checkpoint" in info:
        info["depth_sha256"] = sha256(Path(info["depth_checkpoint"]))
    return info


def recorded_weights(options: dict, checkpoint: str | None = None, depth_checkpoint: str | None = None) -> dict:
    """A store's FAN options ({"type", "checkpoint", "sha256"[, "depth_..."]}) with their files found
    on this machine: the given paths, else the recorded ones, else face-alignment's hub cache; each
    must hash to the recorded sha256 (another FAN would crop differently from the store). One-line
    SettingErrors when no file is found or a given one is other weights."""
    out = dict(options)
    for key, given, name, setting in (("checkpoint", checkpoint, options.get("type", "2d"), "fan_checkpoint"),
                                      ("depth_checkpoint", depth_checkpoint, "depth", "fan_depth_checkpoint")):
        want = options.get("sha256" if key == "checkpoint" else "depth_sha256")
        if want is None:
            continue
        places = [Path(given)] if given else [Path(options[key]), default_path(name)]
        found = next((p for p in places if p.is_file()), None)
        if found is None:
            raise SettingError(setting, f"{FILES[name]} (sha256 {want[:12]}..., the weights the store was made with) "
                                        f"is at none of {', '.join(map(str, places))}: place it there or give its path")
        got = sha256(found)  # the recorded path too: its file may have been replaced since
        if got != want:
            raise SettingError(setting, f"{found} is not the FAN the store was made with (sha256 {got[:12]}... "
                                        f"vs {want[:12]}...): the crops would differ from the store's")
        out[key] = str(found.resolve())
    return out


def prepare_options(options: dict) -> dict:
    """Backend `prepare` of the "fan" landmarker: {"type", "checkpoint", "depth_checkpoint"} (None: the
    hub cache) -> the checked provenance of check_checkpoints."""
    return check_checkpoints(options.get("type", "2d"), options.get("checkpoint"), options.get("depth_checkpoint"))


def locate_options(options: dict, given: dict) -> dict:
    """Backend `locate` of the "fan" landmarker: a store's options with the weights found here
    (given: {"checkpoint", "depth_checkpoint"} paths, each may be None; recorded_weights)."""
    return recorded_weights(options, given.get("checkpoint"), given.get("depth_checkpoint"))
