"""`fas-train train --weight-by COLUMN`: doubtful rows weigh less in the pixel loss, by the documented
map; models without a per-row pixel loss and columns that are no signal are one-line errors."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from annotator.core.errors import SettingError
from fas_train.cli import cli
from fas_train.config import TrainConfig
from fas_train.models import create
from fas_train.models.cdc import contrastive_depth_loss
from fas_train.selection import row_weights
from fas_train.train import train


def test_the_map_from_a_signal_to_a_weight():
    w = row_weights(np.array([0.0, 0.5, 1.0, 2.0, -1.0, np.nan], np.float32), "x", 0.2)
    assert w.tolist() == pytest.approx([0.2, 0.6, 1.0, 1.0, 0.2, 1.0])
    with pytest.raises(SettingError, match="not a numeric quality column"):
        row_weights(np.array(["a"], object), "prior_worst_region", 0.1)


def test_dccdn3_weighs_each_row_of_its_pixel_loss():
    torch.manual_seed(0)
    model = create("dccdn3", width=0.25)
    out, label = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)
    plain, _ = model.loss(out, {"label": label})
    expected = model.alpha * F.mse_loss(out, label) + model.beta * contrastive_depth_loss(out, label)
    assert float(plain) == pytest.approx(float(expected), rel=1e-5)
    ones, _ = model.loss(out, {"label": label, "row_weight": torch.ones(4)})
    assert float(ones) == pytest.approx(float(plain), rel=1e-5)
    # row 0 weighs nothing: the loss is that of rows 1..3 alone
    without, _ = model.loss(out, {"label": label, "row_weight": torch.tensor([0.0, 1.0, 1.0, 1.0])})
    rest, _ = model.loss(out[1:], {"label": label[1:]})
    assert float(without) == pytest.approx(float(rest), rel=1e-5)


def test_training_weighted_by_a_quality_column_records_it(sample_store, tmp_path):
    url, _ = sample_store
    cfg = TrainConfig(model="dccdn3", train=[url], protocol="all", epochs=2, batch=8, size=32, width=0.25, workers=0,
                      augment=False, weight_by="temporal_consistency", weight_floor=0.3)
    result = train(cfg, str(tmp_path / "run"), device="cpu", progress=False)
    assert len(result.losses) == 2 and all(np.isfinite(result.losses))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["weight_by"] == "temporal_consistency" and saved["weight_floor"] == 0.3


@pytest.mark.parametrize("args,message", [
    (["--model", "lgsc", "--weight-by", "prior_agreement"], "model lgsc has no per-row pixel loss to weigh"),
    (["--model", "dccdn3", "--weight-by", "no_such_column"], "has no meta column no_such_column"),
    (["--model", "dccdn3", "--weight-by", "prior_agreement", "--weight-floor", "2"], "--weight-floor"),
])
def test_weight_by_errors_are_one_line(sample_store, tmp_path, args, message):
    url, _ = sample_store
    r = CliRunner().invoke(cli, ["train", "--store", url, "--protocol", "all", "--epochs", "1", "--workers", "0",
                                 "--out", str(tmp_path / "run"), *args])
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output, r.output


def test_weights_from_an_audit_table_match_rows_by_store_and_sample(sample_store, tmp_path):
    from annotator import store
    from fas_train.selection import select

    url, _ = sample_store
    sel = select([url], "all", "train")
    store_id = store.open_store(url).attrs["store_id"]
    ids = [str(s) for s in sel.meta["sample_id"]]
    table = tmp_path / "audit.csv"
    table.write_text("store_id,sample_id,label_quality\n" + f"{store_id},{ids[0]},0.0\n" + f"{store_id},{ids[1]},0.5\n"
                     + f"other,{ids[2]},0.0\n")
    sel.weigh_rows(f"audit:{table}", 0.2)
    assert sel.weights[:3].tolist() == pytest.approx([0.2, 0.6, 1.0]) and (sel.weights[3:] == 1).all()
    with pytest.raises(SettingError, match="cannot read the audit table"):
        sel.weigh_rows(f"audit:{tmp_path / 'missing.csv'}", 0.2)
