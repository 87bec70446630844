"""The whole-video stream and ccdd's video branch."""

import csv
import json
import types

import numpy as np
import pytest
import torch
from synthetic import make_store

from fas_train import data as data_module
from fas_train import videos as videos_module
from fas_train.data import StoreLoader
from fas_train.evaluate import evaluate_run
from fas_train.inputs import Augment, to_inputs
from fas_train.metrics import read_scores
from fas_train.models import create
from fas_train.selection import select
from fas_train.config import TrainConfig
from fas_train.scoring import score_videos
from fas_train.train import train
from fas_train.videos import VideoStream, pick_frames

T = 4


def _store(tmp_path, name="v.zarr", seed=0):
    """40 rows in chunks of 8, videos of 5 frames (so videos cross chunk boundaries and chain every
    chunk together); video v1 stored in reverse frame order; rows 21-23 (3 frames of v4) failed."""
    n = 40
    frame = [i % 5 for i in range(n)]
    frame[5:10] = [4, 3, 2, 1, 0]
    status = [0] * n
    status[21:24] = [2, 2, 2]
    return make_store(str(tmp_path / name), n=n, shard=8, video_id=[f"v{i // 5}" for i in range(n)],
                      frame_index=frame, status=status, is_attack=[(i // 5) % 2 == 1 for i in range(n)], seed=seed)


def _sequences(batches) -> list[list[int]]:
    """Row numbers (the green channel of make_store's images) of each sequence of each batch."""
    out = []
    for b in batches:
        rows = b["image"][:, 0, -1, 1].view(-1, T)
        assert torch.equal(b["index"].view(-1, T)[:, 0] >= 0, torch.ones(len(rows), dtype=torch.bool))
        out.extend(rows.tolist())
    return out


def _frames_in_order(seq: list[int]) -> list[int]:
    frame = [i % 5 for i in range(40)]
    frame[5:10] = [4, 3, 2, 1, 0]
    return [frame[r] for r in seq]


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_video_comes_once_per_epoch_as_t_frames_in_order(tmp_path, workers, shuffle):
    sel = select([_store(tmp_path)], "all", "train")
    stream = VideoStream(sel, ("image",), sequences=3, frames=T, shuffle=shuffle, seed=2)
    assert len(stream.videos) == 8 and len(stream) == 3
    loader = StoreLoader(stream, workers)
    for epoch in range(2):
        stream.set_epoch(epoch)
        seqs = _sequences(loader)
        assert all(len(s) == T for s in seqs)
        assert sorted(s[0] // 5 for s in seqs) == list(range(8))  # each video once
        assert all(len({r // 5 for r in s}) == 1 for s in seqs)  # a sequence is one video's
        for s in seqs:
            f = _frames_in_order(s)
            assert f == sorted(f), s  # frame order, v1's reversed storage included
        by_video = {s[0] // 5: s for s in seqs}
        if not (shuffle and workers):  # no cuts: whole videos
            assert by_video[4] == [20, 20, 24, 24]  # 2 frames left: repeated, evenly spaced
            if shuffle:
                assert all(len(set(s)) == T for v, s in by_video.items() if v != 4)  # T distinct drawn frames
            else:
                assert by_video[0] == [0, 1, 3, 4] and by_video[1] == [9, 8, 6, 5]  # evenly spaced


def test_no_chunk_is_read_twice_per_epoch_with_or_without_cuts(tmp_path, monkeypatch):
    sel = select([_store(tmp_path), _store(tmp_path, "w.zarr", seed=1)], "all", "train")
    reads = []
    real = VideoStream._read

    def counting(self, arrays, k, c, positions):
        reads.append((k, c))
        return real(self, arrays, k, c, positions)

    monkeypatch.setattr(VideoStream, "_read", counting)
    for shuffle in (False, True):
        stream = VideoStream(sel, ("image",), sequences=2, frames=T, shuffle=shuffle, seed=5)
        seen = []
        reads.clear()
        for wid in range(2):  # the two workers of a DataLoader, run here one after the other
            info = types.SimpleNamespace(id=wid, num_workers=2)
            for module in (videos_module, data_module):
                monkeypatch.setattr(module, "get_worker_info", lambda info=info: info)
            for b in stream:
                seen.extend(stream.video_of[b["index"][::T].numpy()].tolist())
        assert sorted(reads) == sorted({(k, c) for k in range(2) for c in range(5)})  # every chunk, once
        assert sorted(seen) == list(range(16))  # both stores' videos (same ids, distinct videos), once each


def test_pick_frames_is_in_order_and_covers_short_videos():
    assert pick_frames(10, 4, None).tolist() == [0, 3, 6, 9]
    assert pick_frames(2, 4, None).tolist() == [0, 0, 1, 1]
    drawn = pick_frames(10, 4, np.random.default_rng(0))
    assert len(set(drawn.tolist())) == 4 and drawn.tolist() == sorted(drawn.tolist())


def test_augmentation_is_shared_by_the_frames_of_a_sequence():
    image = torch.arange(16 * 16 * 3, dtype=torch.int64).remainder(251).to(torch.uint8).view(1, 16, 16, 3)
    batch = {"image": image.repeat(4, 1, 1, 1)}
    x = to_inputs(batch, "cpu", augment=Augment(crop=0.5, colour=0.5), generator=torch.Generator().manual_seed(0),
                  group=2)["image"]
    assert torch.equal(x[0], x[1]) and torch.equal(x[2], x[3]) and not torch.equal(x[0], x[2])
    with pytest.raises(ValueError, match="multiple of 3 rows"):
        to_inputs(batch, "cpu", group=3)


def test_video_branch_shapes_and_its_heads_see_their_class_only():
    m = create("ccdd", domains=3, video=True, frames=T).eval()
    out = m.forward_video(torch.randn(2 * T, 3, 32, 32))
    assert out.shape == (2, 7)
    batch = {"is_attack": torch.tensor([False] * T + [False] * T), "domain": torch.tensor([0] * T + [2] * T)}
    loss, parts = m.video_loss(out, batch)
    loss.backward()
    head = m.video_discriminator
    assert head.live_head.weight.grad.abs().sum() > 0 and head.spoof_head.weight.grad.abs().sum() == 0
    assert set(parts) == {"video_cls", "video_domain", "lambda"} and float(parts["lambda"]) == pytest.approx(0.2)
    assert m.discriminator.live_head.weight.grad is None  # the image branch's heads are not in a video step


def test_ccdd_video_trains_alternately_on_three_domains_and_eval_uses_the_lstm(tmp_path):
    stores = [_store(tmp_path, f"d{k}.zarr", seed=k) for k in range(3)]
    cfg = TrainConfig(model="ccdd", train=stores, protocol="all", epochs=5, batch=12, lr=3e-3, size=32, workers=0,
                      augment=False, model_options={"domains": 3, "video": True, "frames": T, "video_batch": 4})
    run = tmp_path / "run"
    result = train(cfg, str(run), device="cpu", progress=False)
    assert result.losses[-1] < result.losses[0], result.losses
    steps = [json.loads(r["parts"]) for r in csv.DictReader(open(run / "log.csv")) if r["kind"] == "step"]
    kinds = ["video" if "video_cls" in p else "image" for p in steps[:12]]  # one epoch: 9 image + 6 video steps
    assert kinds == ["image", "video"] * 6, kinds
    assert all(p["lambda"] == pytest.approx(0.2) for p in steps)
    sel = select(stores, "all", "test")
    expected = score_videos(result.model, sel, batch=12, size=32, workers=0, device=torch.device("cpu"))
    for v in VideoStream(sel, ("image",), 1, T).videos:  # one score per video, on all of its rows
        assert len(set(expected[v].tolist())) == 1
    report = evaluate_run(str(run), stores, "all", device="cpu", workers=0)
    assert "LSTM" in report["video"]["score"] and report["video"]["n_bona_fide"] + report["video"]["n_attack"] == 24
    rows = list(csv.DictReader(open(run / "eval" / "scores_test.csv")))
    np.testing.assert_allclose([float(r["video_score"]) for r in rows], expected, rtol=1e-6, atol=1e-7)
    assert {r["video_id"] for r in rows} >= {"0/v0", "2/v7"}  # same ids in three stores: told apart
    frame = read_scores(str(run / "eval" / "scores_test.csv"))
    assert not np.allclose(frame.score, expected)  # the frame scores are the image branch's


def test_ccdd_command_line_options_and_their_one_line_errors(tmp_path):
    from click.testing import CliRunner

    from fas_train.cli import cli

    stores = [_store(tmp_path, f"c{k}.zarr", seed=k) for k in range(2)]
    base = ["train", "--train", ",".join(stores), "--protocol", "all", "--epochs", "1", "--batch", "8", "--size", "32",
            "--workers", "0", "--no-augment"]
    r = CliRunner().invoke(cli, base + ["--model", "ccdd", "--video", "--frames", "3", "--video-batch", "2",
                                        "--grl-lambda", "dann", "--out", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    options = json.loads((tmp_path / "r" / "config.json").read_text())["model_options"]
    assert options == {"domains": 2, "grl_lambda": "dann", "video": True, "frames": 3, "video_batch": 2}
    for args, message in ((["--model", "cdcn", "--video"], "--video applies to --model ccdd"),
                          (["--model", "ccdd", "--frames", "4"], "--frames and --video-batch go with --video"),
                          (["--model", "ccdd", "--grl-lambda", "fast"], "--grl-lambda takes a number or `dann`"),
                          (["--model", "ccdd", "--backbone", "vgg"], "unknown backbone 'vgg'; choose one of: resnet18, resnet50"),
                          (["--model", "ccdd", "--video", "--frames", "0"], "--frames must be at least 1")):
        r = CliRunner().invoke(cli, base + args + ["--out", str(tmp_path / "x")])
        assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output, (args, r.output)


def test_ccdd_takes_its_backbone_from_the_registry():
    m = create("ccdd", domains=2, backbone="resnet50", video=True, frames=2).eval()
    assert m.classifier.in_features == 2048 and m.lstm.input_size == 2048  # the paper's LSTM input
    with torch.no_grad():
        assert m(torch.randn(2, 3, 32, 32)).shape == (2, 5) and m.forward_video(torch.randn(4, 3, 32, 32)).shape == (2, 5)
