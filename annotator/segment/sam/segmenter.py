"""Segmenter `sam`: batched Segment Anything on the full frame, prompted from the landmarks.

Per shard: every frame goes through the image encoder in batches of `batch` (bf16 autocast on
CUDA; a fixed padded batch shape when compiled), then per frame all region and instrument prompts
go through the prompt encoder and mask decoder in one call. SAM's low-resolution mask logits are
resampled straight into crop pixels (one grid_sample through the crop transform, no full-frame
upsampling), selected against the geometric priors, and composed on the device; only the final
(S, S) region map leaves it.
"""

from __future__ import annotations

import functools
import logging

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from annotator.core.errors import AnnotatorError, SettingError
from annotator.face.priors import region_priors
from annotator.segment.base import FaceItem
from .attention import use_sdpa
from .checkpoint import build_model, load_state_dict
from .prompts import build_prompts, occluder_site
from .select import describe, select_regions

log = logging.getLogger(__name__)


def resolve_device(device: str | None) -> torch.device:
    """'cuda' / 'cpu' / None (CUDA when present). Asking for CUDA without it is an error."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SettingError("device", "cuda was asked for but no CUDA device is visible; use --device cpu")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise AnnotatorError(f"unknown --device {device!r}; use cuda, cuda:N or cpu")
    return torch.device(device)


@functools.lru_cache(maxsize=2)
def _load(checkpoint: str, model: str):
    return build_model(model, load_state_dict(checkpoint, model))


class SamSegmenter:
    """Landmark-prompted SAM. Built from a checkpoint (`checkpoint`, `model`) or a ready `sam` module.

    device: cuda / cpu / None (auto); batch: frames per encoder call; sdpa: fused attention;
    compile: torch.compile the encoder (persistent inductor cache); min_agreement: IoU with the
    geometric prior below which a region falls back to the prior.
    """

    name = "sam"

    def __init__(self, checkpoint: str | None = None, model: str = "vit_h", device: str | None = None,
                 batch: int = 8, sdpa: bool = True, compile: bool = False, min_agreement: float = 0.5,
                 sam: torch.nn.Module | None = None, sha256: str | None = None):
        if sam is None:
            if not checkpoint:
                raise SettingError("segmenter", "sam needs --sam-checkpoint PATH (a segment-anything checkpoint)")
            sam = _load(checkpoint, model)
        if batch < 1:
            raise SettingError("sam_batch", f"must be at least 1, got {batch}")
        self.device = resolve_device(device)
        self.model = sam.to(self.device).eval()
        if sdpa:
            use_sdpa(self.model)
        self.encoder = self.model.image_encoder
        self.compiled = compile
        if compile:
            torch._inductor.config.fx_graph_cache = True  # persistent across processes and runs
            self.encoder = torch.compile(self.encoder, dynamic=False)
        self.img_size = int(self.model.image_encoder.img_size)
        self.batch = batch
        self.min_agreement = min_agreement
        self.autocast = self.device.type == "cuda"

    # -- image encoder ---------------------------------------------------------------------
    def _preprocess(self, frame: np.ndarray) -> tuple[torch.Tensor, float]:
        """HWC uint8 RGB -> (3, img_size, img_size) float normalized and padded; and the resize scale."""
        h, w = frame.shape[:2]
        scale = self.img_size / max(h, w)
        nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
        resized = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
        x = torch.from_numpy(resized).to(self.device, non_blocking=True).permute(2, 0, 1).float()
        x = (x - self.model.pixel_mean) / self.model.pixel_std
        return F.pad(x, (0, self.img_size - nw, 0, self.img_size - nh)), scale

    @torch.inference_mode()
    def encode(self, frames: list[np.ndarray]) -> tuple[torch.Tensor, list[float]]:
        """Image embeddings (N, C, h, w) of HWC uint8 RGB frames, batch by batch; and resize scales."""
        out, scales = [], []
        for i in range(0, len(frames), self.batch):
            chunk = [self._preprocess(f) for f in frames[i:i + self.batch]]
            scales += [s for _, s in chunk]
            x = torch.stack([c for c, _ in chunk])
            n = len(chunk)
            if self.compiled and n < self.batch:  # one static shape: no recompilation for the last batch
                x = torch.cat([x, x.new_zeros((self.batch - n, *x.shape[1:]))])
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                emb = self.encoder(x)
            out.append(emb[:n].float())
        return torch.cat(out), scales

    # -- prompts, decoder, selection --------------------------------------------------------------
    @torch.inference_mode()
    def decode(self, embedding: torch.Tensor, points: np.ndarray, labels: np.ndarray
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """All prompts of one frame in one decoder call.

        embedding: (1, C, h, w); points: (R, P, 2) XY in encoder-input pixels; labels (R, P).
        Returns low-res mask logits (R, 3, 4h, 4w) over the padded input, and predicted IoU (R, 3).
        """
        pts = torch.as_tensor(points, device=self.device)
        lab = torch.as_tensor(labels, device=self.device)
        sparse, dense = self.model.prompt_encoder(points=(pts, lab), boxes=None, masks=None)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            logits, iou = self.model.mask_decoder(
                image_embeddings=embedding, image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True)
        return logits.float(), iou.float()

    def to_crop(self, logits: torch.Tensor, crop_matrix: np.ndarray, scale: float, size: int) -> torch.Tensor:
        """Resample (R, M, h, w) logits over the padded encoder input into (R, M, size, size) crop pixels."""
        inv = cv2.invertAffineTransform(crop_matrix)  # crop px -> frame px
        c = (np.arange(size) + 0.5).astype(np.float64)
        gx = inv[0, 0] * c[None, :] + inv[0, 1] * c[:, None] + inv[0, 2]
        gy = inv[1, 0] * c[None, :] + inv[1, 1] * c[:, None] + inv[1, 2]
        # frame px -> encoder-input px -> grid_sample's [-1, 1] (align_corners=False: -1 is the left edge)
        grid = np.stack([gx, gy], axis=-1) * scale * 2.0 / self.img_size - 1.0
        g = torch.as_tensor(grid, dtype=torch.float32, device=logits.device)[None]
        r, m, h, w = logits.shape
        out = F.grid_sample(logits.reshape(1, r * m, h, w), g, mode="bilinear", padding_mode="border",
                            align_corners=False)
        return out.reshape(r, m, size, size)

    def segment(self, items: list[FaceItem]) -> list[tuple[np.ndarray, str]]:
        if not items:
            return []
        embeddings, scales = self.encode([it.frame for it in items])
        results = []
        for i, it in enumerate(items):
            priors = region_priors(it.landmarks, it.size)
            points, labels, rids = build_prompts(it.landmarks, priors, it.attack_type)
            inv = cv2.invertAffineTransform(it.crop_matrix)
            frame_pts = points @ inv[:, :2].T + inv[:, 2]
            logits, iou = self.decode(embeddings[i:i + 1], (frame_pts * scales[i]).astype(np.float32), labels)
            masks = self.to_crop(logits, it.crop_matrix, scales[i], it.size) > 0
            priors_t = {k: torch.as_tensor(v, device=self.device) for k, v in priors.items()}
            region, from_sam, fell_back, predicted = select_regions(
                masks, iou, rids.tolist(), priors_t, self.min_agreement, occluder_site=occluder_site(it.attack_type))
            signals = {"segmenter_iou": min(predicted.values())} if predicted else {}
            results.append((region.cpu().numpy(), describe(from_sam, fell_back), signals))
        return results
