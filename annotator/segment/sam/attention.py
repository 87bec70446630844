"""Fused attention for SAM's image encoder that keeps its decomposed relative-position term.

segment-anything computes softmax(q k^T * scale + rel_h + rel_w) v with the full attention
matrix in memory. Here the relative-position terms become an additive attention mask of
torch.nn.functional.scaled_dot_product_attention, which dispatches to a fused kernel
(memory-efficient attention accepts an additive bias; on Hopper this is the fast path).
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F


def _sdpa_forward(self, x: torch.Tensor) -> torch.Tensor:
    from segment_anything.modeling.image_encoder import get_rel_pos

    b, h, w, _ = x.shape
    qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, heads, HW, C)
    bias = None
    if self.use_rel_pos:
        rh = get_rel_pos(h, h, self.rel_pos_h)  # (h, h, C)
        rw = get_rel_pos(w, w, self.rel_pos_w)  # (w, w, C)
        r_q = q.reshape(b, self.num_heads, h, w, -1)
        rel_h = torch.einsum("bnhwc,hkc->bnhwk", r_q, rh.to(r_q.dtype))
        rel_w = torch.einsum("bnhwc,wkc->bnhwk", r_q, rw.to(r_q.dtype))
        bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(b, self.num_heads, h * w, h * w)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
    out = out.view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
    return self.proj(out)


def use_sdpa(model: torch.nn.Module) -> int:
    """Switch every segment-anything encoder Attention in `model` to the fused path. Returns how many."""
    from segment_anything.modeling.image_encoder import Attention

    n = 0
    for mod in model.modules():
        if isinstance(mod, Attention):
            mod.forward = types.MethodType(_sdpa_forward, mod)
            n += 1
    return n
