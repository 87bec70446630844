"""The chunk level of verify: read and decode a committed shard's chunks and check their values (plain zarr + numpy: a thread or a Dask task alike)."""

from __future__ import annotations

import threading

import fsspec
import numpy as np

from annotator import store
from annotator.core.samples import STATUS_CODES
from annotator.label import LABEL_CHANNELS, pyramid

from .metadata_checks import entry_type
from .problems import Problem, StoreLayout, describe_error

ROTATIONS = (0, 90, 180, 270)


_HANDLES: dict[str, dict] = {}  # url -> open arrays, reused by the shards one thread checks
_HANDLES_LOCK = threading.Lock()


def _handles(url: str, store_id: str) -> dict:
    """Per process: the fsspec filesystem and the arrays opened from their own zarr.json."""
    key = f"{url}\0{store_id}"
    with _HANDLES_LOCK:
        if key not in _HANDLES:
            _HANDLES.clear()
            fs, path = fsspec.core.url_to_fs(url)
            _HANDLES[key] = {"fs": fs, "path": path.rstrip("/"), "arrays": {}}
        return _HANDLES[key]


def _array(h: dict, url: str, name: str):
    import zarr

    with _HANDLES_LOCK:
        if name not in h["arrays"]:
            h["arrays"][name] = zarr.open_array(store=url, path=name, mode="r", zarr_format=3)
        return h["arrays"][name]


def check_shard(url: str, shard: store.Shard, names: list[str], version: int, n_regions: int,
                store_id: str = "") -> list[Problem]:
    """Read and decode the chunk of `shard` of every array in names; check what the layout says of
    their values. Plain zarr + numpy: runs on a thread or as a Dask task alike."""
    h = _handles(url, store_id)
    where = f"chunk {shard.id} (shard {shard.id}, rows {shard.start}-{shard.stop - 1})"
    problems: list[Problem] = []
    values: dict[str, np.ndarray] = {}

    def bad(name: str, why: str, paths: tuple[str, ...] = ()) -> None:
        problems.append(Problem(f"{name} {where}: {why}", action="reopen", shards=(shard.id,), target=name,
                                paths=paths))

    order = sorted(names, key=lambda n: (n != "meta/status", n != "label", n))  # status and label first
    for name in order:
        try:
            arr = _array(h, url, name)
            key = arr.metadata.encode_chunk_key((shard.id,) + (0,) * (arr.ndim - 1))
            kind = entry_type(h["fs"], f"{h['path']}/{name}/{key}")
            if kind not in ("file", None) or (kind is None and version >= 2):
                # zarr reads a folder where a chunk belongs as a missing chunk: fill values, silently
                if kind is None:
                    bad(name, "chunk file missing")
                else:  # in the rerun's way: repair removes it
                    bad(name, f"chunk is a {kind}, not a file", (f"{name}/{key}",))
                continue
            values[name] = arr[shard.start:shard.stop]
        except Exception as e:  # any damage is a finding, never a traceback
            bad(name, describe_error(e))
    status = values.get("meta/status")
    ok = None if status is None else status == 0
    levels = pyramid(values["label"]) if "label" in values and any(n.startswith("pyramid/") for n in values) else {}
    for name, v in values.items():
        for why in value_problems(name, v, ok, levels, n_regions, shard.start):
            bad(name, why)
    if "transform" in values and ok is not None:  # a usable row's transform starts from a frame of known size
        for name in ("meta/frame_height", "meta/frame_width"):
            if name in values and ((values[name] <= 0) & ok).any():
                first = [shard.start + int(i) for i in np.nonzero((values[name] <= 0) & ok)[0][:5]]
                bad(name, f"rows {first} with status 0 and a transform record no frame size")
    return problems


def value_problems(name: str, v: np.ndarray, ok: np.ndarray | None, levels: dict[int, np.ndarray],
                   n_regions: int, start: int = 0) -> list[str]:
    """What the layout says of the values of one array's rows (the store's rows from `start`);
    ok: rows with status 0 (None: unknown); levels: labels.pyramid of the same rows' label ({}: unknown)."""
    out = []

    def rows(mask: np.ndarray) -> list[int]:  # the first few, as store rows
        return [start + int(i) for i in np.nonzero(mask)[0][:5]]

    if ok is not None and (name in ("image", "label", "depth", "region") or name.startswith("pyramid/")):
        bad = (v.reshape(len(v), -1) != 0).any(axis=1) & ~ok
        if bad.any():
            out.append(f"failed rows {rows(bad)} are not zero-filled")
    if name == "label" and ok is not None:
        bg = np.where((v[:, 0] == 0) & (v[:, 1] == 0), 255, 0)
        bad = (v[:, 2] != bg).any(axis=(1, 2)) & ok
        if bad.any():
            out.append(f"rows {rows(bad)}: background is not the complement of attack|live")
    elif name.startswith("pyramid/") and levels:
        if np.abs(v.astype(np.int16) - levels[int(name.split("/")[1])]).max(initial=0) > 1:
            out.append("not the area mean of label")
    elif name == "region" and n_regions and v.max(initial=0) >= n_regions:
        out.append(f"region id {int(v.max())} outside the {n_regions} region names")
    elif name == "landmarks" and ok is not None:
        if not np.isfinite(v[ok]).all():
            out.append("rows with status 0 have non-finite landmarks")
        if (~np.isnan(v[~ok])).any():
            out.append("failed rows' landmarks are not NaN")
    elif name == "meta/status":
        unknown = sorted(set(np.unique(v).tolist()) - set(STATUS_CODES.values()))
        if unknown:
            out.append(f"unknown status code(s) {unknown[:5]}")
    elif name == "transform" and ok is not None:
        flat = v.reshape(len(v), -1)
        finite = np.isfinite(flat).all(axis=1)
        det = np.zeros(len(v))
        det[finite] = np.linalg.det(v[finite][:, :, :2].astype(np.float64))
        if (ok & ~finite).any():
            out.append(f"rows {rows(ok & ~finite)} with status 0 have non-finite transforms")
        if (ok & finite & (det == 0)).any():
            out.append(f"rows {rows(ok & finite & (det == 0))}: the transform is not invertible")
        if (~ok & ~np.isnan(flat).all(axis=1)).any():
            out.append(f"failed rows {rows(~ok & ~np.isnan(flat).all(axis=1))}: transforms are not NaN")
    elif name in ("meta/frame_height", "meta/frame_width") and (v < 0).any():
        out.append(f"rows {rows(v < 0)} have a negative frame size")
    elif name == "meta/rotation":
        unknown = sorted(set(np.unique(v).tolist()) - set(ROTATIONS))
        if unknown:
            out.append(f"rotation(s) {unknown[:5]}, expected one of {list(ROTATIONS)}")
    elif name == "meta/sample_id":
        if (v == "").any():
            out.append(f"rows {rows(v == '')} have no sample_id")
    elif name.startswith("protocols/"):
        unknown = sorted(set(np.unique(v).tolist()) - {-1, 0, 1, 2})
        if unknown:
            out.append(f"code(s) {unknown[:5]}, expected -1 (unused), 0, 1 or 2")
    elif name == "qa/flag":
        unknown = sorted(set(np.unique(v).tolist()) - {0, 1, 2})
        if unknown:
            out.append(f"flag code(s) {unknown[:5]}, expected 0 (none), 1 (bad) or 2 (good)")
    return out


def check_coordinates(url: str, layout: StoreLayout) -> list[Problem]:
    import zarr

    out = []
    for name in store.COORDINATES:
        if name not in layout.nodes:
            continue
        try:
            values = zarr.open_array(store=url, path=name, mode="r", zarr_format=3)[:].tolist()
        except Exception as e:
            out.append(Problem(f"{name}: {describe_error(e)}", action="recreate", target=name))
            continue
        if values != LABEL_CHANNELS:
            out.append(Problem(f"{name}: values {values}, expected {LABEL_CHANNELS}", action="recreate", target=name))
    return out
