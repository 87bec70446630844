"""The export driver: plan the rows, write them shard by shard in parallel (a shard's marker is
written last, so a rerun resumes after the last finished shard), then the lists, frames.csv and the
README that says what the files mean and where they came from (docs/exports.md)."""

from __future__ import annotations

import csv
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from annotator import __version__, store
from annotator.config import check_workers
from annotator.core.errors import AnnotatorError, SettingError
from annotator.core.samples import SPLITS, Status
from annotator.store import places
from annotator.store.verify import require_sound

from .base import EXPORTERS, Exporter, Row, safe_name, write_text
from .lock import ExportLock

STATE = ".export"  # settings.json and done/<shard>.json live here


def export_store(url: str, fmt: str, out: str, protocol: str = "split", workers: int | None = None,
                 progress: bool = True, options: dict | None = None) -> dict:
    """Export the store at `url` as format `fmt` into the folder `out`; returns {"rows" (the usable
    rows of the protocol's groups), "groups", "shards", "resumed", "lists", "unmatched",
    "written_rows" (the rows with files: with --lists, the listed ones), "images" (image files,
    repeats included)}. options: the format's own (`lists`, `size`: FLIP's); with `lists` the list
    files decide the groups and every usable row is a candidate. A rerun with the same settings
    resumes; other settings on the same folder, or a folder that holds something else, are one-line
    errors before anything is written; so is a folder another export is writing now (its lock,
    .export/lock.json)."""
    exporter_cls = EXPORTERS.get(fmt)
    url = places.normalize(url)
    if places.local(out) is None:
        raise SettingError("out", f"exports go to a local folder, got {out}")
    places.refuse_overlap(out, url, "the input store")
    check_workers(workers)
    require_sound(url, "quick", "repair it (`annotate verify --repair`, then rerun) before exporting")
    root = store.open_store(url)
    options = {k: v for k, v in (options or {}).items() if v is not None and v != ""}  # --size 0 is checked
    rows = plan_rows(root, "all" if options.get("lists") else protocol)
    exporter = exporter_cls(int(root["image"].shape[1]))
    exporter.prepare(root, rows, options)
    folder = Path(out)
    settings = {"store": str(places.local(url) or url), "store_id": root.attrs.get("store_id"), "format": fmt,
                "protocol": protocol, "rows": len(rows)}
    if options:  # a rerun with other lists or size is another export
        settings["options"] = {k: str(Path(v).resolve()) if k == "lists" else v for k, v in options.items()}
    _check_folder(folder, settings)  # nothing is written, not even the lock, into a folder that is refused
    places.require_writable(str(folder))
    with ExportLock(folder, STATE) as held:
        _claim(folder, settings)
        return _write(root, url, exporter, protocol, rows, folder, workers, progress, held)


def _write(root, url: str, exporter: Exporter, protocol: str, rows: list[Row], folder: Path, workers: int | None,
           progress: bool, held: ExportLock) -> dict:
    """The shards not done yet, on threads, then the lists, frames.csv and README (under the lock)."""
    shard = store.shard_size_of(root)
    by_shard: dict[int, list[Row]] = {}
    for r in rows:
        by_shard.setdefault(r.row // shard, []).append(r)
    done_dir = folder / STATE / "done"
    done_dir.mkdir(parents=True, exist_ok=True)
    done = {int(p.stem) for p in done_dir.glob("*.json") if p.stem.isdigit()}
    todo = [k for k in sorted(by_shard) if k not in done]
    from tqdm import tqdm

    last_beat = time.time()
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool, \
            tqdm(total=len(by_shard), initial=len(by_shard) - len(todo), desc=f"export {exporter.name}",
                 unit="shard", disable=not progress) as bar:
        futures = [pool.submit(_export_shard, root, exporter, k, shard, by_shard[k], folder) for k in todo]
        for f in as_completed(futures):
            f.result()
            bar.update(1)
            if time.time() - last_beat > 30:  # an export on another host sees this one alive
                held.beat()
                last_beat = time.time()
    lists = exporter.lists(rows, folder)
    _frames_csv(exporter, rows, folder)
    groups = {g: sum(r.group == g for r in rows) for g in sorted({r.group for r in rows})}
    write_text(folder / "README.md", readme(exporter, root, url, protocol, rows, groups, lists))
    images = [len(exporter.images(r)) for r in rows]  # --lists places only the listed rows
    return {"rows": len(rows), "groups": groups, "shards": len(by_shard), "resumed": len(by_shard) - len(todo),
            "lists": lists, "unmatched": len(getattr(exporter, "unmatched", [])),
            "written_rows": sum(n > 0 for n in images), "images": sum(images)}


def plan_rows(root, protocol: str) -> list[Row]:
    """The usable rows (status 0) in a group of `protocol` ("split": meta/split; "all": one group
    "all"; else protocols/<name>), each with its video's safe name and its rank in the video."""
    meta = store.read_meta(root, ["sample_id", "video_id", "frame_index", "is_attack", "attack_type", "dataset",
                                  "split", "status"])
    n = len(meta["status"])
    if protocol == "all":
        group = np.full(n, "all", dtype=object)
    elif protocol == "split":
        group = np.array([s if s in SPLITS else "" for s in meta["split"].astype(str)], dtype=object)
        if not (group != "").any():
            raise AnnotatorError(f"the store's meta/split names no train/dev/test rows; give --protocol with one of: "
                                 f"{', '.join(['all'] + store.protocol_names(root))}")
    else:
        names = store.protocol_names(root)
        if protocol not in names:
            raise AnnotatorError(f"the store has no protocol {protocol!r}; it has: {', '.join(['split', 'all'] + names)}")
        codes = root[f"protocols/{protocol}"][:]
        group = np.array([SPLITS[c] if 0 <= c < len(SPLITS) else "" for c in codes.tolist()], dtype=object)
    keep = np.nonzero((group != "") & (meta["status"] == int(Status.OK)))[0]
    if not len(keep):
        raise AnnotatorError(f"protocol {protocol!r} selects no usable rows of the store; nothing to export")
    vids = meta["video_id"].astype(str)
    names: dict[str, str] = {}
    order = sorted(keep.tolist(), key=lambda i: (group[i], vids[i], int(meta["frame_index"][i]), i))
    rows, rank = [], {}
    count: dict[tuple, int] = {}
    for i in order:
        count[(group[i], vids[i])] = count.get((group[i], vids[i]), 0) + 1
    for i in order:
        key = (group[i], vids[i])
        rank[key] = rank.get(key, -1) + 1
        video = names.setdefault(vids[i], safe_name(vids[i] or str(meta["sample_id"][i])))
        rows.append(Row(i, str(group[i]), video, vids[i], rank[key], int(meta["frame_index"][i]),
                        bool(meta["is_attack"][i]), str(meta["attack_type"][i]), str(meta["sample_id"][i]),
                        str(meta["dataset"][i]), count[key]))
    return rows


def _check_folder(folder: Path, settings: dict) -> None:
    """Refuse a file, a folder holding something other than an export, or an export with other
    settings; writes nothing. The export's own state folder alone (a lock, an interrupted start)
    counts as empty."""
    marker = folder / STATE / "settings.json"
    if folder.exists() and not folder.is_dir():
        raise AnnotatorError(f"--out {folder} is a file; give a folder")
    if marker.is_file():
        before = json.loads(marker.read_text())
        diff = [k for k in settings if before.get(k) != settings[k]]
        if diff:
            raise AnnotatorError(f"--out {folder} holds an export with other settings ({', '.join(diff)}: "
                                 f"{', '.join(str(before.get(k)) for k in diff)}); choose another --out or the same "
                                 "settings to resume")
    elif folder.exists() and any(p.name != STATE for p in folder.iterdir()):
        raise AnnotatorError(f"--out {folder} is not empty and holds no export; choose another --out "
                             "(nothing was written)")


def _claim(folder: Path, settings: dict) -> None:
    """Make `folder` this export's, or resume it (under the lock: checked again, since an export
    that held the lock before may have claimed it with other settings)."""
    _check_folder(folder, settings)
    marker = folder / STATE / "settings.json"
    if not marker.is_file():
        write_text(marker, json.dumps(settings, indent=2))


def _export_shard(root, exporter: Exporter, k: int, shard: int, rows: list[Row], folder: Path) -> None:
    """The files of one shard's rows (its chunks read once), then its marker."""
    sl = slice(k * shard, (k + 1) * shard)
    image, label, landmarks = root["image"][sl], root["label"][sl], root["landmarks"][sl]
    for r in rows:
        i = r.row - k * shard
        exporter.write(r, image[i], label[i], landmarks[i], folder)
    write_text(folder / STATE / "done" / f"{k:06d}.json", json.dumps({"rows": len(rows)}))


def _frames_csv(exporter: Exporter, rows: list[Row], folder: Path) -> None:
    with open(folder / "frames.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "group", "row", "sample_id", "video_id", "frame_index", "is_attack", "attack_type"])
        for r in rows:  # one line per image file: a frame a reader needs repeated has several
            for path in exporter.images(r):
                w.writerow([path, r.group, r.row, r.sample_id, r.video_id, r.frame_index, int(r.is_attack),
                            r.attack_type])


def _layout_text(root) -> str:
    """The store's landmark layout, as the export README names it."""
    lay = store.stored_layout(root.attrs)
    extra = ", with the forehead, brow and cheek points derived from them (docs/labels.md)" \
        if lay["name"] == "ibug-68" else ""
    return f"{lay['points']} points, layout {lay['name']}{extra}"


def readme(exporter: Exporter, root, url: str, protocol: str, rows: list[Row], groups: dict, lists: list[str]) -> str:
    cfg = root.attrs.get("config", {})
    size = getattr(exporter, "out_size", exporter.size)
    sampling = cfg.get("sampling") or f"even:{cfg.get('frames_per_video', '?')}"
    counts = ", ".join(f"{g} {n}" for g, n in groups.items())
    return f"""# {exporter.name} export of {url}

Written by `annotate export --format {exporter.name} --protocol {protocol}` (fas-annotator {__version__})
from the label store {url} (store_id {root.attrs.get('store_id')}, schema {root.attrs.get('schema_version')},
dataset {cfg.get('dataset', '?')}). Rows: {len(rows)} ({counts}); rows whose annotation failed
(meta/status != 0) are left out.

Crop: every image is the store's face crop, {size} x {size} pixels: the square around the face's
landmarks ({_layout_text(root)}) times the box scale {cfg.get('box_scale', '?')}, upright (meta/rotation), RGB.

Frames: the store sampled video frames as `{sampling}`; frames.csv lists every exported row with
the source frame index (meta/frame_index, 0-based) of its first file. Videos are named by a
file-system-safe form of meta/video_id; frames are numbered in frame order within a video and group.

Labels: the store's three-channel map (attack, live, background; 0-255). live = pseudo-depth on
bona fide skin (0 where there is none), attack = attack-instrument pixels, background = 255 where both
are 0. Whole-sample labels: bona fide = the dataset's bona fide presentations; every other row is an
attack.

{exporter.about}

Lists written: {', '.join(lists)}.
"""
