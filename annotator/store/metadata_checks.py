"""The metadata level of verify: every node's zarr.json against the layout of group.py and the consolidated copy, the commit markers, failure records and lock."""

from __future__ import annotations

import json

import fsspec

from annotator import store
from annotator.core.samples import STATUS_CODES
from annotator.label import LABEL_CHANNELS

from .problems import RECREATE_FIX, Problem, StoreLayout
from .schema import N_LANDMARKS, OPTIONAL_IN_SCHEMA_1


def read_json(fs, path: str):
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
                    present_protocols: list[str], present_qa: list[str] = (), n_points: int = N_LANDMARKS,
                    present_top: list[str] = ()) -> dict[str, tuple]:
    """Array path -> (shape, chunk shape, data type, dimension names) the layout prescribes (the
    qa/ group's arrays when the store has that group: annotator/store/qa.py; the optional arrays,
    such as `transform`, among present_top); n_points: the landmark layout's points per face (root
    attribute landmark_layout)."""
    out = {}
    optional = {k: v for k, v in store.OPTIONAL_ARRAYS.items() if k in present_top}
    for name, (shape, dtype, dims) in {**store.array_specs(size, n_points), **optional}.items():
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


def check_metadata(url: str) -> tuple[list[Problem], StoreLayout | None]:
    """Root and node metadata, consolidated copy and commit markers. StoreLayout is None when the store
    cannot be read further (no root metadata, unknown schema, no image array)."""
    fs, path = fsspec.core.url_to_fs(url)
    path = path.rstrip("/")
    root, why = read_json(fs, f"{path}/zarr.json")
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
    problems += _check_fixed_attrs(attrs) + _check_landmark_layout(attrs)
    consolidated = (root.get("consolidated_metadata") or {}).get("metadata")
    image, why = read_json(fs, f"{path}/image/zarr.json")
    source = image if image is not None else (consolidated or {}).get("image")
    if not source or len(source.get("shape") or ()) != 4:
        return problems + [Problem("missing array 'image', and no copy of its metadata to size the store by",
                                   fix=RECREATE_FIX)], None
    n, size = int(source["shape"][0]), int(source["shape"][1])
    shard_size = int(attrs.get("shard_size") or source["chunk_grid"]["configuration"]["chunk_shape"][0])
    layout = StoreLayout(url, attrs, version, n, size, shard_size)
    problems += _check_nodes(fs, path, layout, consolidated)
    problems += _check_markers(fs, path, layout)
    return problems, layout


def _check_landmark_layout(attrs: dict) -> list[Problem]:
    if "landmark_layout" not in attrs:
        return []
    from annotator.face.layouts import LAYOUTS

    layout_attr = attrs["landmark_layout"]
    known = LAYOUTS.get(layout_attr.get("name")) if isinstance(layout_attr, dict) else None
    if known is not None and layout_attr.get("points") == known.n_points:
        return []
    return [Problem(f"root zarr.json: landmark_layout {layout_attr!r} is none of "
                    f"{', '.join(f'{k} ({v.n_points} points)' for k, v in LAYOUTS.items())}", fix=RECREATE_FIX)]


def _check_nodes(fs, path: str, layout: StoreLayout, consolidated: dict | None) -> list[Problem]:
    """Every expected array's and group's own zarr.json (filling layout.nodes and layout.expected),
    and consolidated entries with nothing on storage."""
    n, size, shard_size, version = layout.n, layout.size, layout.shard_size, layout.version
    problems = []
    listed = set(consolidated or {})
    present = {g: set(_folders(fs, f"{path}/{g}")) | {k.split("/", 1)[1] for k in listed if k.startswith(g + "/")}
               for g in ("meta", "protocols", "qa")}
    # an optional array is expected where the store has it, on storage or in its consolidated copy (so
    # that a deleted one is damage, not an older store)
    top = set(_folders(fs, path)) | {k for k in listed if "/" not in k}
    layout.expected = expected_arrays(version, n, size, shard_size, sorted(present["meta"]), sorted(present["protocols"]),
                                      sorted(present["qa"]), store.landmark_points(layout.attrs), sorted(top))
    extra_top = [k for k in listed if "/" not in k and k not in layout.expected
                 and (consolidated[k] or {}).get("node_type") == "array"]  # e.g. augment's mcrea_mask
    for group in ("meta", "protocols", "pyramid"):
        node, why = read_json(fs, f"{path}/{group}/zarr.json")
        if node is None:
            problems.append(Problem(f"group {group!r}: zarr.json {why}", action="recreate", target=group))
    for name in [*layout.expected, *sorted(extra_top)]:
        node, found = _check_node(fs, path, name, layout, consolidated)
        problems += found
        if node is not None:
            layout.nodes[name] = node
    if consolidated is not None:
        for name in sorted(listed - set(layout.expected) - set(extra_top)):
            if consolidated[name].get("node_type") == "array" and not read_json(fs, f"{path}/{name}/zarr.json")[0]:
                problems.append(Problem(f"{name}: in the consolidated metadata but not on storage",
                                        action="reconsolidate", target=name))
    return problems


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


def _check_node(fs, path: str, name: str, layout: StoreLayout, consolidated: dict | None
                ) -> tuple[dict | None, list[Problem]]:
    """(the node's own metadata when its chunks can be read, the problems of its metadata)."""
    node, why = read_json(fs, f"{path}/{name}/zarr.json")
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


def _check_markers(fs, path: str, layout: StoreLayout) -> list[Problem]:
    problems = []
    ids = {s.id: s for s in layout.shards}
    for name in _files(fs, f"{path}/{store.SHARDS_DIR}"):
        if store.TEMPORARY in name:
            problems.append(_leftover(f"{store.SHARDS_DIR}/{name}"))
            continue
        if not name.endswith(".json"):
            continue
        marker, why = read_json(fs, f"{path}/{store.SHARDS_DIR}/{name}")
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


def entry_type(fs, path: str) -> str | None:
    """"file", "directory" (or another kind fsspec names) of what is at path; None when nothing is."""
    try:
        return fs.info(path).get("type", "file")
    except FileNotFoundError:
        return None
