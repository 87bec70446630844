"""`fas-train export-onnx`: a trained run as one ONNX graph from the store's uint8 crops to attack
scores, for deployment outside Python, checked against PyTorch before it is kept.

Graph inputs (batch axis dynamic): `image` (B, S, S, 3) uint8 RGB face crops as the store holds them
(S = the store's crop side), plus the maps the model's score reads (`needs`, e.g. dccdn3's `region`
(B, S, S) uint8), in the store's layouts. Inside: the same conversion as training's inputs
(fas_train/inputs.py: resize to the run's --size, (x - 127.5) / 128), the network, the score rule.
Output: `score` (B,) float32, higher = more likely an attack. Exported with torch's TorchScript-based
ONNX exporter (opset 17). A sidecar MODEL.json records the inputs, the score rule and the dev
threshold of `fas-train eval` when the run has one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from annotator.core.errors import AnnotatorError

from fas_train.inputs import to_inputs
from fas_train.checkpoints import load_decider

OPSET = 17
TOLERANCE = 1e-4
LAYOUTS = {"image": ("(B, S, S, 3)", torch.uint8), "region": ("(B, S, S)", torch.uint8),
           "depth": ("(B, S, S)", torch.uint8), "label": ("(B, 3, S, S)", torch.uint8),
           "landmarks": ("(B, P, 3)", torch.float32)}


class Scorer(nn.Module):
    """(image, *needs) in the store's layouts -> (B,) attack scores, as `fas-train eval` computes them."""

    def __init__(self, model, needs: tuple[str, ...], size: int | None):
        super().__init__()
        self.model, self.needs, self.size = model, needs, size

    def forward(self, image: torch.Tensor, *maps: torch.Tensor) -> torch.Tensor:
        x = to_inputs({"image": image, **dict(zip(self.needs, maps))}, image.device, self.size)
        return self.model.score(self.model(x["image"]), x)


def sample_inputs(stores: list[str], needs: tuple[str, ...], n: int = 8) -> tuple[dict[str, np.ndarray], str]:
    """Up to n rows of the run's first store (usable rows), the check's inputs; where they came from."""
    from annotator.store import committed_rows, open_store, shard_size_of

    root = open_store(stores[0])
    status = root["meta/status"][:]
    rows = np.nonzero((status == 0) & committed_rows(stores[0], len(status), shard_size_of(root)))[0][:n]
    return {f: root[f].get_orthogonal_selection((rows,)) for f in ("image", *needs)}, f"{len(rows)} rows of {stores[0]}"


def export_onnx(run: str, out: str, checkpoint: str | None = None) -> dict:
    """Write RUN's model as ONNX at `out` (and out + ".json"); returns {"inputs", "max_difference",
    "checked_on", "thresholds"}. checkpoint: best, last or a file; by default the weights `fas-train
    eval` scored, whose dev thresholds the sidecar records ("thresholds": whether it does: weights eval
    did not score get none). One-line errors for a model that does not export or whose ONNX scores differ from
    PyTorch's by more than TOLERANCE (then nothing is kept)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise AnnotatorError("export-onnx needs onnx and onnxruntime: pip install 'fas-annotator[onnx]'") from None
    # thresholds only for the weights eval chose them for; an export of other weights has none
    cfg, model, ckpt, report = load_decider(run, checkpoint, calibrated=False)
    model.eval()
    needs = tuple(model.score_needs)
    unknown = [f for f in needs if f not in LAYOUTS]
    if unknown:
        raise AnnotatorError(f"model {cfg.model} scores with {', '.join(unknown)}, which export-onnx has no layout for")
    inputs, origin = sample_inputs(cfg.train, needs)
    scorer = Scorer(model, needs, cfg.size).eval()
    args = tuple(torch.from_numpy(np.ascontiguousarray(inputs[f])) for f in ("image", *needs))
    with torch.no_grad():
        expected = scorer(*args).double().numpy()
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    names = ["image", *needs]
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on TorchScript and tracing
            torch.onnx.export(scorer, args, str(tmp), dynamo=False, input_names=names, output_names=["score"],
                              dynamic_axes={**{n: {0: "batch"} for n in names}, "score": {0: "batch"}},
                              opset_version=OPSET)
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = session.run(None, {n: a.numpy() for n, a in zip(names, args)})[0].astype(np.float64)
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise AnnotatorError(f"model {cfg.model} does not export to ONNX ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:200]})") from None
    diff = float(np.abs(got - expected).max())
    if not diff <= TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise AnnotatorError(f"ONNX Runtime's scores differ from PyTorch's by {diff:.3g} (> {TOLERANCE}) on {origin}; "
                             "nothing was written")
    os.replace(tmp, target)
    sidecar = {"model": cfg.model, "run": str(run), "epoch": int(ckpt["epoch"]) + 1, "opset": OPSET,
               "inputs": {n: {"shape": LAYOUTS[n][0], "dtype": str(LAYOUTS[n][1]).removeprefix("torch.")}
                          for n in names},
               "crop_side": int(args[0].shape[1]), "input_size": cfg.size or int(args[0].shape[1]),
               "output": "score (B,) float32, higher = more likely an attack",
               "checked": {"on": origin, "max_difference": diff}}
    if report is not None:  # eval's thresholds, chosen for these very weights
        sidecar["threshold"] = {lvl: {"value": report[lvl]["threshold"], "rule": report[lvl]["threshold_rule"],
                                      "from": report[lvl]["threshold_from"]} for lvl in ("frame", "video")}
    Path(str(target) + ".json").write_text(json.dumps(sidecar, indent=2))
    return {"inputs": names, "max_difference": diff, "checked_on": origin, "thresholds": report is not None}
