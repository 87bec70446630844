"""A model registered from this file alone trains and scores through fas-train: the trainer asks only
what the FasModel contract gives (needs, loss, score)."""

import csv

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fas_train.models import MODELS, FasModel
from fas_train.config import TrainConfig
from fas_train.train import train
from helpers import registered


class MeanColour(FasModel):
    """(B, 3, S, S) image -> (B,) logit from the mean colour and the live channel's mean (reads `label`)."""

    train_needs = needs = ("label",)
    card = {"outputs": "one logit", "loss": "BCE + L1 on the live share", "score": "sigmoid(logit)"}

    def __init__(self, width: float = 1.0):
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, image):
        return self.linear(image.mean(dim=(2, 3)))

    def loss(self, out, batch):
        cls = F.binary_cross_entropy_with_logits(out[:, 0], batch["is_attack"].float())
        live = batch["label"][:, 1].float().mean(dim=(1, 2))
        share = (out[:, 1] - live).abs().mean()
        return cls + share, {"cls": cls.detach(), "share": share.detach()}

    def score(self, out, batch):
        return torch.sigmoid(out[:, 0])


@pytest.fixture
def mean_colour():
    with registered((MODELS, "test-mean-colour", MeanColour, {})):
        yield


def test_a_registered_model_trains_on_a_store(mean_colour, sample_store, tmp_path):
    url, _ = sample_store
    cfg = TrainConfig(model="test-mean-colour", train=[url], protocol="all", epochs=3, batch=8, lr=0.05, size=32,
                      workers=0, augment=False)
    result = train(cfg, str(tmp_path / "run"), device="cpu", progress=False)
    assert len(result.losses) == 3 and result.losses[-1] < result.losses[0], result.losses
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == ["1", "2", "3"]
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["model"] == "test-mean-colour" and set(state["state_dict"]) == {"linear.weight", "linear.bias"}
