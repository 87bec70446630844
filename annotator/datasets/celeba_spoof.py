"""Adapter `celeba-spoof`: CelebA-Spoof's images, typed by the label vectors of its metas/ JSON files.

Layout, label vector, the spoof-type table, protocols and face boxes: docs/datasets.md, "CelebA-Spoof".
The release holds over 600,000 images, so enumeration opens no image and no `_BB.txt` (a box is read
when its image is processed): it lists the Data/ folders by name (os.scandir, os.listdir: no stat) and
joins them with the label files. Those are read by a fast path for the release's plain JSON object
(one regular expression per entry, keeping indices 40-43 only) and by the json module for any other
form. Each image's labels and protocol codes are kept as one interned tuple, so 625,537 entries cost a
dict slot and a key each (bench/enumerate.py --case celeba-spoof measures it).
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Set
from pathlib import Path
from typing import Iterator

from annotator.core.errors import AnnotatorError
from annotator.core.samples import SampleRef
from annotator.media.decode import IMAGE_EXTENSIONS

from .base import DATASETS, ON_CONFLICT, DatasetAdapter, conflict_note, describe_conflicts

# Index 40 of a label vector -> (the native name, kept in meta/pai; the canonical attack type).
# Names and codes: the CelebA-Spoof README's "Annotation Detail" table; the mapping: docs/datasets.md.
SPOOF_TYPES = {
    0: ("live", "bonafide"),
    1: ("photo", "print"),
    2: ("poster", "print"),
    3: ("a4", "print"),
    4: ("face_mask", "paper_mask"),
    5: ("upper_body_mask", "print"),
    6: ("region_mask", "cut_print"),
    7: ("pc", "replay"),
    8: ("pad", "replay"),
    9: ("phone", "replay"),
    10: ("3d_mask", "rigid_mask"),
}
ILLUMINATION = {0: "", 1: "normal", 2: "strong", 3: "back", 4: "dark"}  # index 41 (0: live, none)
ENVIRONMENT = {0: "", 1: "indoor", 2: "outdoor"}  # index 42 (0: live, none)
VECTOR_LENGTH = 44  # [0:40] CelebA's face attributes, 40 spoof type, 41 illumination, 42 environment, 43 live/spoof
LABEL_FILES = {"train_label.json": 0, "test_label.json": 2}  # -> protocol group
INTRA_TEST = "intra_test"
DEV_PROTOCOL = "intra_test_dev"  # intra_test with a tenth of its train subjects as dev (ours, not the release's)
DEV_BUCKETS = 10  # a train subject is dev when crc32(subject id) % DEV_BUCKETS == 0
LABEL_CONFLICTS = "label vectors"  # DatasetAdapter.conflicts key (no protocol name has a space): images whose
# labels contradict their folder or each other
SPLITS = ("train", "test")
KINDS = ("live", "spoof")
BB_SUFFIX = "_BB.txt"
BB_FORMAT = "bb224"  # annotator/face/annotations.py: x y w h score in a 224 x 224 frame
KEY_LAYOUT = "Data/<train|test>/<subject>/<live|spoof>/<image>"

# One entry of the release's label files: "key": [40 values, then the 4 read], then ',' or the closing '}'.
_ENTRY = re.compile(rb'\s*"([^"\\]*)"\s*:\s*\[([^\]]*),([^,\]]*,[^,\]]*,[^,\]]*,[^,\]]*)\]\s*([,}])')
_EMPTY = re.compile(rb"\s*\}\s*$")
_TRAILING = re.compile(rb"\s*$")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def parse_fast(data: bytes, intern: dict) -> dict[str, tuple[int, ...]] | None:
    """key -> (indices 40, 41, 42, 43) of every entry of a label file in the release's plain form (a
    JSON object of plain keys and lists of 44 integers); None for anything else (parse_json reads it)."""
    start = data.find(b"{")
    if start < 0 or data[:start].strip():
        return None
    pos, out, tails, end = start + 1, {}, {}, b","
    if _EMPTY.match(data, pos):
        return out
    for e in _ENTRY.finditer(data, pos):
        if e.start() != pos or end == b"}":  # something between two entries, or after the closing brace
            return None
        key, head, tail, end = e.groups()
        pos = e.end()
        if head.count(b",") != VECTOR_LENGTH - 5:
            return None
        t = tails.get(tail)  # the few distinct endings as written -> their interned tuple
        if t is None:
            try:
                t = tuple(int(v) for v in tail.split(b","))
            except ValueError:
                return None
            t = tails[tail] = intern.setdefault(t, t)
        try:
            out[key.decode()] = t
        except UnicodeDecodeError:
            return None
    return out if end == b"}" and _TRAILING.match(data, pos) else None


def parse_json(data: bytes, where: Path, intern: dict) -> dict[str, tuple[int, ...] | str]:
    """key -> (indices 40-43), or what is wrong with that entry's vector, of any valid label file."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise AnnotatorError(f"{where}: not valid JSON ({e}); expected the release's label file, an object "
                             f"{{\"{KEY_LAYOUT}\": [{VECTOR_LENGTH} integers], ...}}: re-extract metas/") from None
    if not isinstance(obj, dict):
        raise AnnotatorError(f"{where}: expected a JSON object {{\"{KEY_LAYOUT}\": [{VECTOR_LENGTH} integers], ...}}, "
                             f"got a {type(obj).__name__}; re-extract metas/")
    out: dict[str, tuple[int, ...] | str] = {}
    for key, v in obj.items():
        if (isinstance(v, list) and len(v) == VECTOR_LENGTH
                and all(isinstance(x, int) and not isinstance(x, bool) for x in v)):
            t = tuple(v[40:])
            out[key] = intern.setdefault(t, t)
        else:
            shown = json.dumps(v)
            out[key] = (f"expected a list of {VECTOR_LENGTH} integers, got "
                        f"{shown if len(shown) <= 60 else shown[:57] + '...'}")
    return out


def read_label_file(path: Path, intern: dict) -> dict[str, tuple[int, ...] | str]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise AnnotatorError(f"celeba-spoof: cannot read {path} ({e.strerror or e}); check the file's permissions "
                             "or re-extract metas/") from None
    fast = parse_fast(data, intern)
    return fast if fast is not None else parse_json(data, path, intern)


def normal_key(key: str) -> str | None:
    """A label key as the adapter's sources are written (Data/...), or None when it names no such path."""
    if key.startswith("Data/"):
        return key
    key = key.replace("\\", "/")
    if key.startswith("Data/"):
        return key
    i = key.find("/Data/")
    return key[i + 1:] if i >= 0 else None


def protocol_folders(base: Path) -> list[tuple[str, Path]]:
    """(protocol name, folder) of every folder under base that holds train_label.json or test_label.json:
    the name is its path under base joined by '_' (metas/protocol2/test_on_low_quality_device ->
    protocol2_test_on_low_quality_device); intra_test first, the others by name."""
    found = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if any(f in LABEL_FILES for f in filenames):
            parts = Path(dirpath).relative_to(base).parts or (base.name,)
            found.append((_UNSAFE_NAME.sub("_", "_".join(parts)), Path(dirpath)))
    return sorted(found, key=lambda nf: (nf[0] != INTRA_TEST, nf[0]))


class LabelIds(Set):
    """The keys one protocol's label files name (DatasetAdapter.listed), read from the entries when asked:
    a set of 625,537 keys per protocol would cost tens of MB each."""

    def __init__(self, entries: dict[str, tuple[int, ...]], index: int):
        self.entries, self.index = entries, index

    def __contains__(self, key) -> bool:
        t = self.entries.get(key)
        return t is not None and t[self.index] != -1

    def __iter__(self) -> Iterator[str]:
        return (k for k, t in self.entries.items() if t[self.index] != -1)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @classmethod
    def _from_iterable(cls, it) -> set:
        return set(it)


def dev_subject(subject: str) -> bool:
    return zlib.crc32(subject.encode()) % DEV_BUCKETS == 0


def _subject_order(name: str) -> tuple:
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def _reading(t: tuple[int, ...]) -> str:
    """What a label tuple says, without commas (conflict listings join readings with them)."""
    name = SPOOF_TYPES.get(t[0], ("unknown",))[0]
    return f"type {t[0]} {name} / live-spoof {t[3]}"


@DATASETS.register("celeba-spoof")
class CelebASpoofAdapter(DatasetAdapter):
    name = "celeba-spoof"
    reads_protocol_files = True
    row_conflicts = LABEL_CONFLICTS  # images whose labels contradict: settle_rows
    description = (
        "CelebA-Spoof. ROOT (or ROOT/CelebA_Spoof) holds Data/{train,test}/<subject>/{live,spoof}/<image> with "
        "<image stem>_BB.txt beside each image (x y w h score in a 224 x 224 frame, scaled to the image for "
        "--use-dataset-faces), and metas/<protocol>/{train,test}_label.json: {\"Data/...\": [44 integers]} "
        "(40 spoof type, 41 illumination, 42 environment, 43 live/spoof), or --protocol-dir DIR holding the "
        "protocol folders. Spoof types: photo, poster, A4, upper body mask -> print; face mask -> paper_mask; "
        "region mask -> cut_print; PC, pad, phone -> replay; 3D mask -> rigid_mask (meta/pai keeps the native "
        "name). meta illumination (normal, strong, back, dark) and environment (indoor, outdoor); empty for "
        "live. meta/split train/test from Data/. Writes protocols/intra_test and every other folder of label "
        "files (protocol1, protocol2_test_on_<low|middle|high>_quality_device, ...), and intra_test_dev "
        "(intra_test with the train images of one subject in ten, by crc32 of its id, as dev)."
    )

    def setup(self) -> None:
        base = self.root
        if not (base / "Data").is_dir() and (base / "CelebA_Spoof" / "Data").is_dir():
            base = base / "CelebA_Spoof"
        if not (base / "Data").is_dir():
            raise AnnotatorError(f"celeba-spoof: no Data/ folder under {self.root}; pass the folder that holds Data/ "
                                 "and metas/ (the release's CelebA_Spoof/) as --root")
        self.data = base / "Data"
        self.prefix = "" if base == self.root else base.relative_to(self.root).as_posix() + "/"
        if not any((self.data / s).is_dir() for s in SPLITS):
            raise AnnotatorError(f"celeba-spoof: neither Data/train/ nor Data/test/ under {base}; the release's images "
                                 "are Data/<train|test>/<subject>/<live|spoof>/*.jpg: extract them there")
        others = sorted(p.name for p in self.data.iterdir() if p.is_dir() and p.name not in SPLITS
                        and not p.name.startswith("."))
        if others:
            self.findings.notes.append(f"celeba-spoof: Data/{', Data/'.join(others)} not read (only Data/train and "
                                       "Data/test are the release's images)")
        metas = self.protocol_dir or base / "metas"
        folders = protocol_folders(metas) if metas.is_dir() else []
        if not folders:
            where = f"--protocol-dir {metas}" if self.protocol_dir else f"{metas}"
            raise AnnotatorError(f"celeba-spoof: no label files under {where}: the spoof types come from "
                                 f"metas/{INTRA_TEST}/train_label.json and test_label.json; extract the release's "
                                 "metas/ beside Data/, or pass --protocol-dir DIR holding intra_test/")
        if folders[0][0] != INTRA_TEST:
            self.findings.notes.append(f"celeba-spoof: no {INTRA_TEST}/ under {metas}; images are typed by the label "
                                       f"files of {', '.join(n for n, _ in folders)}")
        self.names = [n for n, _ in folders]
        self.derive_dev = INTRA_TEST in self.names and DEV_PROTOCOL not in self.names
        self.label_files = [f for _, d in folders for f in (d / n for n in LABEL_FILES) if f.is_file()]
        self._read_labels(folders)

    def _read_labels(self, folders: list[tuple[str, Path]]) -> None:
        """self.entries: source -> interned (index 40, 41, 42, 43, then one code per protocol, -1 where
        that protocol's files do not name it). The first file naming an image gives its labels; another
        reading is a label conflict, a second group within one protocol a leakage conflict."""
        entries: dict[str, tuple[int, ...]] = {}
        intern: dict[tuple, tuple] = {}
        n = len(folders)
        label_clash = self.conflicts.setdefault(LABEL_CONFLICTS, {})
        for p, (protocol, folder) in enumerate(folders):
            for fname, code in LABEL_FILES.items():
                f = folder / fname
                if not f.is_file():
                    continue
                # (the entry so far, this file's labels) -> the entry after this file; few distinct pairs
                merged: dict[tuple, tuple] = {}
                for key, t in read_label_file(f, intern).items():
                    source = key if key.startswith("Data/") else normal_key(key)
                    if source is None:
                        self.findings.bad_name(f"{f}: {key}", f"expected a key {KEY_LAYOUT}")
                        continue
                    if isinstance(t, str):
                        self.findings.bad_name(f"{f}: {key}", t)
                        continue
                    old = entries.get(source)
                    step = merged.get((old, t))
                    if step is None:
                        if old is None:
                            new, relabels, leaks = t + (-1,) * p + (code,) + (-1,) * (n - p - 1), False, False
                        else:
                            had = old[4 + p]
                            new = old[:4 + p] + (code if had == -1 else min(had, code),) + old[5 + p:]
                            relabels, leaks = old[:4] != t, had not in (-1, code)
                        step = merged[(old, t)] = (intern.setdefault(new, new), relabels, leaks)
                    new, relabels, leaks = step
                    if relabels:
                        readings = label_clash.setdefault(self.prefix + source, [f"{self._first(old)}: {_reading(old)}"])
                        readings.append(f"{protocol}/{fname}: {_reading(t)}")
                    if leaks:
                        groups = self.conflicts.setdefault(protocol, {}).setdefault(source, [old[4 + p]])
                        groups[:] = sorted(set(groups) | {code})
                    entries[source] = new
        if not label_clash:
            del self.conflicts[LABEL_CONFLICTS]
        self.entries = entries
        self._interned = intern

    def _first(self, t: tuple[int, ...]) -> str:
        """The label file that gave a label tuple its labels: the first protocol naming it."""
        i = next((i for i, code in enumerate(t[4:]) if code != -1), 0)
        return f"{self.names[i]}/{'test' if t[4 + i] == 2 else 'train'}_label.json"

    def protocol_names(self) -> list[str]:
        return self.names + ([DEV_PROTOCOL] if self.derive_dev else [])

    def leave_out(self, protocol: str, key: str) -> None:
        """Leakage within a protocol, dropped: the image leaves that protocol (its code becomes -1).
        Label conflicts (row_conflicts) are settled by settle_rows."""
        i = 4 + self.names.index(protocol)
        old = self.entries[key]
        new = old[:i] + (-1,) + old[i + 1:]
        self.entries[key] = self._interned.setdefault(new, new)

    def settle_rows(self, refs: list[SampleRef], on_conflict: str) -> list[SampleRef]:
        """Rows whose labels contradict their folder or each other: refused (""), left out ("drop"), or
        kept as the first label file's index 40 types them ("first")."""
        clash = self.conflicts.get(LABEL_CONFLICTS, {})  # by source, as the rows
        rows = {r.source for r in refs if r.source in clash} if clash else set()
        if not rows:
            return refs
        shown = {LABEL_CONFLICTS: {s: clash[s] for s in sorted(rows)}}
        if on_conflict not in ON_CONFLICT:
            if on_conflict:
                raise AnnotatorError(f"--on-conflict takes {' or '.join(ON_CONFLICT)}, got {on_conflict!r}")
            raise AnnotatorError(
                f"celeba-spoof: {len(rows)} image(s) whose label vector contradicts its folder or another label "
                f"file: {describe_conflicts(shown, limit=3)}; `annotate check-dataset` lists them all; pass "
                "--on-conflict drop to leave them out, or --on-conflict first to type each by index 40 of the "
                "first label file naming it")
        self.findings.notes.append(conflict_note(shown, on_conflict))
        if on_conflict == "drop":
            return [r for r in refs if r.source not in rows]
        return refs

    def list_ids(self, ref: SampleRef) -> set[str]:
        return {ref.source[len(self.prefix):]}  # as the label files name it: Data/...

    def _row_fields(self, t: tuple[int, ...], dev: bool, shared: dict) -> tuple | str:
        """(is_attack, attack_type, pai, extra, protocols) of a label tuple, or what is wrong with it; the
        extra and protocols dicts are shared (`shared`) by every row that has the same ones."""
        spoof, illum, env, live = t[:4]
        if spoof not in SPOOF_TYPES:
            return (f"celeba-spoof: spoof type (index 40) {spoof} has no canonical mapping "
                    f"(known: {', '.join(map(str, SPOOF_TYPES))})")
        if illum not in ILLUMINATION or env not in ENVIRONMENT or live not in (0, 1):
            return (f"celeba-spoof: label indices 41-43 ({illum}, {env}, {live}) outside illumination 0-4, "
                    "environment 0-2, live/spoof 0-1")
        pai, attack_type = SPOOF_TYPES[spoof]
        codes = dict(zip(self.names, t[4:]))
        if self.derive_dev:
            codes[DEV_PROTOCOL] = 1 if dev and codes[INTRA_TEST] == 0 else codes[INTRA_TEST]
        extra = {"illumination": ILLUMINATION[illum], "environment": ENVIRONMENT[env]}
        return (spoof != 0, attack_type, pai, shared.setdefault(("extra", illum, env), extra),
                shared.setdefault(("codes", *codes.values()), codes))

    def _subject_dirs(self, split: str) -> Iterator[tuple[str, str]]:
        top = self.data / split
        if not top.is_dir():
            return
        with os.scandir(top) as it:
            listing = sorted((e.name, e.is_dir()) for e in it if not e.name.startswith("."))
        for name, is_dir in sorted(listing, key=lambda e: _subject_order(e[0])):
            where = top / name
            if not is_dir:
                if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                    self.findings.bad_name(where, f"an image directly under Data/{split}/; expected {KEY_LAYOUT}")
                continue
            if not name.isdigit():
                self.findings.bad_name(where, f"expected a subject folder named by its CelebA identity number ({KEY_LAYOUT})")
                continue
            with os.scandir(where) as it:
                inner = sorted((e.name, e.is_dir()) for e in it if not e.name.startswith("."))
            for kind, kind_is_dir in inner:
                if kind_is_dir and kind not in KINDS:
                    self.findings.bad_name(where / kind, f"expected only live/ and spoof/ in a subject folder ({KEY_LAYOUT})")
                elif not kind_is_dir and os.path.splitext(kind)[1].lower() in IMAGE_EXTENSIONS:
                    self.findings.bad_name(where / kind, f"an image outside live/ and spoof/; expected {KEY_LAYOUT}")
            if any(k in KINDS and d for k, d in inner):
                yield name, str(where)

    def samples(self) -> Iterator[SampleRef]:
        entries, clash = self.entries, self.conflicts.get(LABEL_CONFLICTS, {})
        cache: dict[tuple, tuple | str] = {}  # (label tuple, dev subject) -> the row's fields
        shared: dict[tuple, dict] = {}
        root, prefix, found = str(self.root), self.prefix, 0
        for split in SPLITS:
            for subject, subject_dir in self._subject_dirs(split):
                dev = dev_subject(subject)
                for kind in KINDS:
                    try:  # names only: listdir neither stats nor opens a file
                        names = sorted(os.listdir(os.path.join(subject_dir, kind)))
                    except (FileNotFoundError, NotADirectoryError):
                        continue
                    rel = f"Data/{split}/{subject}/{kind}/"
                    base = f"{root}/{prefix}{rel}"
                    for name in names:
                        dot = name.rfind(".")
                        if dot <= 0 or name[0] == "." or name[dot:].lower() not in IMAGE_EXTENSIONS:
                            continue  # the _BB.txt files, hidden files and anything that is not an image
                        key = rel + name
                        source = prefix + key if prefix else key
                        path = base + name
                        t = entries.get(key)
                        if t is None:
                            self.findings.bad_name(path, f"no usable entry {key!r} in any label file "
                                                         f"({', '.join(str(f) for f in self.label_files)}), so its "
                                                         "spoof type is unknown; `annotate check-dataset` lists "
                                                         "every such image")
                            continue
                        fields = cache.get((t, dev))
                        if fields is None:
                            fields = cache[(t, dev)] = self._row_fields(t, dev, shared)
                        if isinstance(fields, str):
                            self.findings.bad_name(path, fields, listed_as=key)
                            continue
                        is_attack, attack_type, pai, extra, protocols = fields
                        if (kind == "spoof") != is_attack or (t[3] == 1) != is_attack:
                            if not clash:
                                clash = self.conflicts.setdefault(LABEL_CONFLICTS, clash)
                            readings = clash.setdefault(source, [f"{self._first(t)}: {_reading(t)}"])
                            if (kind == "spoof") != is_attack and f"folder {kind}" not in readings:
                                readings.append(f"folder {kind}")
                        found += 1
                        yield SampleRef(sample_id=source, path=path, source=source, video_id=source,
                                        is_attack=is_attack, attack_type=attack_type, dataset=self.name,
                                        subject=subject, pai=pai, split=split, extra=extra, protocols=protocols,
                                        media={"faces": f"{base}{name[:dot]}{BB_SUFFIX}", "faces_format": BB_FORMAT})
        if not found and not self.findings.bad_names:
            raise AnnotatorError(f"celeba-spoof: no images under {self.data}/train or {self.data}/test; the release's "
                                 f"images are {KEY_LAYOUT}")
        if not self.findings.strict:
            self.listed = {name: LabelIds(entries, 4 + i) for i, name in enumerate(self.names)}
        elif len(entries) > found:  # every image on disk had its entry: the rest name files that are not there
            self.findings.notes.append(f"celeba-spoof: {len(entries) - found} labelled image(s) are not on disk "
                                       "(`annotate check-dataset` lists them)")
