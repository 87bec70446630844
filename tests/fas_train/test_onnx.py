"""`fas-train export-onnx`: ONNX Runtime's scores equal PyTorch's (the eval path) on the sample store."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fas_train.cli import cli
from fas_train.models import MODELS
from fas_train.selection import select
from fas_train.config import TrainConfig
from fas_train.scoring import score, scoring_loader
from fas_train.train import train

ort = pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("name", MODELS.names())
def test_onnx_scores_equal_pytorchs_on_the_sample_store(sample_store, tmp_path, name):
    url, _ = sample_store
    # resnet50_ps pools its last stage to 8 x 8: a 256 input gives that stage 8 x 8 (exportable), 64 would not
    size = 256 if name == "resnet50_ps" else 64
    options = {"video": True, "frames": 2, "video_batch": 1} if name == "ccdd" else {}
    cfg = TrainConfig(model=name, train=[url], protocol="all", epochs=1, batch=8, size=size, width=0.15, workers=0,
                      augment=False, model_options=options)
    result = train(cfg, str(tmp_path / "run"), device="cpu", progress=False)
    out = tmp_path / "model.onnx"
    r = CliRunner().invoke(cli, ["export-onnx", "--run", str(tmp_path / "run"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    sel = select([url], "all", "test", needs=result.model.needs)
    expected = score(result.model, scoring_loader(result.model, sel, 8, 0), size, torch.device("cpu"))
    import zarr

    root = zarr.open_group(url, mode="r")
    rows = sel.parts[0].rows
    feeds = {"image": root["image"].get_orthogonal_selection((rows,))}
    for f in result.model.score_needs:
        feeds[f] = root[f].get_orthogonal_selection((rows,))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(feeds)
    got = session.run(None, feeds)[0]
    assert got.shape == (len(rows),) and np.abs(got - expected).max() < 1e-4
    sidecar = json.loads((tmp_path / "model.onnx.json").read_text())
    assert sidecar["inputs"]["image"] == {"shape": "(B, S, S, 3)", "dtype": "uint8"} and sidecar["crop_side"] == 256


def test_a_model_that_cannot_export_is_a_one_line_error_and_leaves_nothing(sample_store, tmp_path):
    url, _ = sample_store
    cfg = TrainConfig(model="resnet50_ps", train=[url], protocol="all", epochs=1, batch=8, size=64, width=0.15,
                      workers=0, augment=False)
    train(cfg, str(tmp_path / "run"), device="cpu", progress=False)
    r = CliRunner().invoke(cli, ["export-onnx", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "m.onnx")])
    assert r.exit_code == 1 and "model resnet50_ps does not export to ONNX" in r.output and "Traceback" not in r.output
    assert not list(tmp_path.glob("m.onnx*"))
