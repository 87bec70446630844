"""`fas-train infer`: score new images and videos with a trained run. Faces are found and cropped
exactly as in the store the run was trained on (its annotate config: detector, landmarker, box scale,
crop size, frame sampling, rotation; the same code as `annotate run`, annotator/shard/pipeline.py:crop_faces),
scored by the run's model, and decided at the threshold `fas-train eval` calibrated on dev.

Per input one result dict: image -> its score; video -> its frames' scores and the video score as
`fas-train eval` computes it (the mean of the frame scores, or a video branch's own score over T
evenly spaced frames). Scores: higher = more likely an attack; "attack" when score >= threshold.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import torch

from annotator.config import AnnotateConfig
from annotator.datasets.base import media_files, media_kind, refs_for_file
from annotator.core.errors import AnnotatorError
from annotator.core.samples import Status
from annotator.media.sampling import parse as parse_sampling
from annotator.media.plan import sampled

from fas_train.inputs import to_inputs
from fas_train.checkpoints import load_decider
from fas_train.metrics import parse_rule
from fas_train.config import ANNOTATE_CONFIG
from fas_train.scoring import autocast, device_of


def preprocess_config(run: str | Path, stores: list[str]) -> AnnotateConfig:
    """How the run's training store was cropped: RUN/annotate_config.json, else the store's config."""
    saved = Path(run) / ANNOTATE_CONFIG
    if saved.is_file():
        return AnnotateConfig.from_dict(json.loads(saved.read_text()))
    from annotator.store import open_store

    try:
        return AnnotateConfig.from_dict(dict(open_store(stores[0]).attrs.get("config", {})))
    except AnnotatorError:
        raise AnnotatorError(f"{run} holds no {ANNOTATE_CONFIG} and its training store {stores[0]} is not "
                             "readable: infer needs to know how that store cropped its faces") from None


def thresholds(run: str | Path, given: float | None, report: dict | None) -> dict[str, dict]:
    """{"frame": {...}, "video": {...}}, each {"threshold", "rule", "from"}: --threshold when given,
    else what `fas-train eval` chose on dev for the loaded weights (`report`: RUN/eval/metrics.json,
    checkpoints.load_decider)."""
    if given is not None:
        given = parse_rule(given)  # a number, finite: nan would call every input bona fide
        return {lvl: {"threshold": float(given), "rule": "given", "from": "--threshold"} for lvl in ("frame", "video")}
    path = Path(run) / "eval" / "metrics.json"
    if report is None:
        raise AnnotatorError(f"{path} does not exist: run `fas-train eval --run {run}` first (it calibrates the "
                             "threshold on dev), or pass --threshold")
    return {lvl: {"threshold": float(report[lvl]["threshold"]), "rule": report[lvl]["threshold_rule"],
                  "from": f"{report[lvl]['threshold_from']} of {', '.join(report['dev_stores'])} ({path}, "
                          f"epoch {report['epoch']})"}
            for lvl in ("frame", "video")}


def media_inputs(inputs: list[str]) -> list[Path]:
    """Image and video files of the inputs (folders searched recursively), each file once in the
    order first given; one-line errors for a missing path, an unsupported file or a folder without
    media, before any work."""
    files = []
    for text in inputs:
        p = Path(text)
        if not p.exists():
            raise AnnotatorError(f"{text} does not exist")
        if p.is_dir():
            found = media_files(p)
            if not found:
                raise AnnotatorError(f"{text} holds no image or video files")
            files.extend(found)
        elif media_kind(p) is None:
            raise AnnotatorError(f"{text} is not an image or video this tool reads (by its extension)")
        else:
            files.append(p)
    return unique_files(files)


def unique_files(files: list[Path]) -> list[Path]:
    """The first of the paths that name one file (given alone and inside a folder, through a link,
    as ./a.jpg and a.jpg): scoring it twice would print two lines for one input."""
    seen, out = set(), []
    for f in files:
        real = os.path.realpath(f)
        if real not in seen:
            seen.add(real)
            out.append(f)
    return out


class Inference:
    """A run ready to score inputs: its model on `device`, the store's crop settings and models."""

    def __init__(self, run: str, device: str | None = None, threshold: float | None = None, batch: int = 32,
                 fan_checkpoint: str | None = None, fan_depth_checkpoint: str | None = None,
                 checkpoint: str | None = None):
        from annotator.face import DETECTORS, LANDMARKERS
        from annotator.shard import Models, build_fallback, build_landmarker, build_models

        self.cfg, self.model, self.ckpt, report = load_decider(run, checkpoint, calibrated=threshold is None)
        self.limits = thresholds(run, threshold, report)
        acfg = preprocess_config(run, self.cfg.train)
        # the dataset's own face files do not exist for new inputs: the store's detector stands in;
        # the landmark cross-check decides rows of a store, not scores (and its FAN weights may be absent here)
        self.acfg = dataclasses.replace(acfg, use_dataset_faces=False, landmark_check={})
        landmarker = LANDMARKERS.describe(acfg.landmarker)
        if not landmarker.locate and (fan_checkpoint or fan_depth_checkpoint):
            raise AnnotatorError(f"the run's store was annotated with --landmarker {acfg.landmarker}: "
                                 "--fan-checkpoint and --fan-depth-checkpoint do not apply")
        # the store's landmarker weights, wherever they are on this machine
        self.acfg = dataclasses.replace(self.acfg, landmarker_options=landmarker.locate_options(
            acfg.landmarker_options, {"checkpoint": fan_checkpoint, "depth_checkpoint": fan_depth_checkpoint}))
        if device:  # the store's models (FAN, SAM) run where the run's model does
            self.acfg = dataclasses.replace(self.acfg, runtime={**self.acfg.runtime, "device": device})
        self.device = device_of(device)
        self.model.to(self.device).eval()
        self.batch = batch
        self.rule = parse_sampling(self.acfg.sampling, self.acfg.frames_per_video)
        # maps the score reads (dccdn3: regions) come from the store's own segmenter; faces are found as
        # the store found them (its detector, landmarker and face fallback) either way
        if self.model.score_needs:
            self.models = build_models(self.acfg)
        else:
            self.models = Models(DETECTORS.create(self.acfg.detector), build_landmarker(self.acfg), None, None,
                                 fallback=build_fallback(self.acfg))

    def __call__(self, path: Path) -> dict:
        from annotator.shard import crop_faces, segment_and_fuse

        refs = list(sampled(refs_for_file(path, path.parent, self.acfg.frames_per_video, is_attack=False,
                                          attack_type="bonafide", dataset="infer"), self.rule))
        rows = crop_faces(refs, self.acfg, self.models)
        if self.model.score_needs:
            segment_and_fuse(rows, self.acfg, self.models)
        kind = "video" if refs[0].is_video else "image"
        ok = [i for i in range(len(refs)) if rows.meta["status"][i] == int(Status.OK)]
        result = {"input": str(path), "kind": kind}
        if not ok:
            status = Status(rows.meta["status"][0])
            return {**result, "status": status.name.lower(), "error": f"no usable face: {rows.meta['error'][0]}"}
        scores = self._scores(rows.arrays, ok)
        frames = [{"frame_index": int(rows.meta["frame_index"][i]), "score": float(s),
                   "face_box": [round(v, 1) for v in rows.boxes[i]]} for i, s in zip(ok, scores)]
        level = "frame" if kind == "image" else "video"
        value = float(scores[0]) if kind == "image" else self._video_score(rows.arrays, ok, scores)
        limit = self.limits[level]["threshold"]
        result.update(status="ok", score=value, decision="attack" if value >= limit else "bona fide",
                      threshold=limit, face_box=frames[0]["face_box"])
        if kind == "video":
            missed = len(refs) - len(ok)
            result.update(frames=frames, frames_without_face=missed)
        return result

    @torch.no_grad()
    def _scores(self, arrays: dict, rows: list[int]) -> np.ndarray:
        out = []
        for s in range(0, len(rows), self.batch):
            take = rows[s:s + self.batch]
            batch = {f: torch.from_numpy(np.ascontiguousarray(arrays[f][take])) for f in ("image", *self.model.score_needs)}
            x = to_inputs(batch, self.device, self.cfg.size)
            with autocast(self.device):
                pred = self.model(x["image"])
            out.append(self.model.score(pred.float(), x).double().cpu().numpy())
        return np.concatenate(out)

    @torch.no_grad()
    def _video_score(self, arrays: dict, rows: list[int], scores: np.ndarray) -> float:
        if not self.model.frames:
            return float(scores.mean())
        from fas_train.videos import pick_frames

        take = [rows[j] for j in pick_frames(len(rows), self.model.frames, None)]
        x = to_inputs({"image": torch.from_numpy(np.ascontiguousarray(arrays["image"][take]))}, self.device,
                      self.cfg.size)
        with autocast(self.device):
            pred = self.model.forward_video(x["image"])
        return float(self.model.video_score(pred.float())[0])
