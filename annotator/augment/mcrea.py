"""MCREA batch transform (docs/papers.md: Fine-grained annotation, Algorithm 1), in torch.

For a batch of N samples, the first floor(gamma * N) samples i (loaders shuffle, so these are a
random share, as in the paper) each get rho exchange steps. A step picks a random face region
present in sample i, a random other sample j of the batch holding the same region, fits the
similarity transform (rotation, uniform scale, translation; least squares, Umeyama) that takes j's
landmarks of that region onto i's, warps j through it and replaces, inside the exchange mask, i's
pixels, three label channels, depth, region ids, and the region's landmarks with j's.

Figure 4 names three schemes and shows them only as pictures; we read them as:
- "integrated" (integrated attack parts): the exchange mask is the donor's warped region, so the
  donor part is integrated with its own shape;
- "overlay" (overlay enhancement): the union of the donor's warped region and i's own region, so
  the donor part is laid over i's part and covers it entirely;
- "clipping" (clipping exchange): the intersection of the two, so the donor part is clipped to i's
  region and i keeps its silhouette.

Label consistency: labels come from the donor unchanged (an attack part keeps its attack value:
the paper's "mimicking partial attacks"); background is recomputed as 255 where attack and live are
both 0, only inside the exchange mask, so untouched pixels stay bit-identical.

Tensors use the store's layouts: image (N, S, S, 3) uint8, label (N, 3, S, S) uint8, depth and
region (N, S, S) uint8, landmarks (N, P, 3) float32 in crop pixels (P = 478 FaceMesh or 68 iBUG
points: the point count picks the landmark layout whose points align each region).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from annotator.face.layouts import MEDIAPIPE_478, layout_of

SCHEMES = ("integrated", "overlay", "clipping")
# Exchangeable regions: region id and the landmarks that align it (the same names in every layout;
# these are FaceMesh's, Layout.exchange has each layout's).
EXCHANGE_REGIONS: dict[str, tuple[int, tuple[int, ...]]] = MEDIAPIPE_478.exchange


@dataclass(frozen=True)
class Exchange:
    """One exchange step: recipient i took region `region` from donor j."""

    recipient: int
    donor: int
    region: str


def similarity(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """2x3 least-squares similarity taking src (K, 2) points onto dst (K, 2) (float64, on src's device).

    The 2-D closed form of Umeyama's solution: with centred points a, b, scale x (cos, sin) =
    (sum a.b, sum a x b) / sum |a|^2. Computed in numpy: the matrices are tiny and torch's per-op cost dominated.
    """
    a = src.detach().cpu().double().numpy()
    b = dst.detach().cpu().double().numpy()
    ma, mb = a.mean(0), b.mean(0)
    a, b = a - ma, b - mb
    var = float((a * a).sum())
    if var <= 0:
        m = np.array([[1.0, 0.0, mb[0] - ma[0]], [0.0, 1.0, mb[1] - ma[1]]])
    else:
        c = float((a * b).sum()) / var
        s = float((a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum()) / var
        rot = np.array([[c, -s], [s, c]])
        m = np.concatenate([rot, (mb - rot @ ma)[:, None]], axis=1)
    return torch.from_numpy(m).to(src.device)


def _box_grid(m: torch.Tensor, box: tuple[int, int, int, int], h: int, w: int, device) -> torch.Tensor:
    """grid_sample grid (1, y1 - y0, x1 - x0, 2) sampling an (h, w) source through the 2x3 pixel
    transform m (source -> destination) at the destination pixels of box = (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    mm = m.detach().cpu().numpy()
    (p, q), (r, t) = mm[:, :2]
    a_inv = np.array([[t, -q], [-r, p]]) / (p * t - q * r)  # destination pixel -> source pixel (2x2 by hand:
    # np.linalg costs a millisecond per call here, 100x the arithmetic)
    t_inv = -a_inv @ mm[:, 2]
    # Affine in the pixel centres, folded with grid_sample's [-1, 1] normalization (align_corners=False).
    scale = np.array([2.0 / w, 2.0 / h])[:, None]
    lin = a_inv * scale
    off = (t_inv + a_inv @ [x0 + 0.5, y0 + 0.5]) * scale[:, 0] - 1.0
    cx = torch.arange(x1 - x0, dtype=torch.float32, device=device)
    cy = torch.arange(y1 - y0, dtype=torch.float32, device=device)
    gy, gx = torch.meshgrid(cy, cx, indexing="ij")
    return torch.stack([lin[0, 0] * gx + lin[0, 1] * gy + off[0], lin[1, 0] * gx + lin[1, 1] * gy + off[1]],
                       dim=-1)[None]


def _sample(x: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    """(C, H, W) source sampled on a _box_grid grid -> (C, h, w); zeros outside the source."""
    return F.grid_sample(x[None].float(), grid, mode=mode, padding_mode="zeros", align_corners=False)[0]


def _bbox(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    ys = torch.nonzero(mask.any(1)).flatten()
    xs = torch.nonzero(mask.any(0)).flatten()
    if len(ys) == 0:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def _box_after(m: torch.Tensor, box: tuple[int, int, int, int], size: int) -> tuple[int, int, int, int]:
    """Destination pixel box covering the source box mapped through m (1 px margin), clipped to the image."""
    x0, y0, x1, y1 = box
    (a, b, c), (d, e, f) = m.tolist()
    xs = [a * x + b * y + c for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))]
    ys = [d * x + e * y + f for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))]

    def clip(v: float) -> int:
        return int(min(max(v, 0), size))

    return clip(math.floor(min(xs)) - 1), clip(math.floor(min(ys)) - 1), clip(math.ceil(max(xs)) + 1), \
        clip(math.ceil(max(ys)) + 1)


def check_args(gamma: float, rho: int, scheme: str, flags: tuple[str, str, str] = ("--gamma", "--rho", "--scheme"),
               ) -> None:
    """ValueError naming the bad argument by its command-line flag (the CLIs turn it into their
    one-line error)."""
    g, r, k = flags
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"{g} must be in [0, 1], got {gamma}")
    if rho < 0:
        raise ValueError(f"{r} must be at least 0, got {rho}")
    # a step takes one region, and a sample has only these to give: more steps only take the same
    # regions again from other donors (and 10^6 of them run for hours)
    if rho > len(EXCHANGE_REGIONS):
        raise ValueError(f"{r} must be at most {len(EXCHANGE_REGIONS)}, the exchangeable regions "
                         f"({', '.join(EXCHANGE_REGIONS)}), got {rho}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown {k} {scheme!r}; choose one of {', '.join(SCHEMES)}")


class _Donors:
    """What the batch as given holds: which sample has which region (and where), which has landmarks.
    Donor data is always read from the batch given, never from samples changed in this call."""

    def __init__(self, batch: dict[str, torch.Tensor], names: list[str]):
        self.region, self.lm = batch["region"], batch["landmarks"]
        self.table = layout_of(self.lm).exchange
        counts = torch.stack([torch.bincount(r.flatten(), minlength=256) for r in self.region])  # region sizes
        self.holds = {r: (counts[:, self.table[r][0]] > 0).tolist() for r in names}
        self.finite = torch.isfinite(self.lm).flatten(1).all(1).tolist()
        self._boxes: dict[tuple[int, str], tuple[int, int, int, int] | None] = {}

    def box(self, j: int, name: str):
        if (j, name) not in self._boxes:
            self._boxes[(j, name)] = _bbox(self.region[j] == self.table[name][0])
        return self._boxes[(j, name)]

    def candidates(self, name: str, i: int) -> list[int]:
        return [j for j in range(len(self.finite)) if j != i and self.holds[name][j] and self.finite[j]]


def mcrea(batch: dict[str, torch.Tensor], gamma: float = 0.5, rho: int = 1, scheme: str = "integrated",
          generator: torch.Generator | None = None, regions: tuple[str, ...] = tuple(EXCHANGE_REGIONS),
          out: dict[str, torch.Tensor] | None = None) -> tuple[dict[str, torch.Tensor], list[Exchange]]:
    """Apply MCREA to a batch; returns (new batch, the exchanges made, in order).

    batch: {"image", "label", "depth", "region", "landmarks"} in the store layouts (see module doc);
    other keys pass through. The new batch also holds "exchanged": bool (N, S, S), the pixels each
    sample took from donors. Deterministic for a given generator state; gamma = 0 is the identity.
    out: tensors of the batch's shapes to write the new batch into (e.g. shared-memory slots) instead
    of fresh copies; `batch` itself is never changed (it is the donors' source).
    """
    check_args(gamma, rho, scheme)
    given = out or {}
    out = {k: given[k].copy_(v) if k in given else v.clone() for k, v in batch.items()}
    n = out["image"].shape[0]
    log: list[Exchange] = []
    names = [r for r in regions if r in EXCHANGE_REGIONS]
    out["exchanged"] = torch.zeros(out["region"].shape, dtype=torch.bool, device=out["region"].device)
    donors = _Donors(batch, names)
    changed: set[int] = set()

    def rand(k: int) -> int:
        return int(torch.randint(k, (1,), generator=generator))

    for i in range(int(gamma * n)):
        for _ in range(rho):
            if i in changed:  # its own earlier steps may have brought or removed regions
                present = [r for r in names if donors.finite[i]
                           and bool((out["region"][i] == donors.table[r][0]).any())]
            else:
                present = [r for r in names if donors.finite[i] and donors.holds[r][i]]
            if not present or n < 2:
                continue
            name = present[rand(len(present))]
            candidates = donors.candidates(name, i)
            if not candidates:
                continue
            j = candidates[rand(len(candidates))]
            if _exchange(out, batch, donors, i, j, name, scheme):
                changed.add(i)
                log.append(Exchange(i, j, name))
    return out, log


def _exchange(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], donors: _Donors, i: int, j: int,
              name: str, scheme: str) -> bool:
    """Recipient i takes region `name` from donor j in place (out's image, label, depth, region,
    landmarks and exchanged); False when the warped region lands outside the crop or is empty."""
    image, label, depth, region, lm = (out[k] for k in ("image", "label", "depth", "region", "landmarks"))
    size = image.shape[1]
    rid, idx = donors.table[name]
    idx_t = torch.tensor(idx, device=lm.device)
    m = similarity(donors.lm[j][idx_t, :2], lm[i][idx_t, :2])
    own = region[i] == rid
    # Work only inside the destination box that the donor region (and i's own region) can reach.
    bx = _box_after(m, donors.box(j, name), size)
    own_box = _bbox(own)
    if scheme == "overlay" and own_box is not None:
        bx = (min(bx[0], own_box[0]), min(bx[1], own_box[1]), max(bx[2], own_box[2]), max(bx[3], own_box[3]))
    x0, y0, x1, y1 = bx
    if x1 <= x0 or y1 <= y0:
        return False
    # Only the donor's region box (2 px margin, for bilinear taps) is read and converted.
    sx0, sy0, sx1, sy1 = donors.box(j, name)
    sx0, sy0, sx1, sy1 = max(sx0 - 2, 0), max(sy0 - 2, 0), min(sx1 + 2, size), min(sy1 + 2, size)
    crop = (slice(sy0, sy1), slice(sx0, sx1))
    mc = m.clone()
    mc[:, 2] += m[:, :2] @ torch.tensor([float(sx0), float(sy0)], dtype=m.dtype, device=m.device)  # crop offset
    reg_j = donors.region[j][crop]
    planes = torch.cat([batch["label"][j][:, sy0:sy1, sx0:sx1].float(), batch["depth"][j][crop][None].float(),
                        reg_j[None].float(), (reg_j == rid)[None].float()])
    grid = _box_grid(mc, bx, sy1 - sy0, sx1 - sx0, planes.device)
    near = _sample(planes, grid, "nearest")
    img_j = _sample(batch["image"][j][crop].permute(2, 0, 1), grid, "bilinear")
    donor_mask = near[5] > 0.5
    own_b = own[y0:y1, x0:x1]
    mask = {"integrated": donor_mask, "overlay": donor_mask | own_b, "clipping": donor_mask & own_b}[scheme]
    if not bool(mask.any()):
        return False
    # torch.where on the box: cheaper than boolean-mask indexing, which materializes indices.
    sub = image[i, y0:y1, x0:x1]
    sub.copy_(torch.where(mask[..., None], img_j.permute(1, 2, 0).round().clamp(0, 255).to(image.dtype), sub))
    lab = label[i, :, y0:y1, x0:x1]
    new_lab = near[:3].round().to(lab.dtype)
    new_lab[2] = torch.where((new_lab[0] == 0) & (new_lab[1] == 0), 255, 0).to(lab.dtype)
    lab.copy_(torch.where(mask[None], new_lab, lab))
    d = depth[i, y0:y1, x0:x1]
    d.copy_(torch.where(mask, near[3].round().to(depth.dtype), d))
    rg = region[i, y0:y1, x0:x1]
    rg.copy_(torch.where(mask, near[4].round().to(region.dtype), rg))
    src = donors.lm[j][idx_t].double()
    lm[i][idx_t, :2] = (src[:, :2] @ m[:, :2].T + m[:, 2]).to(lm.dtype)
    lm[i][idx_t, 2] = (src[:, 2] * float(np.hypot(*m[:, 0].tolist()))).to(lm.dtype)  # z scales like x, y
    out["exchanged"][i, y0:y1, x0:x1] |= mask
    return True
