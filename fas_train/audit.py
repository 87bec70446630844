"""`fas-train audit`: out-of-fold disagreement between a model and the labels, to find bad labels.

The rows of a protocol's group are split into k folds by subject (by video where a row has no
subject, by sample otherwise), so that no subject is in the training rows and the audited fold at
once. For each fold a model that predicts the three-channel map is trained on the other folds and
predicts the held-out rows. The predicted maps become class probabilities by their distance to each
class's mean prediction on the training rows (the maps regress the label's values, so theirs are no
probabilities); cleanlab scores each pixel's label (`cleanlab.segmentation.rank.
get_label_quality_scores`: the self-confidence in its class, per pixel the first of attack, live,
background set). A row's `label_quality` is the mean over the face and its instruments (cleanlab's
own softmin image score is ruled by the few resampled border pixels every row has), its
`worst_region_quality` the mean over the region of its region map that agrees least: a wrong
instrument patch is a small share of the face but the whole of its region. Rows are ranked by the
worst region, then the face. Low = the label disagrees with what a model learnt from all the others:
a row to look at first. The scores land in OUT/audit.csv, keyed by the store's store_id and the
row's sample_id.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from annotator.core.errors import AnnotatorError, SettingError
from annotator.face.regions import REGION_NAMES

from .data import StoreStream
from .inputs import to_inputs
from .models import create
from .selection import Part, Selection, select
from .scoring import device_of, loader

AUDIT_FILE = "audit.csv"
COLUMNS = ("store_id", "sample_id", "frame_index", "fold", "label_quality", "worst_region", "worst_region_quality")


@dataclasses.dataclass(frozen=True)
class AuditConfig:
    """The settings of one audit (RUN/audit.json). model: one whose forward returns the (B, 3, S, S)
    attack / live / background map (FasModel.predicts_label_map)."""

    stores: list[str]
    protocol: str = "all"
    group: str = "train"
    model: str = "dccdn3"
    folds: int = 3
    epochs: int = 6
    batch: int = 16
    lr: float = 3e-3
    size: int = 64
    width: float = 0.25
    seed: int = 0


def folds_of(sel: Selection, k: int, seed: int) -> np.ndarray:
    """(len(sel),) int fold of every row: whole subjects (else videos, else samples) per fold,
    subjects dealt round-robin in a seeded order."""
    meta = sel.meta
    n = len(sel)
    keys = [str(meta["subject"][i]) if "subject" in meta and meta["subject"][i] else
            ("v:" + str(meta["video_id"][i]) if meta["video_id"][i] else "s:" + str(meta["sample_id"][i]))
            for i in range(n)]
    groups = sorted(set(keys))
    if len(groups) < k:
        raise SettingError("folds", f"the rows hold {len(groups)} subject(s) or video(s); {k} folds need at least {k}")
    order = np.random.default_rng(seed).permutation(len(groups))
    fold = {groups[g]: r % k for r, g in enumerate(order)}
    return np.array([fold[key] for key in keys], np.int64)


def subset(sel: Selection, positions: np.ndarray) -> Selection:
    """The rows of `sel` at sorted positions, as a Selection of the same stores."""
    parts = []
    for part, offset in zip(sel.parts, sel.offsets):
        mine = positions[(positions >= offset) & (positions < offset + len(part.rows))] - offset
        parts.append(Part(part.url, part.rows[mine], part.chunk))
    meta = {c: v[positions] for c, v in sel.meta.items()}
    return Selection(parts, meta)


def _fit(cfg: AuditConfig, rows: Selection, device: torch.device):
    torch.manual_seed(cfg.seed)
    model = create(cfg.model, width=cfg.width).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    stream = StoreStream(rows, ("image", "label"), cfg.batch, shuffle=True, seed=cfg.seed)
    model.train()
    for epoch in range(cfg.epochs):
        stream.set_epoch(epoch)
        for b in loader(stream, 0):
            x = to_inputs(b, device, cfg.size)
            loss, _ = model.loss(model(x["image"]), x)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def _maps(model, rows: Selection, cfg: AuditConfig, device: torch.device):
    """(positions, labels (N, s, s) int class: the first of attack, live, background set, predicted maps
    (N, 3, s, s) float, regions (N, s, s)) of the rows."""
    out = ([], [], [], [])
    for b in loader(StoreStream(rows, ("image", "label", "region"), cfg.batch, shuffle=False), 0):
        x = to_inputs(b, device, cfg.size)
        out[0].append(b["index"].numpy())
        out[1].append(torch.argmax((x["label"] > 0).to(torch.uint8), dim=1).cpu().numpy())
        out[2].append(model(x["image"]).float().cpu().numpy())
        out[3].append(x["region"].cpu().numpy())
    return tuple(np.concatenate(o) for o in out)


def _class_means(labels: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """(3, 3) the mean predicted map vector of the pixels of each label class (rows: class)."""
    vectors = maps.transpose(0, 2, 3, 1).reshape(-1, 3)
    flat = labels.reshape(-1)
    return np.stack([vectors[flat == c].mean(axis=0) if (flat == c).any() else np.full(3, np.nan) for c in range(3)])


def _probabilities(maps: np.ndarray, means: np.ndarray, temperature: float = 0.02) -> np.ndarray:
    """(N, 3, s, s) class probabilities of predicted maps: a softmax over the negative squared distance
    of each pixel's map vector to each class's mean on the training rows. The maps regress the label's
    values (live carries depth, attack is 1), so their raw values are no probabilities."""
    d = ((maps[:, None] - np.nan_to_num(means, nan=1e3)[None, :, :, None, None]) ** 2).sum(axis=2)
    logits = -d / temperature
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def _face_means(pixel: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """(N,) the mean pixel label quality over the pixels of the face and its instruments (region > 0):
    a few resampled border pixels weigh little, a wrong region a lot (the whole crop where none)."""
    face = regions > 0
    n = face.reshape(len(face), -1).sum(axis=1)
    total = (pixel * face).reshape(len(face), -1).sum(axis=1)
    return np.where(n > 0, total / np.maximum(n, 1), pixel.reshape(len(pixel), -1).mean(axis=1))


def _region_scores(pixel: np.ndarray, regions: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Per row the region (name) whose pixels' mean quality is lowest, and that mean."""
    names, values = [], np.full(len(pixel), np.nan, np.float32)
    for i, (p, r) in enumerate(zip(pixel, regions)):
        means = {int(rid): float(p[r == rid].mean()) for rid in np.unique(r)}
        worst = min(means, key=means.get)
        names.append(REGION_NAMES[worst] if worst < len(REGION_NAMES) else str(worst))
        values[i] = means[worst]
    return names, values


def audit(cfg: AuditConfig, out: str, device: str | None = None) -> list[dict]:
    """Score every row of cfg.group of cfg.protocol out of fold; write OUT/audit.csv (COLUMNS; the rows
    whose worst region agrees least first, then by label_quality) and OUT/audit.json; returns the rows
    as dicts in that order."""
    try:
        from cleanlab.segmentation.rank import get_label_quality_scores
    except ImportError:
        raise AnnotatorError("fas-train audit needs cleanlab: pip install 'fas-annotator[audit]'") from None

    probe = create(cfg.model, width=cfg.width)
    if not probe.predicts_label_map:
        raise SettingError("model", f"{cfg.model} does not predict the three-channel map; `fas-train models` "
                                    "lists the models that do")
    dev = device_of(device)
    sel = select(cfg.stores, cfg.protocol, cfg.group, needs=("label", "region"), columns=("subject",))
    fold = folds_of(sel, cfg.folds, cfg.seed)
    quality = np.full(len(sel), np.nan)
    worst, worst_q = [""] * len(sel), np.full(len(sel), np.nan)
    for f in range(cfg.folds):
        held = np.flatnonzero(fold == f)
        trained = subset(sel, np.flatnonzero(fold != f))
        model = _fit(cfg, trained, dev)
        _, seen_labels, seen_maps, _ = _maps(model, trained, cfg, dev)
        index, labels, maps, regions = _maps(model, subset(sel, held), cfg, dev)
        probs = _probabilities(maps, _class_means(seen_labels, seen_maps))
        _, pixel = get_label_quality_scores(labels, probs, verbose=False)
        scores = _face_means(pixel, regions)
        names, values = _region_scores(pixel, regions)
        for j, pos in enumerate(held[index]):
            quality[pos], worst[pos], worst_q[pos] = scores[j], names[j], values[j]
    return _write(cfg, sel, fold, quality, worst, worst_q, Path(out))


def _write(cfg: AuditConfig, sel: Selection, fold, quality, worst, worst_q, out: Path) -> list[dict]:
    ids = sel.store_ids()
    rows = [dict(zip(COLUMNS, (ids[i], str(sel.meta["sample_id"][i]), int(sel.meta["frame_index"][i]), int(fold[i]),
                               round(float(quality[i]), 6), worst[i], round(float(worst_q[i]), 6))))
            for i in np.lexsort((quality, worst_q))]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / AUDIT_FILE, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (out / "audit.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    return rows


def check(cfg: AuditConfig) -> None:
    """The settings before any store is read."""
    if cfg.folds < 2:
        raise SettingError("folds", f"must be at least 2, got {cfg.folds}")
    for name, value in (("epochs", cfg.epochs), ("batch", cfg.batch), ("size", cfg.size)):
        if value < 1:
            raise SettingError(name, f"must be at least 1, got {value}")
    if not cfg.stores:
        raise AnnotatorError("no store given")
