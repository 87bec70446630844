import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from annotator.core.errors import AnnotatorError
from fas_train.metrics import (Scores, at_threshold, auc, choose_threshold, eer_threshold, evaluate, read_scores, roc, threshold_at_apcer, threshold_at_bpcer, write_scores)


def _scores(seed: int, n: int = 300, tied: bool = False) -> Scores:
    rng = np.random.default_rng(seed)
    is_attack = rng.random(n) < 0.6
    score = rng.normal(size=n) + 1.2 * is_attack
    if tied:
        score = np.round(score * 2) / 2  # a handful of distinct values, many ties across classes
    types = np.where(is_attack, rng.choice(["print", "replay", "mask"], n), "bonafide")
    return Scores(score, is_attack, types, np.array([f"v{i // 3}" for i in range(n)]))


def _count(s: Scores, t: float):
    """The definitions, counted directly."""
    bf = [x for x, a in zip(s.score, s.is_attack) if not a]
    per = {}
    for name in set(s.attack_type[s.is_attack]):
        a = [x for x, k, isa in zip(s.score, s.attack_type, s.is_attack) if isa and k == name]
        per[name] = sum(x < t for x in a) / len(a)
    att = [x for x, a in zip(s.score, s.is_attack) if a]
    return per, sum(x < t for x in att) / len(att), sum(x >= t for x in bf) / len(bf)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_and_roc_match_scikit_learn(seed, tied):
    s = _scores(seed, tied=tied)
    assert auc(s) == pytest.approx(roc_auc_score(s.is_attack, s.score), abs=1e-12)
    fpr, tpr, thr = roc(s)
    ref_fpr, ref_tpr, ref_thr = roc_curve(s.is_attack, s.score, drop_intermediate=False)
    # sklearn starts at +inf and walks down the distinct scores, as ours does
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    np.testing.assert_allclose(thr[1:], ref_thr[1:])


@pytest.mark.parametrize("tied", [False, True])
def test_rates_at_a_threshold_match_a_direct_count(tied):
    s = _scores(3, tied=tied)
    for t in (np.median(s.score), 0.5, float(s.score[7]), -10.0, 10.0):
        m = at_threshold(s, t)
        per, pooled, bpcer = _count(s, t)
        assert m["apcer_per_species"] == pytest.approx(per)
        assert m["apcer"] == pytest.approx(max(per.values()))
        assert m["apcer_pooled"] == pytest.approx(pooled) and m["bpcer"] == pytest.approx(bpcer)
        assert m["acer"] == pytest.approx((max(per.values()) + bpcer) / 2)
        assert m["hter"] == pytest.approx((pooled + bpcer) / 2)


@pytest.mark.parametrize("tied", [False, True])
def test_eer_and_operating_points_by_brute_force(tied):
    s = _scores(4, tied=tied)
    cands = sorted(set(s.score.tolist())) + [np.inf]
    rates = [(t,) + _count(s, t)[1:] for t in cands]
    gap = min(abs(a - b) for _, a, b in rates)
    t = eer_threshold(s)
    _, a, b = _count(s, t)
    assert abs(a - b) == pytest.approx(gap)
    # BPCER <= 1 %: the lowest such threshold; APCER <= 5 %: the highest such threshold
    t1 = threshold_at_bpcer(s, 0.01)
    assert t1 == min(t for t, _, b in rates if b <= 0.01)
    t5 = threshold_at_apcer(s, 0.05)
    assert t5 == max(t for t, a, _ in rates if a <= 0.05)
    m = evaluate(s)
    assert m["bpcer_at_apcer_5pct"] == pytest.approx(_count(s, t5)[2])
    assert m["apcer_at_bpcer_1pct"] == pytest.approx(_count(s, t1)[1])
    assert m["eer"] == pytest.approx((a + b) / 2)
    assert m["threshold_from"] == "test (optimistic)"


def test_dev_threshold_is_applied_unchanged_to_test():
    dev, test = _scores(5), _scores(6)
    for rule in ("eer", "bpcer1"):
        t = choose_threshold(dev, rule)
        m = evaluate(test, dev, rule)
        assert m["threshold"] == t and m["threshold_from"] == "dev"
        per, pooled, bpcer = _count(test, t)
        assert m["bpcer"] == pytest.approx(bpcer) and m["apcer_pooled"] == pytest.approx(pooled)
        assert m["dev"]["bpcer"] == pytest.approx(_count(dev, t)[2])
    assert _count(dev, choose_threshold(dev, "bpcer1"))[2] <= 0.01
    assert evaluate(test, dev, 0.25)["threshold"] == 0.25


def test_video_scores_are_frame_means():
    s = _scores(7, n=30)
    s.is_attack = np.repeat(s.is_attack[::3], 3)  # one label per video of 3 frames
    s.attack_type = np.repeat(s.attack_type[::3], 3)
    v = s.by_video()
    assert len(v.score) == 10
    for vid, sc in zip(v.video_id, v.score):
        assert sc == pytest.approx(s.score[s.video_id == vid].mean())
    assert evaluate(s, video=True)["n_bona_fide"] + evaluate(s, video=True)["n_attack"] == 10


def test_csv_round_trip_and_cli(tmp_path):
    from click.testing import CliRunner

    from fas_train.cli import cli

    s, d = _scores(8), _scores(9)
    write_scores(str(tmp_path / "t.csv"), s)
    write_scores(str(tmp_path / "d.csv"), d)
    back = read_scores(str(tmp_path / "t.csv"))
    np.testing.assert_allclose(back.score, s.score, rtol=1e-7)
    assert (back.is_attack == s.is_attack).all() and (back.attack_type == s.attack_type).all()
    r = CliRunner().invoke(cli, ["metrics", str(tmp_path / "t.csv"), "--dev", str(tmp_path / "d.csv"),
                                 "--threshold", "bpcer1"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["threshold"] == pytest.approx(choose_threshold(read_scores(str(tmp_path / "d.csv")), "bpcer1"))
    assert out["auc"] == pytest.approx(roc_auc_score(s.is_attack, s.score), abs=1e-6)
    r = CliRunner().invoke(cli, ["metrics", "--help"])
    assert "higher = more likely an attack" in r.output


def test_bad_scores_files_are_one_line_errors(tmp_path):
    from click.testing import CliRunner

    from fas_train.cli import cli

    (tmp_path / "a.csv").write_text("score,label\n0.1,1\n")
    (tmp_path / "b.csv").write_text("score,is_attack,attack_type\nx,1,print\n")
    (tmp_path / "c.csv").write_text("score,is_attack,attack_type\n0.1,1,print\n0.2,1,print\n")
    for f, msg in (("a.csv", "expected a CSV with columns"), ("b.csv", "bad value"),
                   ("c.csv", "needs both bona fide and attack"), ("missing.csv", "cannot read")):
        r = CliRunner().invoke(cli, ["metrics", str(tmp_path / f)])
        assert r.exit_code != 0 and msg in r.output and "Traceback" not in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
    with pytest.raises(AnnotatorError, match="threshold unknown rule"):
        choose_threshold(_scores(0), "eerr")
