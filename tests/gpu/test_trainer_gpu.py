"""The trainer on CUDA (skipped without a CUDA device): bf16 training lowers the loss, and the
checkpoint scores the same on CUDA (bf16 autocast) as on CPU (fp32), up to bf16 rounding."""

import numpy as np
import pytest

from fas_train.evaluate import evaluate_run
from fas_train.metrics import read_scores
from fas_train.config import TrainConfig
from fas_train.train import train

pytestmark = pytest.mark.gpu


def test_dccdn3_trains_on_cuda_and_scores_like_cpu(sample_store, tmp_path):
    url, _ = sample_store
    cfg = TrainConfig(model="dccdn3", train=[url], protocol="all", epochs=5, batch=16, lr=3e-3, size=128,
                      width=0.5, workers=2, augment=False)
    result = train(cfg, str(tmp_path / "run"), device="cuda", progress=False)
    assert result.losses[-1] < 0.8 * result.losses[0], result.losses
    evaluate_run(str(tmp_path / "run"), [url], "all", device="cuda", out=str(tmp_path / "gpu"))
    evaluate_run(str(tmp_path / "run"), [url], "all", device="cpu", out=str(tmp_path / "cpu"))
    gpu = read_scores(str(tmp_path / "gpu" / "scores_test.csv")).score
    cpu = read_scores(str(tmp_path / "cpu" / "scores_test.csv")).score
    assert np.abs(gpu - cpu).max() < 0.02 * max(1e-3, np.abs(cpu).max()) + 2e-3
