import numpy as np
import pytest
import torch
import zarr
from synthetic import make_store, synthetic_store  # noqa: F401  (fixture)
from torch.utils.data import DataLoader

from annotator.core.errors import AnnotatorError
from fas_train.data import StoreLoader, StoreStream, flip_batch
from fas_train.inputs import Augment, to_inputs
from fas_train.selection import select


def _row_ids(batch) -> list[int]:
    return batch["image"][:, 0, -1, 1].tolist()  # green channel carries the row number


def test_protocol_groups_select_their_ok_rows(synthetic_store):
    url = synthetic_store
    assert select([url], "p1", "train").parts[0].rows.tolist() == [i for i in range(12) if i != 5]
    assert select([url], "p1", "dev").parts[0].rows.tolist() == list(range(12, 18))
    assert select([url], "p1", "test").parts[0].rows.tolist() == list(range(18, 24))
    assert len(select([url], "all", "test")) == 23
    sel = select([url], "p1", "dev")
    assert sel.meta["sample_id"].tolist() == [f"s{i}" for i in range(12, 18)]
    assert sel.meta["is_attack"].tolist() == [(i // 2) % 2 == 1 for i in range(12, 18)]


def test_bad_selections_are_one_line_errors(synthetic_store, tmp_path):
    url = synthetic_store
    with pytest.raises(AnnotatorError, match=r"has no protocol 'p9'; it has: split, all, p1, p2"):
        select([url], "p9", "train")
    with pytest.raises(AnnotatorError, match="selects no annotated rows of group 'train'"):
        select([url], "p2", "train")
    with pytest.raises(AnnotatorError, match="selects no annotated rows"):
        select([url], "split", "train")  # the store has no meta/split words
    lean = make_store(str(tmp_path / "lean.zarr"), n=8, drop=("region",))
    with pytest.raises(AnnotatorError, match="lacks region, which this model needs"):
        select([lean], "all", "train", needs=("label", "region"))
    with pytest.raises(AnnotatorError, match="not a label store"):
        select([str(tmp_path / "nothing.zarr")], "all", "train")


def test_cross_store_selection_concatenates_in_order(tmp_path):
    a = make_store(str(tmp_path / "a.zarr"), n=10, split=["train"] * 6 + ["dev"] * 4)
    b = make_store(str(tmp_path / "b.zarr"), n=6, split=["train"] * 2 + ["test"] * 4, seed=1)
    sel = select([a, b], "split", "train")
    assert [len(p.rows) for p in sel.parts] == [6, 2] and len(sel) == 8
    assert sel.offsets == [0, 6]
    stream = StoreStream(sel, ("image",), batch_size=3)
    ids = [i for batch in stream for i in _row_ids(batch)]
    assert ids == [0, 1, 2, 3, 4, 5, 0, 1]  # the first store's rows, then the second's


@pytest.mark.parametrize("how", ["dataloader", "ring"])
@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_selected_row_comes_once_with_its_own_data(synthetic_store, workers, shuffle, how):
    url = synthetic_store
    sel = select([url], "all", "train")
    stream = StoreStream(sel, ("image", "label", "region", "pyramid/8"), batch_size=5, shuffle=shuffle, seed=3,
                         buffer_chunks=2)
    if how == "ring":  # batches written into shared slots by the workers
        loader = StoreLoader(stream, workers)
        assert (stream.ring is not None) == (workers > 0)
    else:
        loader = DataLoader(stream, batch_size=None, num_workers=workers)
    g = zarr.open_group(url, mode="r")
    seen = []
    for batch in loader:
        assert batch["image"].dtype == torch.uint8 and batch["image"].shape[1:] == (32, 32, 3)
        rows = sel.parts[0].rows[batch["index"].numpy()]
        np.testing.assert_array_equal(batch["image"].numpy(), g["image"].oindex[rows])
        np.testing.assert_array_equal(batch["label"].numpy(), g["label"].oindex[rows])
        np.testing.assert_array_equal(batch["pyramid/8"].numpy(), g["pyramid/8"].oindex[rows])
        assert batch["is_attack"].tolist() == g["meta/is_attack"].oindex[rows].tolist()
        seen += rows.tolist()
    assert sorted(seen) == sel.parts[0].rows.tolist()
    if not shuffle and workers == 0:
        assert seen == sel.parts[0].rows.tolist()
    if shuffle:
        assert seen != sorted(seen)


def test_shuffle_changes_with_the_epoch_and_drop_last(synthetic_store):
    sel = select([synthetic_store], "all", "train")
    stream = StoreStream(sel, ("image",), batch_size=5, shuffle=True, drop_last=True, buffer_chunks=1)
    first = [i for b in stream for i in b["index"].tolist()]
    again = [i for b in stream for i in b["index"].tolist()]
    stream.set_epoch(1)
    other = [i for b in stream for i in b["index"].tolist()]
    assert first == again and first != other
    assert len(first) == 20 and len(stream) == 4  # 23 rows, batches of 5, the last 3 dropped


def test_flip_and_crop_keep_image_and_maps_aligned(synthetic_store):
    sel = select([synthetic_store], "all", "train")
    batch = next(iter(StoreStream(sel, ("image", "label", "region", "landmarks"), batch_size=6)))
    which = torch.tensor([True, False, True, False, False, True])
    f = flip_batch(batch, which)
    assert torch.equal(f["image"][0], batch["image"][0].flip(1)) and torch.equal(f["image"][1], batch["image"][1])
    assert torch.equal(f["region"][2], batch["region"][2].flip(-1))
    np.testing.assert_allclose(f["landmarks"][0, :, 0], 32 - batch["landmarks"][0, :, 0])
    assert torch.equal(f["landmarks"][1], batch["landmarks"][1])
    # the red left half of the image and the face box of the region map move together under crops
    x = to_inputs(f, "cpu", size=48, augment=Augment(crop=0.7, colour=0.0), generator=torch.Generator().manual_seed(0))
    assert x["image"].shape == (6, 3, 48, 48) and x["label"].shape == (6, 3, 48, 48) and x["region"].dtype == torch.int64
    red = x["image"][:, 0] > (150 - 127.5) / 128
    for i in range(6):
        flipped = bool(which[i])
        cols = red[i].float().mean(0)
        assert (cols[-1] > 0.5) == flipped and (cols[0] > 0.5) == (not flipped)
        inside = x["region"][i] > 0
        face = x["label"][i, 0] + x["label"][i, 1]
        live_or_attack = face > face.max() / 2  # bilinear label vs nearest region: compare at half height
        assert (inside == live_or_attack).float().mean() > 0.99


def test_ring_batches_carry_the_workers_flips_and_mcrea(synthetic_store):
    sel = select([synthetic_store], "all", "train")
    g = zarr.open_group(synthetic_store, mode="r")
    flips = StoreStream(sel, ("image",), batch_size=4, flip=True, seed=1)
    sides = []
    for batch in StoreLoader(flips, workers=2):
        red_left = (batch["image"][:, :, :16, 0] == 200).all(dim=(1, 2))
        red_right = (batch["image"][:, :, 16:, 0] == 200).all(dim=(1, 2))
        assert bool((red_left ^ red_right).all())  # each row: either as stored or mirrored
        sides += red_right.tolist()
    assert 0 < sum(sides) < len(sel)
    swaps = StoreStream(sel, ("image",), batch_size=6, seed=2, mcrea={"gamma": 0.5, "rho": 1, "scheme": "integrated"})
    exchanged = 0
    for batch in StoreLoader(swaps, workers=2):
        assert set(batch) >= {"image", "label", "depth", "region", "landmarks"}  # MCREA reads them all
        rows = sel.parts[0].rows[batch["index"].numpy()]
        for j, r in enumerate(rows):
            changed = batch["image"][j].numpy() != g["image"][int(r)]
            if changed.any():
                exchanged += 1
                # what changed came from other rows of the batch: green carries their row numbers
                donors = set(batch["image"][j, :, :, 1].numpy()[changed.any(axis=2)].tolist())
                assert donors <= set(rows.tolist()) - {int(r)}
    assert exchanged > 0


def test_stores_of_different_sizes_do_not_mix(tmp_path):
    a = make_store(str(tmp_path / "a.zarr"), n=8, size=32)
    b = make_store(str(tmp_path / "b.zarr"), n=8, size=64)
    stream = StoreStream(select([a, b], "all", "train"), ("image",), batch_size=4)
    with pytest.raises(AnnotatorError, match=r"image has shape \(64, 64, 3\) in .* but \(32, 32, 3\)"):
        StoreLoader(stream, workers=1)


def test_persistent_workers_follow_set_epoch(synthetic_store):
    """One StoreLoader for the whole run: its workers outlive an epoch and still see set_epoch()."""
    sel = select([synthetic_store], "all", "train")
    stream = StoreStream(sel, ("image",), 4, shuffle=True, seed=3)
    loader = StoreLoader(stream, workers=2)
    orders = []
    for epoch in (0, 1, 0):
        stream.set_epoch(epoch)
        orders.append(sorted(tuple(b["index"].tolist()) for b in loader))
    fresh = StoreStream(sel, ("image",), 4, shuffle=True, seed=3)
    fresh.set_epoch(1)
    expected = sorted(tuple(b["index"].tolist()) for b in StoreLoader(fresh, workers=2))
    assert orders[1] == expected and orders[0] == orders[2] and orders[0] != orders[1]


@pytest.mark.parametrize("workers", [0, 2])
def test_balanced_batches_are_half_live_half_spoof_and_visit_every_row(tmp_path, workers):
    from synthetic import make_store

    n = 40
    attack = np.zeros(n, bool)
    attack[[3, 17, 18, 30, 35, 39]] = True  # 6 spoof rows among 40, spread over the chunks
    url = make_store(str(tmp_path / "imb.zarr"), n=n, is_attack=attack)
    sel = select([url], "all", "train")
    stream = StoreStream(sel, ("image",), 8, shuffle=True, seed=1, balance=True)
    batches = list(StoreLoader(stream, workers=workers)) if workers else list(stream)
    seen = set()
    for b in batches:
        flags = sel.meta["is_attack"][b["index"].numpy()]
        assert len(flags) == 8 and flags.sum() == 4, flags  # 1:1 in every batch
        assert b["is_attack"].tolist() == flags.tolist()
        seen |= set(b["index"].tolist())
        # the rows carry their own data: image[i] is filled with i
        assert (b["image"][:, 0, -1, 1].numpy() == np.asarray(b["index"])).all()
    assert seen == set(range(n))  # every row, the spoof ones drawn again to fill the halves
    if workers == 0:  # the 34 live rows, 4 a batch
        assert len(batches) == len(stream) == 9


def test_selection_reads_committed_rows_only_and_says_how_many_it_left_out(tmp_path, capsys):
    url = make_store(str(tmp_path / "s.zarr"), n=24, shard=8)
    (tmp_path / "s.zarr" / "_shards" / "000001.json").unlink()  # rows 8-15 read as zeros with status 0
    sel = select([url], "all", "train")
    assert sel.parts[0].rows.tolist() == list(range(8)) + list(range(16, 24))
    assert sorted(sel.meta["sample_id"].tolist()) == sorted(f"s{i}" for i in [*range(8), *range(16, 24)])
    assert "8 row(s) of uncommitted shards left out" in capsys.readouterr().err
    for f in (tmp_path / "s.zarr" / "_shards").iterdir():
        f.unlink()
    with pytest.raises(AnnotatorError, match="has no committed rows"):
        select([url], "all", "train")
