"""Scores of a model over a selection (frame by frame, or video by video with a video branch) and the
pieces every loop shares: the device, autocast, the loader and the fields a model reads."""

from __future__ import annotations

import numpy as np
import torch

from annotator.core.errors import SettingError
from fas_train.data import StoreLoader, StoreStream
from fas_train.inputs import to_inputs
from fas_train.metrics import Scores
from fas_train.models import FasModel
from fas_train.selection import Selection


def device_of(name: str | None) -> torch.device:
    if name:
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise SettingError("device", f"{name}: CUDA is not available here; use --device cpu")
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def fields_for(model: FasModel, training: bool) -> tuple[str, ...]:
    return ("image", *(model.train_needs if training else model.needs))


def loader(stream: StoreStream, workers: int) -> StoreLoader:
    return StoreLoader(stream, workers)


def autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)


def scores_of(sel: Selection, values: np.ndarray) -> Scores:
    return Scores(values, sel.meta["is_attack"], sel.meta["attack_type"], video_keys(sel))


def video_keys(sel: Selection) -> np.ndarray:
    """Each row's video_id; prefixed with its store's number in the selection ("1/v3") when two
    stores hold a video of the same id, so that video-level scores never merge videos of two stores."""
    ids = sel.meta["video_id"].astype(str)
    seen: dict[str, int] = {}
    for k, (p, off) in enumerate(zip(sel.parts, sel.offsets)):
        for v in set(ids[off:off + len(p.rows)].tolist()):
            if seen.setdefault(v, k) != k:
                store = np.repeat(np.arange(len(sel.parts)), [len(q.rows) for q in sel.parts]).astype(str)
                return np.char.add(np.char.add(store, "/"), ids).astype(object)
    return ids.astype(object)


def scoring_loader(model: FasModel, sel: Selection, batch: int, workers: int) -> StoreLoader:
    """The batches score() reads: every row of sel once, in order, `batch` rows at a time, with the
    fields the model scores from, read by `workers` processes (0: in this one)."""
    return loader(StoreStream(sel, fields_for(model, False), batch, shuffle=False), workers)


@torch.no_grad()
def score(model: FasModel, batches: StoreLoader, size: int | None, device: torch.device) -> np.ndarray:
    """Attack scores (len(sel),) float64 of every row of the selection `batches` reads
    (scoring_loader), in selection order. A loader made once may be read again at every call: its
    worker processes then start once per run, not once per epoch."""
    model.eval()
    out = np.full(len(batches.stream.sel), np.nan)
    for b in batches:
        x = to_inputs(b, device, size)
        with autocast(device):
            pred = model(x["image"])
        out[b["index"].numpy()] = model.score(pred.float(), x).double().cpu().numpy()
    return out


@torch.no_grad()
def score_videos(model: FasModel, sel: Selection, batch: int, size: int | None, workers: int,
                 device: torch.device) -> np.ndarray:
    """The video branch's attack score of each video of sel (T evenly spaced frames through the
    LSTM), given to every selected row of that video: (len(sel),) float64 in selection order."""
    from fas_train.videos import VideoStream

    model.eval()
    stream = VideoStream(sel, fields_for(model, False), max(1, batch // model.frames), model.frames)
    out = np.full(len(sel), np.nan)
    for b in loader(stream, workers):
        x = to_inputs(b, device, size)
        with autocast(device):
            pred = model.forward_video(x["image"])
        for v, value in zip(stream.video_of[b["index"][::model.frames].numpy()],
                            model.video_score(pred.float()).double().cpu().numpy()):
            out[stream.videos[v]] = value
    return out
