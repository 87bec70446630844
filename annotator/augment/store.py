"""`annotate augment`: MCREA over a label store, written as a new store that passes `annotate verify`.

Batches are the source's shards, visited in a seeded random order per copy (the donor pool of a
sample is its shard, as a training batch would be). Output row c * N + i is copy c of source row i.
Per augmented row, `meta/mcrea_donors` and `meta/mcrea_regions` list the donors' sample ids and the
regions taken (";"-separated, in order), `meta/attack_type` becomes "mcrea:<type>", `meta/is_attack`
turns true when any attack pixel is present, and the array `mcrea_mask` (N, S, S) marks the pixels
taken from donors (`annotate preview` outlines them).
"""

from __future__ import annotations

import numpy as np
import torch
import zarr

from annotator.store import places
from annotator import store
from annotator.config import check_range
from annotator.core.errors import AnnotatorError
from annotator.label import channel_shares, pyramid
from annotator.store.verify import require_sound
from .mcrea import check_args, mcrea

ARRAYS = ("image", "label", "depth", "region", "landmarks")
MAX_COPIES = 1000  # copies of the whole store: more is a typo, not a data set


def augment_store(src_url: str, out_url: str, gamma: float = 0.5, rho: int = 1, scheme: str = "integrated",
                  copies: int = 1, seed: int = 0, overwrite: bool = False) -> dict:
    """Write the augmented store; returns {"rows", "augmented", "exchanges"}."""
    try:
        check_args(gamma, rho, scheme)
    except ValueError as e:
        raise AnnotatorError(str(e)) from None
    check_range("copies", copies, 1, MAX_COPIES)
    src_url, out_url = places.normalize(src_url), places.normalize(out_url)
    places.refuse_overlap(out_url, src_url, "the input store")
    require_sound(src_url, "quick", "repair it (`annotate verify --repair`, then rerun) before augmenting")
    src = store.open_store(src_url)
    places.require_writable(out_url)
    if store.exists(out_url):
        if not store.is_store(out_url):
            raise AnnotatorError(f"{out_url} exists and is not a label store; --overwrite replaces only label "
                                 "stores: choose another --out, or remove it by hand if you mean to")
        if not overwrite:
            raise AnnotatorError(f"{out_url} exists; choose another --out or pass --overwrite to replace it")
        store.remove(out_url)
    n, size = src["image"].shape[0], src["image"].shape[1]
    # a source whose one shard is larger than its rows: chunks sized by the rows they hold, since a
    # chunk is allocated whole for every write into it
    shard_size = min(store.shard_size_of(src), n)
    meta = store.read_meta(src)
    for col, dtype in store.META_COLUMNS.items():  # a schema-1 source may lack a column the output has
        if col not in meta:
            meta[col] = np.full(n, "", object) if dtype == "str" else np.full(n, store.fill_value(dtype), dtype)
    extra = [c for c in meta if c not in store.META_COLUMNS] + ["mcrea_donors", "mcrea_regions"]
    attrs = {k: src.attrs[k] for k in ("config", "attack_types", "policy", "landmark_layout") if k in src.attrs}
    attrs["provenance"] = {**src.attrs.get("provenance", {}), "mcrea": {
        "source": src_url, "gamma": gamma, "rho": rho, "scheme": scheme, "copies": copies, "seed": seed}}
    # a copy's crop lies where its source row's does: the optional arrays (`transform`) come along
    optional = tuple(k for k in store.OPTIONAL_ARRAYS if k in src)
    out = store.create(out_url, n * copies, size, shard_size, extra, attrs, optional=optional)
    store.write_protocols(out_url, {p: np.tile(src[f"protocols/{p}"][:], copies) for p in store.protocol_names(src)})
    store.create_array(out, "mcrea_mask", (n * copies, size, size), (shard_size, size, size), "bool", ("sample", "y", "x"))
    with zarr.config.set(store.WRITE_CONFIG):
        augmented, exchanges = _write_copies(src, out, meta, n, shard_size, gamma, rho, scheme, copies, seed)
    for shard in store.plan_shards(n * copies, shard_size):  # single writer: commit once all rows are in
        store.commit(out_url, shard, {"failed": []})
    store.finalize(out_url)
    return {"rows": n * copies, "augmented": augmented, "exchanges": exchanges}


def _write_copies(src, out, meta: dict, n: int, shard_size: int, gamma: float, rho: int, scheme: str,
                  copies: int, seed: int) -> tuple[int, int]:
    """Every copy's rows, shard by shard; returns (augmented rows, exchanges)."""
    gen = torch.Generator().manual_seed(seed)
    shards = store.plan_shards(n, shard_size)
    augmented = exchanges = 0
    for c in range(copies):
        for k in torch.randperm(len(shards), generator=gen).tolist():
            s = shards[k]
            sl = slice(s.start, s.stop)
            batch = {a: torch.from_numpy(np.ascontiguousarray(src[a][sl])) for a in ARRAYS}
            new, log = mcrea(batch, gamma, rho, scheme, generator=gen)
            rows = slice(c * n + s.start, c * n + s.stop)
            for a in ARRAYS:
                out[a][rows] = new[a].numpy()
            for a in store.OPTIONAL_ARRAYS:
                if a in out:
                    out[a][rows] = src[a][sl]
            label = new["label"].numpy()
            for lvl, values in pyramid(label).items():
                out[f"pyramid/{lvl}"][rows] = values
            out["mcrea_mask"][rows] = new["exchanged"].numpy()
            cols = {col: list(values[sl]) for col, values in meta.items()}
            cols["sample_id"] = [f"{v}@mcrea{c}" for v in cols["sample_id"]]
            cols["mcrea_donors"] = [""] * len(label)
            cols["mcrea_regions"] = [""] * len(label)
            for e in log:
                sep = ";" if cols["mcrea_donors"][e.recipient] else ""
                cols["mcrea_donors"][e.recipient] += sep + str(meta["sample_id"][s.start + e.donor])
                cols["mcrea_regions"][e.recipient] += sep + e.region
            for r in sorted({e.recipient for e in log}):
                cols["is_attack"][r] = bool(cols["is_attack"][r]) or bool((label[r, 0] > 0).any())
                cols["attack_type"][r] = f"mcrea:{cols['attack_type'][r]}"
                _stale_signals(cols, r)
            _shares(cols, label)
            augmented += len({e.recipient for e in log})
            exchanges += len(log)
            for col, values in cols.items():
                arr = out[f"meta/{col}"]
                arr[rows] = store.column(values, arr.dtype)
    return augmented, exchanges


def _shares(cols: dict[str, list], label: np.ndarray) -> None:
    """The channel shares of the rows as written (an exchange moves pixels between channels)."""
    shares = channel_shares(label)
    shares[np.asarray(cols["status"]) != 0] = np.nan  # a failed row has no label to measure
    for k, col in enumerate(("share_attack", "share_live", "share_background")):
        cols[col] = shares[:, k].tolist()


def _stale_signals(cols: dict[str, list], r: int) -> None:
    """An exchanged row's regions are no longer its segmenter's nor its video's: no agreement to report."""
    cols["prior_agreement"][r] = cols["temporal_consistency"][r] = float("nan")
    cols["prior_worst_region"][r] = ""
