"""Presentation-attack detection metrics (ISO/IEC 30107-3, as computed in bob.pad.base).

Convention, once for the whole package: a score is higher for "more likely an attack", and a sample
is classified as an attack when score >= threshold. Then, at a threshold t:
  APCER(species) = share of that species' attacks with score < t (attacks accepted as bona fide)
  APCER          = max over species;  APCER_pooled = over all attacks (FAR)
  BPCER          = share of bona fide with score >= t (bona fide rejected; FRR)
  ACER = (APCER + BPCER) / 2;  HTER = (APCER_pooled + BPCER) / 2
EER: the threshold among the observed scores where APCER_pooled and BPCER are closest; the EER is
their mean there. AUC: area under the ROC of attack-vs-bona fide (ties count one half).
Plain numpy; no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from annotator.core.errors import AnnotatorError

OPERATING_POINTS = (0.01, 0.05, 0.10)


@dataclass
class Scores:
    """Scores of one set: score (N,) float, is_attack (N,) bool, attack_type (N,) str, video_id (N,) str."""

    score: np.ndarray
    is_attack: np.ndarray
    attack_type: np.ndarray
    video_id: np.ndarray | None = None

    def __post_init__(self):
        self.score = np.asarray(self.score, dtype=np.float64)
        self.is_attack = np.asarray(self.is_attack, dtype=bool)
        self.attack_type = np.asarray(self.attack_type, dtype=object).astype(str)
        if self.video_id is not None:
            self.video_id = np.asarray(self.video_id, dtype=object).astype(str)
        n = len(self.score)
        if not (len(self.is_attack) == len(self.attack_type) == n) or (
                self.video_id is not None and len(self.video_id) != n):
            raise AnnotatorError("scores: score, is_attack, attack_type (and video_id) must have equal lengths")
        if not np.isfinite(self.score).all():
            raise AnnotatorError("scores: every score must be a finite number")

    def check_both_classes(self, what: str) -> None:
        if not self.is_attack.any() or self.is_attack.all():
            raise AnnotatorError(f"{what}: needs both bona fide and attack samples, got "
                                 f"{int((~self.is_attack).sum())} bona fide and {int(self.is_attack.sum())} attacks")

    def by_video(self) -> "Scores":
        """Video-level scores: the mean frame score per video_id (label and type of its first frame)."""
        if self.video_id is None:
            raise AnnotatorError("video-level scores need a video_id column")
        ids, first, inverse = np.unique(self.video_id, return_index=True, return_inverse=True)
        mean = np.bincount(inverse, weights=self.score) / np.bincount(inverse)
        return Scores(mean, self.is_attack[first], self.attack_type[first], ids)


def _rates(s: Scores, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(APCER_pooled, BPCER) at each threshold, vectorized with sorted scores."""
    att = np.sort(s.score[s.is_attack])
    bf = np.sort(s.score[~s.is_attack])
    apcer = np.searchsorted(att, thresholds, side="left") / max(len(att), 1)  # attacks with score < t
    bpcer = 1.0 - np.searchsorted(bf, thresholds, side="left") / max(len(bf), 1)  # bona fide with score >= t
    return apcer, bpcer


def candidates(s: Scores) -> np.ndarray:
    """Every threshold that gives a distinct decision: the observed scores and +inf (all bona fide)."""
    return np.append(np.unique(s.score), np.inf)


def eer_threshold(s: Scores) -> float:
    t = candidates(s)
    apcer, bpcer = _rates(s, t)
    return float(t[np.argmin(np.abs(apcer - bpcer))])


def threshold_at_bpcer(s: Scores, target: float) -> float:
    """The lowest threshold with BPCER <= target (the fewest attacks accepted at that BPCER)."""
    t = candidates(s)
    _, bpcer = _rates(s, t)
    return float(t[np.nonzero(bpcer <= target + 1e-12)[0][0]])


def threshold_at_apcer(s: Scores, target: float) -> float:
    """The highest threshold with APCER_pooled <= target (the fewest bona fide rejected)."""
    t = candidates(s)
    apcer, _ = _rates(s, t)
    return float(t[np.nonzero(apcer <= target + 1e-12)[0][-1]])


RULE_USAGE = "use eer, bpcer1 or a finite number"


def parse_rule(rule: str | float) -> str | float:
    """A threshold rule as choose_threshold takes it: "eer", "bpcer1" or a finite float; a one-line
    error for anything else (checked before any scoring)."""
    problem = rule_problem(rule)
    if problem:
        raise AnnotatorError(f"threshold {problem}; {RULE_USAGE}")
    return rule if rule in ("eer", "bpcer1") else float(rule)


def rule_problem(rule) -> str:
    """What is wrong with a threshold rule ("" when nothing): "unknown rule 'median'", "'nan' is not a
    finite number" (nan compares false with every score: no errors at all)."""
    if rule in ("eer", "bpcer1"):
        return ""
    try:
        value = float(rule)
    except (TypeError, ValueError):
        return f"unknown rule {rule!r}"
    return "" if math.isfinite(value) and not isinstance(rule, bool) else f"{rule!r} is not a finite number"


def choose_threshold(s: Scores, rule: str | float) -> float:
    """A threshold from a rule on a (dev) set: "eer", "bpcer1" (BPCER = 1 %, as Fine-grained annotation on WMCA), or a number."""
    rule = parse_rule(rule)
    if rule == "eer":
        return eer_threshold(s)
    if rule == "bpcer1":
        return threshold_at_bpcer(s, 0.01)
    return rule


def auc(s: Scores) -> float:
    """Area under the ROC (attack = positive, higher score = attack), ties counted one half."""
    pos, neg = s.is_attack.sum(), (~s.is_attack).sum()
    if pos == 0 or neg == 0:
        return math.nan
    _, inverse, counts = np.unique(s.score, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]  # average 1-based rank of tied scores
    return float((ranks[s.is_attack].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def roc(s: Scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(BPCER, 1 - APCER_pooled, thresholds) from the highest threshold down: the ROC of attack
    detection (false-positive rate = bona fide rejected, true-positive rate = attacks detected)."""
    t = candidates(s)[::-1]
    apcer, bpcer = _rates(s, t)
    return bpcer, 1.0 - apcer, t


def at_threshold(s: Scores, threshold: float) -> dict:
    """Error rates of a set at a fixed threshold."""
    bf = s.score[~s.is_attack]
    bpcer = float((bf >= threshold).mean()) if len(bf) else math.nan
    species, counts = {}, {}
    for name in sorted(set(s.attack_type[s.is_attack].tolist())):
        a = s.score[s.is_attack & (s.attack_type == name)]
        species[name] = float((a < threshold).mean())
        counts[name] = int(len(a))
    att = s.score[s.is_attack]
    pooled = float((att < threshold).mean()) if len(att) else math.nan
    apcer = max(species.values()) if species else math.nan
    return {
        "threshold": float(threshold),
        "apcer_per_species": species,
        "apcer": apcer,
        "apcer_pooled": pooled,
        "bpcer": bpcer,
        "acer": (apcer + bpcer) / 2,
        "hter": (pooled + bpcer) / 2,
        "n_bona_fide": int(len(bf)),
        "n_attack": int(len(att)),
        "n_attack_per_species": counts,
    }


def threshold_free(s: Scores) -> dict:
    """EER, AUC, BPCER at fixed APCER and APCER at fixed BPCER (pooled attacks) of one set."""
    s.check_both_classes("metrics")
    t_eer = eer_threshold(s)
    apcer, bpcer = _rates(s, np.array([t_eer]))
    out = {"eer": float((apcer[0] + bpcer[0]) / 2), "eer_threshold": t_eer, "auc": auc(s)}
    for p in OPERATING_POINTS:
        tag = f"{round(100 * p)}pct"
        _, b = _rates(s, np.array([threshold_at_apcer(s, p)]))
        a, _ = _rates(s, np.array([threshold_at_bpcer(s, p)]))
        out[f"bpcer_at_apcer_{tag}"] = float(b[0])
        out[f"apcer_at_bpcer_{tag}"] = float(a[0])
    return out


def evaluate(test: Scores, dev: Scores | None = None, rule: str | float = "eer", video: bool = False) -> dict:
    """Metrics of `test` at a threshold chosen on `dev` by `rule` and applied unchanged.

    Without dev the threshold comes from test itself, labelled "threshold_from": "test (optimistic)".
    video: score videos by the mean of their frames' scores (both sets).
    """
    if video:
        test = test.by_video()
        dev = dev.by_video() if dev is not None else None
    if dev is not None:
        dev.check_both_classes("dev scores")
    source = dev if dev is not None else test
    threshold = choose_threshold(source, rule)
    out = {
        "level": "video" if video else "frame",
        "threshold_rule": str(rule),
        "threshold_from": "dev" if dev is not None else "test (optimistic)",
        **at_threshold(test, threshold),
        **threshold_free(test),
    }
    if dev is not None:
        out["dev"] = at_threshold(dev, threshold)
    return out


FEW = 10  # a figure resting on fewer samples of a class than this is said to be thin


def thin_figures(report: dict, few: int = FEW) -> list[str]:
    """One note per set (test, dev) of an evaluate() report whose figures rest on fewer than `few`
    samples of a class: BPCER on bona fide, APCER pooled on attacks, APCER of a species on its own."""
    notes = []
    unit = "videos" if report.get("level") == "video" else "frames"
    for part, r in (("test", report), ("dev", report.get("dev"))):
        if not r:
            continue
        thin = [f"BPCER on {r['n_bona_fide']} bona fide"] if r["n_bona_fide"] < few else []
        thin += [f"APCER on {r['n_attack']} attack"] if r["n_attack"] < few else []
        species = [f"{name} {n}" for name, n in r.get("n_attack_per_species", {}).items() if n < few]
        thin += [f"APCER per species on {', '.join(species)}"] if species else []
        if thin:
            notes.append(f"{report.get('level', 'frame')}-level {part} figures rest on fewer than {few} {unit} of a "
                         f"class: {'; '.join(thin)}")
    return notes


def cross_dataset(test: Scores, dev: Scores, video: bool = True) -> dict:
    """Leave-one-dataset-out (OCIM) report with both variants, labelled:
    "target_eer": HTER at the EER threshold of the target test set itself (the common, optimistic
    practice); "source_dev": HTER at the EER threshold of the source datasets' dev data (honest)."""
    return {
        "target_eer": evaluate(test, None, "eer", video),
        "source_dev": evaluate(test, dev, "eer", video),
    }


def read_scores(path: str) -> Scores:
    """A scores CSV with columns score,is_attack,attack_type[,video_id] (is_attack: 1/0/true/false)."""
    import csv

    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise AnnotatorError(f"cannot read scores file {path}: {e.strerror}") from None
    need = {"score", "is_attack", "attack_type"}
    have = set(rows[0]) if rows else set()
    if not rows or not need <= have:
        raise AnnotatorError(f"{path}: expected a CSV with columns score,is_attack,attack_type[,video_id]; "
                             f"got {sorted(have) if rows else 'no rows'}")
    truth = {"1": True, "0": False, "true": True, "false": False}
    try:
        score = [float(r["score"]) for r in rows]
        is_attack = [truth[r["is_attack"].strip().lower()] for r in rows]
    except (ValueError, KeyError) as e:
        raise AnnotatorError(f"{path}: bad value {e} (score must be a number, is_attack 1/0/true/false)") from None
    video = [r["video_id"] for r in rows] if "video_id" in have else None
    return Scores(np.array(score), np.array(is_attack), np.array([r["attack_type"] for r in rows]), video)


def write_scores(path: str, s: Scores, extra: dict[str, np.ndarray] | None = None) -> None:
    import csv

    cols = {"score": s.score, "is_attack": s.is_attack.astype(int), "attack_type": s.attack_type}
    if s.video_id is not None:
        cols["video_id"] = s.video_id
    cols.update(extra or {})
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for row in zip(*cols.values()):
            w.writerow([f"{v:.8g}" if isinstance(v, float) else v for v in row])
