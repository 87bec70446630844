"""`annotate verify --repair`: the mends of verify's problems that need no annotation, and the rerun that re-annotates the reopened shards."""

from __future__ import annotations

import json
from dataclasses import dataclass

import fsspec

from annotator import store

from .metadata_checks import read_json
from .problems import Problem, Report, StoreLayout


def rerun_command(layout: StoreLayout) -> str:
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
    consolidated = read_json(fs, f"{path}/zarr.json")[0].get("consolidated_metadata", {}).get("metadata") or {}
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
