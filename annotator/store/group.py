"""The Zarr label store (docs/store.md): create, write a shard, commit, read.

Layout: one row per sample along the first axis, chunked by shard so that writers never share a
chunk. A shard is committed by writing `_shards/<id>.json` after all of its rows; readers and
resumes trust only committed shards. Works on any fsspec URL zarr accepts. `annotate verify`
(annotator/store/verify.py) checks a store against this layout.

Schema versions: 2 (written now) ends every array's codec chain with crc32c and writes every chunk,
even one equal to the fill value, so that a flipped bit or a deleted chunk is detected; 1 (read and
verified) has neither, and may lack `meta/rotation` and the `channel` coordinates.
"""

from __future__ import annotations

import os
import uuid
import warnings

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from annotator.core.errors import AnnotatorError
from annotator.core.names import storable
from annotator.core.samples import STATUS_CODES
from annotator.face.regions import REGION_NAMES

# The store's own bookkeeping (_lock.json, _shards/, _failed/) sits beside its arrays; zarr, listing
# the group to consolidate it, warns of each as "not recognized" into the progress bar.
warnings.filterwarnings("ignore", message=r"Object at _\w+(\.json)? is not recognized as a component of a Zarr hierarchy")
from annotator.label import LABEL_CHANNELS

from .schema import META_COLUMNS, OPTIONAL_ARRAYS, OPTIONAL_COLUMNS, array_specs, fill_value, landmark_points
from .shards import Shard, commit, filesystem, read_marker

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
NEWER_SCHEMA = ("it was written by a newer release: upgrade fas-annotator to read and verify it (do not --overwrite "
                "it, which would destroy it)")


def newer(version) -> bool:
    """A schema_version only a later release writes."""
    return isinstance(version, int) and version > max(READABLE_SCHEMAS)
LOCK_FILE = "_lock.json"  # held by the one `annotate run` writing the store (pipelines/lock.py)

# Written with every chunk present (zarr skips chunks equal to the fill value by default), so that a
# missing chunk file always means damage.
WRITE_CONFIG = {"array.write_empty_chunks": True}


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def is_store(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(f"{path}/zarr.json")


def compressors(name: str) -> list:
    """The bytes-to-bytes codecs of a store array: zstd, then a crc32c checksum any Zarr v3 reader checks."""
    # Photos compress poorly and slowly with zstd-3 (the default). Plain zstd-1 writes 2x and reads
    # 3x faster than bit-shuffled blosc-zstd-1 for ~18 % more bytes: stores are read every
    # epoch, so reading speed wins. Labels, depth and regions are mostly flat: the default level.
    return [ZstdCodec(level=1 if name == "image" else 0), Crc32cCodec()]


def create_array(group: zarr.Group, name: str, shape: tuple[int, ...], chunks: tuple[int, ...], dtype: str,
                 dims: tuple[str, ...], overwrite: bool = False) -> zarr.Array:
    """One array of the store as the current schema writes it (fill: NaN for floats, "" for text, else 0)."""
    return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill_value(dtype),
                              dimension_names=dims, compressors=compressors(name), overwrite=overwrite)


def create(url: str, n: int, size: int, shard_size: int, extra_columns: list[str], attrs: dict,
           optional: tuple[str, ...] = ()) -> zarr.Group:
    """Create an empty store for n samples (overwriting whatever is at url); protocols come with
    write_protocols. attrs["landmark_layout"] (Layout.attrs()) sizes `landmarks`; FaceMesh's when absent.
    optional: the OPTIONAL_ARRAYS to create too (`annotate run` writes `transform`; a writer that
    knows no frame leaves it out, since every chunk of a committed shard must be written)."""
    unknown = sorted(set(optional) - set(OPTIONAL_ARRAYS))
    if unknown:
        raise ValueError(f"unknown optional arrays {unknown}; known: {sorted(OPTIONAL_ARRAYS)}")
    from annotator.face.layouts import MEDIAPIPE_478

    attrs = {"landmark_layout": MEDIAPIPE_478.attrs(), **attrs}
    from .places import local

    target = local(url)
    if target is None:  # object stores: the root attributes come last, so an interrupted creation has none
        remove(url)
        return _build(url, n, size, shard_size, extra_columns, attrs, optional)
    # On a disk the store is built under a temporary name and renamed when whole: a full disk or a
    # crash during creation leaves no half-made store at `url` for a rerun to trip on.
    tmp = target.parent / f".{target.name}.creating-{uuid.uuid4().hex[:8]}"
    try:
        _build(str(tmp), n, size, shard_size, extra_columns, attrs, optional)
        if target.exists():
            remove(str(target))
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            remove(str(tmp))
    return zarr.open_group(url, mode="r+")


CREATING = {"fas_annotator": "creating"}  # the root's only attribute until the store is whole


def unfinished(url: str) -> bool:
    """A store this annotator began to create and never finished (object stores: on a disk the
    creation is one rename); another Zarr group at url is not one."""
    fs, path = filesystem(url)
    attrs = (read_marker(fs, f"{path}/zarr.json") or {}).get("attributes") or {}
    return attrs.get("fas_annotator") == "creating" and "schema_version" not in attrs


def _build(url: str, n: int, size: int, shard_size: int, extra_columns: list[str], attrs: dict,
           optional: tuple[str, ...] = ()) -> zarr.Group:
    root = zarr.open_group(url, mode="w", zarr_format=3, attributes=dict(CREATING))  # zarr keeps (and edits) the dict
    specs = {**array_specs(size, landmark_points(attrs)), **{k: OPTIONAL_ARRAYS[k] for k in optional}}
    for name, (shape, dtype, dims) in specs.items():
        create_array(root, name, (n, *shape), (shard_size, *shape), dtype, dims)
    meta = root.create_group("meta")
    for col, dtype in {**META_COLUMNS, **{c: "str" for c in extra_columns}}.items():
        create_array(meta, col, (n,), (shard_size,), dtype, ("sample",))
    root.create_group("protocols")
    write_channel_coordinates(root)
    root.attrs.put({
        "schema_version": SCHEMA_VERSION,
        "store_id": uuid.uuid4().hex,
        "label_channels": LABEL_CHANNELS,
        "region_names": REGION_NAMES,
        "status_codes": STATUS_CODES,
        "shard_size": shard_size,
        **attrs,
    })
    return root


COORDINATES = ("channel", "pyramid/channel")


def write_channel_coordinates(root: zarr.Group) -> None:
    """`channel` (attack, live, background) beside `label` and beside the pyramid levels: xarray makes
    an array named like a dimension that dimension's coordinate, so `.sel(channel="live")` works."""
    for name in COORDINATES:
        arr = create_array(root, name, (len(LABEL_CHANNELS),), (len(LABEL_CHANNELS),), "str", ("channel",),
                           overwrite=True)
        arr[:] = np.array(LABEL_CHANNELS, dtype=object)


class _Writer:
    """Array handles of one store, opened once per process: a store's layout is fixed at creation,
    and re-reading every array's metadata for each shard cost more than writing the shard."""

    _cache: dict[str, "_Writer"] = {}

    def __init__(self, url: str):
        self.root = zarr.open_group(url, mode="r+")
        self.arrays: dict[str, zarr.Array] = {}
        self.meta_columns = set(self.root["meta"].array_keys())
        self.top_arrays = set(self.root.array_keys())

    @classmethod
    def get(cls, url: str, store_id: str) -> "_Writer":
        key = f"{url}\0{store_id}"  # a store re-created at the same url gets fresh handles
        if key not in cls._cache:
            cls._cache.clear()
            cls._cache[key] = cls(url)
        return cls._cache[key]

    def __getitem__(self, name: str) -> zarr.Array:
        if name not in self.arrays:
            with zarr.config.set(WRITE_CONFIG):  # handles keep the config they were opened with
                self.arrays[name] = self.root[name]
        return self.arrays[name]

    def write_all(self, selection: slice, values: dict[str, np.ndarray]) -> None:
        """All arrays' rows at once on zarr's event loop: one shard is ~30 small writes whose
        latencies overlap this way (2x faster than one after the other). zarr<4's AsyncArray API."""
        import asyncio

        from zarr.core.sync import sync

        handles = {k: self[k]._async_array for k in values}  # opened (synchronously) before the loop runs

        async def write():
            await asyncio.gather(*(handles[k].setitem(selection, v) for k, v in values.items()))

        sync(write())


def write_shard(url: str, shard: Shard, arrays: dict[str, np.ndarray], meta: dict[str, list],
                summary: dict | None = None, store_id: str = "") -> None:
    """Write the rows of one shard, then its commit marker (last, so a crash leaves it uncommitted).

    store_id: attrs["store_id"] of the store, so cached handles never outlive an --overwrite of the url.
    """
    n = shard.stop - shard.start
    for name, values in arrays.items():
        if values.shape[0] != n:
            raise ValueError(f"{name}: expected {n} rows for shard {shard.id}, got {values.shape[0]}")
    w = _Writer.get(url, store_id)
    sl = slice(shard.start, shard.stop)
    # an optional array the store was made without (an older store resumed): its rows are not kept
    writes = {k: v for k, v in arrays.items() if k not in OPTIONAL_ARRAYS or k in w.top_arrays}
    # a column the caller does not fill gets its fill value: every chunk of a committed shard is written
    meta = {**{c: [fill_value(d)] * n for c, d in META_COLUMNS.items() if c in w.meta_columns}, **meta}
    for col, values in meta.items():
        if col in OPTIONAL_COLUMNS and col not in w.meta_columns:  # a store made before the column: resumed without it
            continue
        writes[f"meta/{col}"] = column(values, w[f"meta/{col}"].dtype)
    w.write_all(sl, writes)
    commit(url, shard, summary)


def write_protocols(url: str, codes: dict[str, np.ndarray]) -> list[str]:
    """Create or replace `protocols/<name>` for every name in codes ((n,) int8: -1 unused, 0 train,
    1 dev, 2 test). Written by the client, whole, never per shard: the adapter knows every row's
    protocols before any shard runs. Protocols already in the store but not in codes are kept;
    returns their names."""
    root = zarr.open_group(url, mode="r+")
    n = root["image"].shape[0]
    chunk = shard_size_of(root)
    group = root.require_group("protocols")
    for name, values in codes.items():
        values = np.asarray(values, dtype=np.int8)
        if values.shape != (n,):
            raise ValueError(f"protocol {name}: expected {n} codes, got {values.shape}")
        arr = group.create_array(name, shape=(n,), chunks=(chunk,), dtype="int8", fill_value=-1,
                                 dimension_names=("sample",), compressors=compressors(name), overwrite=True,
                                 config={"write_empty_chunks": True})
        arr[:] = values
    return sorted(set(protocol_names(root)) - set(codes))


def shard_size_of(root: zarr.Group) -> int:
    """Rows per shard of an open store (attrs, else the image array's chunking)."""
    return int(root.attrs.get("shard_size") or root["image"].chunks[0])


def protocol_names(root: zarr.Group) -> list[str]:
    """The protocols a store holds."""
    return sorted(k for k, _ in root["protocols"].arrays()) if "protocols" in root else []


def column(values: list, dtype) -> np.ndarray:
    """A meta column's values as the array to assign to a store column of `dtype`."""
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return np.asarray(values, dtype=dtype)
    return np.array([storable(str(v)) for v in values], dtype=object)  # a non-UTF-8 file name, escaped


def failed_rows(root: zarr.Group, rows: np.ndarray) -> list[list]:
    """[sample_id, status, error, source, frame_index] of the given rows whose status is not 0.
    Only the chunks holding those rows are read (others may be uncommitted, or reopened by a repair)."""
    if not len(rows):
        return []
    status = root["meta/status"].oindex[rows]
    bad = rows[status != 0]
    if not len(bad):
        return []
    cols = {c: root[f"meta/{c}"].oindex[bad] for c in ("sample_id", "error", "source", "frame_index")}
    return [[str(cols["sample_id"][k]), int(s), str(cols["error"][k]), str(cols["source"][k]),
             int(cols["frame_index"][k])] for k, s in enumerate(status[status != 0])]


def remove(url: str) -> None:
    fs, path = filesystem(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def open_store(url: str, mode: str = "r") -> zarr.Group:
    """Open an existing label store; a one-line error if there is none or its schema is unknown."""
    from .places import normalize

    url = normalize(url)
    if not is_store(url):
        raise AnnotatorError(f"{url} is not a label store (no zarr.json); create one with `annotate run`")
    root = zarr.open_group(url, mode=mode)
    version = root.attrs.get("schema_version")
    if version is None and unfinished(url):
        raise AnnotatorError(f"{url} is an unfinished store (its creation stopped before the end, for example on "
                             "a full disk); rerun its `annotate run` command, which creates it again")
    if version is None:
        raise AnnotatorError(f"{url} is a Zarr group but not a label store (no schema_version); choose another "
                             "--out, or give the path of a store made by `annotate run`")
    if version not in READABLE_SCHEMAS:
        raise AnnotatorError(f"{url} has schema_version {version!r}; this annotator reads "
                             f"{', '.join(map(str, READABLE_SCHEMAS))}" + (f"; {NEWER_SCHEMA}" if newer(version) else ""))
    return root


def read_meta(root: zarr.Group, columns: list[str] | None = None) -> dict[str, np.ndarray]:
    meta = root["meta"]
    names = columns or sorted(k for k, _ in meta.arrays())
    return {c: meta[c][:] for c in names}


def finalize(url: str) -> None:
    """Consolidate metadata so xarray and zarr open the store with one read."""
    import warnings

    with warnings.catch_warnings():
        # zarr warns that consolidation is a v3 extension and that _shards/ is not a zarr node: both expected.
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(url)
