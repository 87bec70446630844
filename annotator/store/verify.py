"""`annotate verify`: check a label store as it is on storage, and reopen what a rerun can mend.

Levels (docs/store.md, "Verify and repair"):
- "metadata": the root zarr.json and every node's own zarr.json (not only the consolidated copy that
  zarr and xarray read by default) against the layout of store.py and against the consolidated copy,
  and the commit markers. Reads a few kilobytes; `inspect` and `preview` run it.
- "quick": metadata plus the label contract of every committed shard (background is the complement
  of attack|live, pyramids are area means, failed rows are zero); what `augment` requires.
- "full": quick plus reading and decoding every chunk of every array of the committed shards, and
  the value ranges of each (the default of `annotate verify`).

Every finding is a `Problem`: one line, and what mends it. `repair` carries out the mends that need
no annotation (reopening shards, recreating an empty array, restoring a node's metadata from the
consolidated copy, re-consolidating); a rerun of the same `annotate run` then re-annotates exactly
the reopened shards. The per-shard check (`check_shard`) is plain zarr + numpy and never imports dask.
"""

from __future__ import annotations

import json
import threading
import functools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import fsspec
import numpy as np

from annotator import store
from annotator.label import LABEL_CHANNELS, PYRAMID_SIZES, pyramid
from .places import normalize
from annotator.core.samples import STATUS_CODES
from .schema import N_LANDMARKS, OPTIONAL_IN_SCHEMA_1

LEVELS = ("metadata", "quick", "full")
RECREATE_FIX = ("no rerun can mend this: restore the file from a backup, or re-create the store with its "
                "`annotate run` command plus --overwrite")
ROTATIONS = (0, 90, 180, 270)


@dataclass(frozen=True)
class Problem:
    """One finding. `action` says how repair mends it: "reopen" (uncommit `shards`), "recreate"
    (an empty `target` array from the layout, every shard reopened), "restore" (`target`'s zarr.json
    from the consolidated copy), "reconsolidate", "remove" (only `paths` to remove: an unreadable
    failure record or lock, a leftover temporary file), "rerun" (the next `annotate run` does it, nothing to
    repair), or "" (no rerun can: `fix` says what to do)."""

    text: str
    action: str = ""
    shards: tuple[int, ...] = ()
    target: str = ""
    fix: str = ""
    paths: tuple[str, ...] = ()  # store-relative files or folders in the way, which repair removes

    def __str__(self) -> str:
        return f"{self.text}; {self.fix}" if self.fix else self.text


@dataclass
class Layout:
    """What the metadata level learned: enough to read chunks and to repair."""

    url: str
    attrs: dict
    version: int
    n: int
    size: int
    shard_size: int
    nodes: dict[str, dict] = field(default_factory=dict)  # array path -> its own (readable) zarr.json
    expected: dict[str, tuple] = field(default_factory=dict)  # array path -> (shape, dtype, dims)
    committed: dict[int, dict] = field(default_factory=dict)

    @property
    def shards(self) -> list[store.Shard]:
        return store.plan_shards(self.n, self.shard_size)

    def all_shard_ids(self) -> list[int]:
        """Every shard id: what recreating an array reopens."""
        return [s.id for s in self.shards]


@dataclass
class Report:
    problems: list[Problem]
    layout: Layout | None
    level: str

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(url: str, level: str = "full", workers: int | None = None, progress: bool = False,
           parallel_map: ParallelMap | None = None) -> Report:
    """Check the store at url (path or fsspec URL) at `level`. Chunk reads run through the caller's
    `parallel_map` (pipelines/cluster.py gives one over a Dask client), else on `workers` threads."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    url = normalize(url)
    try:
        problems, layout = check_metadata(url)
    except Exception as e:  # metadata this check did not foresee: still one line, never a traceback
        return Report([Problem(f"cannot read the store's metadata: {describe_error(e)}", fix=RECREATE_FIX)], None, level)
    if layout is None or level == "metadata":
        return Report(problems, layout, level)
    readable = [name for name in layout.nodes if _chunked_by_shard(name)]
    if level == "quick":
        readable = [n for n in readable if n in QUICK_ARRAYS]
    if "label" not in layout.nodes:  # reported once as missing; the pyramid checks need it
        readable = [n for n in readable if not n.startswith("pyramid/")]
    shards = [s for s in layout.shards if s.id in layout.committed]
    check = functools.partial(check_shard, url, names=readable, version=layout.version,
                              n_regions=len(layout.attrs.get("region_names", [])),
                              store_id=str(layout.attrs.get("store_id", "")))
    found: list[Problem] = []
    from tqdm import tqdm

    with tqdm(total=len(shards), unit="shard", desc="verify", disable=not progress) as bar:
        for result in (parallel_map or thread_map(workers or 4))(check, shards):
            found += result
            bar.update(1)
    if level == "full":
        found += _check_coordinates(url, layout)
    order = {name: i for i, name in enumerate(layout.nodes)}
    found.sort(key=lambda p: (p.shards[:1], order.get(p.target, 0), p.text))
    return Report(problems + found, layout, level)


# (function, items) -> the function's results over the items, in any order, as they finish.
ParallelMap = Callable[[Callable, list], Iterable]


def thread_map(workers: int) -> ParallelMap:
    """A ParallelMap on `workers` threads (chunk reads release the GIL in the codecs)."""

    def run(fn: Callable, items: list) -> Iterator:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for f in as_completed([pool.submit(fn, item) for item in items]):
                yield f.result()

    return run


QUICK_ARRAYS = {"label", "landmarks", "meta/status", *(f"pyramid/{k}" for k in PYRAMID_SIZES)}


def _chunked_by_shard(name: str) -> bool:
    return name not in store.COORDINATES


# ---------------------------------------------------------------- metadata


def _read_json(fs, path: str):
    """(parsed JSON, None) or (None, why it is unreadable); (None, "missing") when absent."""
    try:
        raw = fs.cat_file(path)
    except FileNotFoundError:
        return None, "missing"
    except OSError as e:
        return None, f"unreadable ({e})"
    try:
        parsed = json.loads(raw)
    except ValueError as e:
        return None, f"not valid JSON ({e})"
    if not isinstance(parsed, dict):
        return None, f"not a JSON object (a {type(parsed).__name__})"
    return parsed, None


def _dtype_name(dtype: str) -> str:
    return "string" if dtype == "str" else dtype


def _summary(node: dict) -> dict:
    """The parts of an array's metadata that readers depend on."""
    grid = node.get("chunk_grid", {}).get("configuration", {}).get("chunk_shape")
    return {"shape": node.get("shape"), "data_type": node.get("data_type"), "chunks": grid,
            "dimension_names": node.get("dimension_names"), "codecs": node.get("codecs"),
            "fill_value": node.get("fill_value")}


def _folders(fs, path: str) -> list[str]:
    try:
        entries = fs.ls(path, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory")


def expected_arrays(version: int, n: int, size: int, shard_size: int, present_meta: list[str],
                    present_protocols: list[str], present_qa: list[str] = (), n_points: int = N_LANDMARKS
                    ) -> dict[str, tuple]:
    """Array path -> (shape, chunk shape, data type, dimension names) the layout prescribes (the
    qa/ group's arrays when the store has that group: annotator/store/qa.py); n_points: the landmark
    layout's points per face (root attribute landmark_layout)."""
    out = {}
    for name, (shape, dtype, dims) in store.array_specs(size, n_points).items():
        out[name] = ((n, *shape), (shard_size, *shape), dtype, dims)
    for col, dtype in store.META_COLUMNS.items():
        optional = col in store.OPTIONAL_COLUMNS or (version == 1 and col in OPTIONAL_IN_SCHEMA_1)
        if optional and col not in present_meta:
            continue
        out[f"meta/{col}"] = ((n,), (shard_size,), dtype, ("sample",))
    for col in present_meta:  # the adapter's extra columns are text
        out.setdefault(f"meta/{col}", ((n,), (shard_size,), "str", ("sample",)))
    for name in present_protocols:
        out[f"protocols/{name}"] = ((n,), (shard_size,), "int8", ("sample",))
    if present_qa:  # written by `annotate serve --allow-flags`: all three arrays, once the group exists
        from .qa import ARRAYS as QA_ARRAYS

        for name, dtype in QA_ARRAYS.items():
            out[f"qa/{name}"] = ((n,), (shard_size,), dtype, ("sample",))
    if version >= 2:
        for name in store.COORDINATES:
            out[name] = ((len(LABEL_CHANNELS),), (len(LABEL_CHANNELS),), "str", ("channel",))
    return out


def check_metadata(url: str) -> tuple[list[Problem], Layout | None]:
    """Root and node metadata, consolidated copy and commit markers. Layout is None when the store
    cannot be read further (no root metadata, unknown schema, no image array)."""
    fs, path = fsspec.core.url_to_fs(url)
    path = path.rstrip("/")
    root, why = _read_json(fs, f"{path}/zarr.json")
    if why == "missing":
        return [Problem(f"{url} is not a label store (no zarr.json)", fix="create one with `annotate run`")], None
    if root is None or not isinstance(root, dict) or root.get("node_type") != "group":
        return [Problem(f"root zarr.json: {why or 'not a Zarr v3 group'}", fix=RECREATE_FIX)], None
    attrs = root.get("attributes") or {}
    version = attrs.get("schema_version")
    if version not in store.READABLE_SCHEMAS:
        fix = store.NEWER_SCHEMA if store.newer(version) else RECREATE_FIX
        return [Problem(f"root zarr.json: schema_version {version!r}, expected one of {list(store.READABLE_SCHEMAS)}",
                        fix=fix)], None
    problems = [Problem(f"root zarr.json: attribute {k!r} missing", fix=RECREATE_FIX)
                for k in ("store_id", "config", "label_channels", "region_names", "status_codes") if k not in attrs]
    problems += _check_fixed_attrs(attrs)
    if "landmark_layout" in attrs:
        from annotator.face.layouts import LAYOUTS

        layout_attr = attrs["landmark_layout"]
        known = LAYOUTS.get(layout_attr.get("name")) if isinstance(layout_attr, dict) else None
        if known is None or layout_attr.get("points") != known.n_points:
            problems.append(Problem(f"root zarr.json: landmark_layout {layout_attr!r} is none of "
                                    f"{', '.join(f'{k} ({v.n_points} points)' for k, v in LAYOUTS.items())}",
                                    fix=RECREATE_FIX))
    consolidated = (root.get("consolidated_metadata") or {}).get("metadata")
    image, why = _read_json(fs, f"{path}/image/zarr.json")
    source = image if image is not None else (consolidated or {}).get("image")
    if not source or len(source.get("shape") or ()) != 4:
        return problems + [Problem("missing array 'image', and no copy of its metadata to size the store by",
                                   fix=RECREATE_FIX)], None
    n, size = int(source["shape"][0]), int(source["shape"][1])
    shard_size = int(attrs.get("shard_size") or source["chunk_grid"]["configuration"]["chunk_shape"][0])
    layout = Layout(url, attrs, version, n, size, shard_size)

    listed = set(consolidated or {})
    present = {g: set(_folders(fs, f"{path}/{g}")) | {k.split("/", 1)[1] for k in listed if k.startswith(g + "/")}
               for g in ("meta", "protocols", "qa")}
    layout.expected = expected_arrays(version, n, size, shard_size, sorted(present["meta"]), sorted(present["protocols"]),
                                      sorted(present["qa"]), store.landmark_points(attrs))
    extra_top = [k for k in listed if "/" not in k and k not in layout.expected
                 and (consolidated[k] or {}).get("node_type") == "array"]  # e.g. augment's mcrea_mask
    for group in ("meta", "protocols", "pyramid"):
        node, why = _read_json(fs, f"{path}/{group}/zarr.json")
        if node is None:
            problems.append(Problem(f"group {group!r}: zarr.json {why}", action="recreate", target=group))
    for name in [*layout.expected, *sorted(extra_top)]:
        node, found = _check_node(fs, path, name, layout, consolidated)
        problems += found
        if node is not None:
            layout.nodes[name] = node
    if consolidated is not None:
        for name in sorted(listed - set(layout.expected) - set(extra_top)):
            if consolidated[name].get("node_type") == "array" and not _read_json(fs, f"{path}/{name}/zarr.json")[0]:
                problems.append(Problem(f"{name}: in the consolidated metadata but not on storage",
                                        action="reconsolidate", target=name))
    problems += _check_markers(fs, path, layout)
    return problems, layout


def _check_fixed_attrs(attrs: dict) -> list[Problem]:
    """Root attributes whose values the contract fixes: a reader maps codes and ids through them, so
    an edited one silently renames regions, statuses or channels."""
    from annotator.face.regions import REGION_NAMES

    fixed = {"region_names": REGION_NAMES, "status_codes": STATUS_CODES, "label_channels": LABEL_CHANNELS}
    return [Problem(f"root zarr.json: attribute {k!r} is {attrs[k]!r}, the contract fixes it to {v!r}"
                    + (" (or, in a store of an earlier release, the first of those codes)" if k == "status_codes" else ""),
                    fix="restore the root zarr.json from a backup, or re-create the store with its "
                        "`annotate run` command plus --overwrite")
            for k, v in fixed.items() if k in attrs and not _agrees(attrs[k], v, k == "status_codes")]


def _agrees(stored, contract, may_be_older: bool) -> bool:
    """stored equals the contract, or (may_be_older: releases only ever append status codes) holds
    its first codes, each as the contract has it."""
    if stored == contract:
        return True
    return may_be_older and isinstance(stored, dict) and bool(stored) and \
        all(contract.get(k, object()) == v for k, v in stored.items()) and \
        sorted(stored.values()) == list(range(len(stored)))


def _check_node(fs, path: str, name: str, layout: Layout, consolidated: dict | None
                ) -> tuple[dict | None, list[Problem]]:
    """(the node's own metadata when its chunks can be read, the problems of its metadata)."""
    node, why = _read_json(fs, f"{path}/{name}/zarr.json")
    copy = (consolidated or {}).get(name)
    spec = layout.expected.get(name)
    if node is None:
        if why != "missing":
            return None, [Problem(f"{name}: zarr.json {why}", action="restore" if copy else "recreate",
                                  shards=() if copy else tuple(layout.all_shard_ids()), target=name)]
        if name.startswith("protocols/"):  # every run rewrites the protocols whole
            return None, [Problem(f"missing array {name!r}", action="rerun", target=name,
                                  fix="rerun the store's `annotate run` command, or `annotate protocols`")]
        return None, [Problem(f"missing array {name!r}", action="recreate" if spec else "",
                              shards=tuple(layout.all_shard_ids()) if spec else (), target=name,
                              fix="" if spec else RECREATE_FIX)]
    wrong = _against_spec(node, spec, layout.version) if spec else []
    if wrong:  # its chunks are read once its metadata is mended
        if copy is not None and not _against_spec(copy, spec, layout.version):
            return None, [Problem(f"{name}: zarr.json has {'; '.join(wrong)} (its consolidated copy is right)",
                                  action="restore", target=name)]
        return None, [Problem(f"{name}: {'; '.join(wrong)}", target=name, fix=RECREATE_FIX)]
    if consolidated is None:
        return node, []
    if copy is None:
        return node, [Problem(f"{name}: absent from the consolidated metadata in the root zarr.json",
                              action="reconsolidate", target=name)]
    mine, theirs = _summary(node), _summary(copy)
    differ = [k for k, v in mine.items() if theirs[k] != v]
    if not differ:
        return node, []
    return node, [Problem(f"{name}: zarr.json and the consolidated copy in the root zarr.json disagree on "
                          + ", ".join(f"{k} ({mine[k]} vs {theirs[k]})" for k in differ),
                          action="reconsolidate", target=name)]


def _against_spec(node: dict, spec: tuple, version: int) -> list[str]:
    shape, chunks, dtype, dims = spec
    s = _summary(node)
    wrong = []
    if node.get("node_type") != "array":
        return [f"node_type {node.get('node_type')!r}, expected 'array'"]
    if s["shape"] != list(shape):
        wrong.append(f"shape {s['shape']}, expected {list(shape)}")
    if s["chunks"] != list(chunks):
        wrong.append(f"chunks {s['chunks']}, expected {list(chunks)}")
    if s["data_type"] != _dtype_name(dtype):
        wrong.append(f"data type {s['data_type']}, expected {_dtype_name(dtype)}")
    if tuple(s["dimension_names"] or ()) != dims:
        wrong.append(f"dimension names {s['dimension_names']}, expected {list(dims)}")
    if version >= 2 and not any(c.get("name") == "crc32c" for c in s["codecs"] or ()):
        wrong.append("no crc32c codec")
    return wrong


def _check_markers(fs, path: str, layout: Layout) -> list[Problem]:
    problems = []
    ids = {s.id: s for s in layout.shards}
    for name in _files(fs, f"{path}/{store.SHARDS_DIR}"):
        if store.TEMPORARY in name:
            problems.append(_leftover(f"{store.SHARDS_DIR}/{name}"))
            continue
        if not name.endswith(".json"):
            continue
        marker, why = _read_json(fs, f"{path}/{store.SHARDS_DIR}/{name}")
        try:
            shard_id = int(name[:-5])
        except ValueError:
            problems.append(Problem(f"{store.SHARDS_DIR}/{name}: not a commit marker name", fix="remove the file"))
            continue
        s = ids.get(shard_id)
        if marker is None or s is None or (marker.get("start"), marker.get("stop")) != (s.start, s.stop):
            what = why or ("names a shard outside the store" if s is None else
                           f"says rows {marker.get('start')}-{marker.get('stop')}, expected {s.start}-{s.stop}")
            problems.append(Problem(f"commit marker {store.SHARDS_DIR}/{name}: {what}", action="reopen",
                                    shards=(shard_id,)))
            continue
        layout.committed[shard_id] = marker
    problems += _check_records(fs, path)
    pending = [s for s in layout.shards if s.id not in layout.committed]
    if pending:
        first = pending[0]
        problems.append(Problem(
            f"{len(pending)} of {len(layout.shards)} shards not committed (first: shard {first.id}, rows "
            f"{first.start}-{first.stop - 1})", action="rerun",
            fix="rerun the `annotate run` command that made the store to annotate them"))
    return problems


def _check_records(fs, path: str) -> list[Problem]:
    """The run's other small files: `_failed/<id>.json` records and `_lock.json` must read as JSON
    objects (a full disk or a stray folder must not block every rerun); temporary files of an
    interrupted atomic write are leftovers (those among the commit markers: _check_markers). Repair
    removes each."""
    problems = []
    for name in _files(fs, f"{path}/{store.FAILED_DIR}"):
        rel = f"{store.FAILED_DIR}/{name}"
        if store.TEMPORARY in name:
            problems.append(_leftover(rel))
        elif store.read_marker(fs, f"{path}/{rel}") is None:
            problems.append(Problem(f"failure record {rel}: unreadable (empty, a folder or not JSON)",
                                    action="remove", paths=(rel,)))
    lock = f"{path}/{store.LOCK_FILE}"
    if fs.exists(lock) and store.read_marker(fs, lock) is None:
        problems.append(Problem(f"{store.LOCK_FILE}: unreadable (empty, a folder or not JSON)", action="remove",
                                paths=(store.LOCK_FILE,)))
    return problems


def _leftover(rel: str) -> Problem:
    return Problem(f"{rel}: leftover of an interrupted write", action="remove", paths=(rel,))


def _files(fs, path: str) -> list[str]:
    try:
        return sorted(f.rstrip("/").rsplit("/", 1)[-1] for f in fs.ls(path, detail=False))
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------- chunks

_HANDLES: dict[str, dict] = {}
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


def _entry_type(fs, path: str) -> str | None:
    """"file", "directory" (or another kind fsspec names) of what is at path; None when nothing is."""
    try:
        return fs.info(path).get("type", "file")
    except FileNotFoundError:
        return None


def describe_error(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if "checksum do not match" in text:
        return "crc32c checksum mismatch (its bytes changed on storage)"
    return f"{type(e).__name__}: {text}"[:200]


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
            kind = _entry_type(h["fs"], f"{h['path']}/{name}/{key}")
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


def _check_coordinates(url: str, layout: Layout) -> list[Problem]:
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


# ---------------------------------------------------------------- repair


def rerun_command(layout: Layout) -> str:
    """The `annotate run` command recorded in the store's provenance, aimed at where the store is now."""
    import shlex

    provenance = layout.attrs.get("provenance") or {}
    if "mcrea" in provenance:
        return f"annotate augment {provenance['mcrea'].get('source', 'SOURCE')} --out {layout.url} --overwrite ..."
    command = provenance.get("command") or ""
    words = shlex.split(command)
    if "--out" in words[:-1]:
        words[words.index("--out") + 1] = layout.url
    elif any(w.startswith("--out=") for w in words):
        words = [f"--out={layout.url}" if w.startswith("--out=") else w for w in words]
    return shlex.join(words) if words else f"annotate run ... --out {layout.url} (with the store's options)"


@dataclass
class Repair:
    reopened: list[int]
    done: list[str]  # what was mended, one line each
    left: list[Problem]  # what no rerun can mend


def repair(report: Report) -> Repair:
    """Mend what needs no annotation and reopen the shards a rerun must re-annotate. The store must
    not be written meanwhile (the caller holds or checks its lock)."""
    import zarr

    layout = report.layout
    if layout is None:
        return Repair([], [], [p for p in report.problems if not p.action])
    url = layout.url
    fs, path = fsspec.core.url_to_fs(url)
    path = path.rstrip("/")
    reopen: set[int] = set()
    done: list[str] = []
    for p in report.problems:
        if p.action == "reopen":
            reopen.update(p.shards)
    recreate = {p.target for p in report.problems if p.action == "recreate"}
    restore = {p.target for p in report.problems if p.action == "restore"} - recreate
    consolidated = _read_json(fs, f"{path}/zarr.json")[0].get("consolidated_metadata", {}).get("metadata") or {}
    for name in sorted(restore):
        fs.pipe(f"{path}/{name}/zarr.json", json.dumps(consolidated[name], indent=2).encode())
        done.append(f"restored {name}/zarr.json from the consolidated copy")
    root = zarr.open_group(url, mode="r+", use_consolidated=False)
    for name in sorted(recreate, key=lambda n: n.count("/")):
        if name in ("meta", "protocols", "pyramid"):
            root.require_group(name)
        elif name in store.COORDINATES:
            store.write_channel_coordinates(root)
        else:
            shape, chunks, dtype, dims = layout.expected[name]
            group, _, leaf = name.rpartition("/")
            store.create_array(root.require_group(group) if group else root, leaf, shape, chunks, dtype, dims,
                               overwrite=True)
            reopen.update(layout.committed)
        done.append(f"recreated {name} empty")
    for shard_id in sorted(reopen):
        marker = f"{path}/{store.SHARDS_DIR}/{shard_id:06d}.json"
        if fs.exists(marker):
            fs.rm(marker, recursive=fs.isdir(marker))
    for rel in sorted({r for p in report.problems for r in p.paths}):
        if fs.exists(f"{path}/{rel}"):
            fs.rm(f"{path}/{rel}", recursive=fs.isdir(f"{path}/{rel}"))
            done.append(f"removed {rel}")
    store.finalize(url)
    done.append("rewrote the consolidated metadata from the nodes")
    return Repair(sorted(reopen), done, [p for p in report.problems if not p.action])


def require_sound(url: str, level: str, what: str, allow_pending: bool = False) -> Layout:
    """The store's layout, or a one-line AnnotatorError naming the first problem `level` finds
    (for commands that read a store: preview at "metadata", augment and export at "quick")."""
    from annotator.core.errors import AnnotatorError

    report = verify(url, level)
    problems = [p for p in report.problems if not (allow_pending and p.action == "rerun")]
    if problems:
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise AnnotatorError(f"{url} fails `annotate verify{' --quick' if level == 'quick' else ''}` "
                             f"({problems[0]}{more}); {what}")
    return report.layout
