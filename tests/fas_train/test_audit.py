"""`fas-train audit`: out-of-fold disagreement ranks planted label errors (attack and live swapped, an
occluder labelled live) above the clean rows; folds keep subjects apart."""

import csv

import numpy as np
from click.testing import CliRunner

from annotator import store
from annotator.face.regions import Region
from annotator.label import pyramid
from fas_train.audit import AuditConfig, audit, folds_of
from fas_train.cli import cli
from fas_train.selection import select

SIZE, N = 32, 60
SWAPPED = (7, 22, 41)  # attack and live channels swapped in the label
DROPPED = (50,)  # a partial attack whose occluder is labelled live


def _kind(i: int) -> str:
    return ("live", "print", "partial")[i % 3]


def _store(url: str) -> str:
    """Faces (the middle square) whose colour says what they are: skin = live, blue = a print, skin with
    a blue patch over the eyes = a partial attack; labels exact but for the planted rows."""
    store.create(url, N, SIZE, 20, [], {"config": {}})
    rng = np.random.default_rng(0)
    for sh in store.plan_shards(N, 20):
        k = sh.stop - sh.start
        image = rng.integers(90, 110, (k, SIZE, SIZE, 3)).astype(np.uint8)
        region, label = np.zeros((k, SIZE, SIZE), np.uint8), np.zeros((k, 3, SIZE, SIZE), np.uint8)
        for j, i in enumerate(range(sh.start, sh.stop)):
            face = np.zeros((SIZE, SIZE), bool)
            face[8:24, 8:24] = True
            eyes = np.zeros_like(face)
            eyes[11:15, 9:23] = True
            region[j][face] = Region.SKIN
            region[j][eyes] = Region.EYES
            kind = _kind(i)
            image[j][face] = (40, 60, 220) if kind == "print" else (220, 170, 140)
            attack = face if kind == "print" else eyes if kind == "partial" else np.zeros_like(face)
            if kind == "partial":
                image[j][eyes] = (40, 60, 220)
                region[j][eyes] = Region.OCCLUDER
            label[j, 0][attack], label[j, 1][face & ~attack] = 255, 200
            if i in SWAPPED:
                label[j, [0, 1]] = label[j, [1, 0]]
            if i in DROPPED:
                label[j, 1][eyes], label[j, 0][eyes] = 200, 0
            label[j, 2] = np.where((label[j, 0] == 0) & (label[j, 1] == 0), 255, 0)
        arrays = {"image": image, "label": label, "depth": (region > 0).astype(np.uint8) * 200, "region": region,
                  "landmarks": np.zeros((k, 478, 3), np.float32),
                  **{f"pyramid/{s}": v for s, v in pyramid(label).items()}}
        ids = range(sh.start, sh.stop)
        meta = {"sample_id": [f"s{i}" for i in ids], "subject": [f"p{i // 2}" for i in ids],
                "video_id": [f"v{i}" for i in ids], "is_attack": [_kind(i) != "live" for i in ids],
                "attack_type": [{"live": "bonafide", "print": "print", "partial": "partial_eye"}[_kind(i)] for i in ids],
                "dataset": ["synthetic"] * k, "frame_index": [0] * k}
        store.write_shard(url, sh, arrays, meta)
    store.finalize(url)
    return url


def test_folds_keep_subjects_apart(tmp_path):
    url = _store(str(tmp_path / "a.zarr"))
    sel = select([url], "all", "train", columns=("subject",))
    fold = folds_of(sel, 3, seed=0)
    by_subject = {}
    for s, f in zip(sel.meta["subject"], fold):
        by_subject.setdefault(s, set()).add(int(f))
    assert all(len(f) == 1 for f in by_subject.values()) and sorted(set(fold.tolist())) == [0, 1, 2]
    assert min(np.bincount(fold)) >= 18


def test_planted_label_errors_rank_first(tmp_path):
    url = _store(str(tmp_path / "a.zarr"))
    rows = audit(AuditConfig([url], folds=3, epochs=12, batch=8, size=SIZE, width=0.25, lr=5e-3), str(tmp_path / "out"),
                 device="cpu")
    planted = {f"s{i}" for i in SWAPPED + DROPPED}
    order = [r["worst_region_quality"] for r in rows]
    assert len(rows) == N and order == sorted(order)
    assert {r["sample_id"] for r in rows[:len(planted)]} == planted, [(r["sample_id"], r["label_quality"]) for r in rows[:8]]
    dropped = next(r for r in rows if r["sample_id"] == f"s{DROPPED[0]}")
    assert dropped["worst_region"] == "occluder"
    stored_id = store.open_store(url).attrs["store_id"]
    with open(tmp_path / "out" / "audit.csv") as f:
        table = list(csv.DictReader(f))
    assert {r["store_id"] for r in table} == {stored_id} and [r["sample_id"] for r in table] == [r["sample_id"] for r in rows]


def test_audit_refuses_a_model_without_a_label_map(tmp_path):
    url = _store(str(tmp_path / "a.zarr"))
    r = CliRunner().invoke(cli, ["audit", "--store", url, "--model", "lgsc", "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "lgsc does not predict the three-channel map" in r.output and "Traceback" not in r.output
