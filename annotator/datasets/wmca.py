"""Adapter `wmca`: Idiap WMCA, preprocessed RGB/CDIT HDF5 pairs or raw face-station HDF5 streams."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path, PurePosixPath
from typing import Iterator

from annotator.core.errors import AnnotatorError
from annotator.core.samples import SPLIT_CODES, SampleRef

from .base import DATASETS, DatasetAdapter, refs_for_file, safe_join
from .naming import no_protocols_note

STEM = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d)_(\d+)$")
GROUPS = {**SPLIT_CODES, "eval": SPLIT_CODES["test"]}  # WMCA's lists call test "eval"
PREPROCESSED_RGB = "WMCA_preprocessed_RGB"
PREPROCESSED_CDIT = "WMCA_preprocessed_CDIT"
RAW_EXTENSIONS = (".hdf5", ".h5")  # the raw release's extension is unverified: both are read
# Key names of the raw release are unverified (docs/datasets.md): override with these variables.
RAW_COLOR_KEY = os.environ.get("ANNOTATOR_WMCA_COLOR_KEY", "/intelsr300_bgr")
RAW_DEPTH_KEY = os.environ.get("ANNOTATOR_WMCA_DEPTH_KEY", "/intelsr300_depth")
CDIT_DEPTH_CHANNEL = 1  # CDIT = gray, depth, infrared, thermal


def _ids(spec: str) -> list[int]:
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def _table() -> dict[tuple[int, int], str]:
    """(type, pai) -> canonical attack type, as bob.pad.face's WMCA converter lists them."""
    t = {}
    rules = {
        0: [("0-2", "bonafide")],
        1: [("1,3-7,15,16", "glasses"), ("2,13,14", "rigid_mask"), ("8-12", "wig")],
        2: [("1-7", "fake_head"), ("8-11", "paper_mask"), ("12-17", "rigid_mask"), ("18,75-99", "flexible_mask")],
        3: [("1-4,6-9,11-14", "print"), ("5,10,15", "replay")],
        4: [("1-18", "replay")],
    }
    for typ, entries in rules.items():
        for spec, name in entries:
            for pai in _ids(spec):
                t[(typ, pai)] = name
    return t


PAI_TYPES = _table()
# LOO_<category> protocol names of the distribution -> canonical attack type left out.
LOO_CATEGORIES = {"fakehead": "fake_head", "flexiblemask": "flexible_mask", "glasses": "glasses",
                  "papermask": "paper_mask", "prints": "print", "replay": "replay", "rigidmask": "rigid_mask"}


def attack_type(typ: int, pai: int) -> str | None:
    """Canonical type of a WMCA (type, pai) id; type 5 is makeup whatever its (up to three-digit) pai."""
    return "makeup" if typ == 5 else PAI_TYPES.get((typ, pai))


def protocol_folders(root: Path, protocol_dir: Path | None) -> list[Path]:
    """Where PROTOCOL-*.csv files are looked for, in order (the first file of a name wins)."""
    if protocol_dir is not None:
        return [protocol_dir, protocol_dir / "wmca-protocols-csv"]
    tops = [root, root / "WMCA", root / PREPROCESSED_RGB / "WMCA"]
    return ([root, root / "protocols"] + [t / "wmca-protocols-csv" for t in tops] + [t / "bob" for t in tops[1:]])


@DATASETS.register("wmca")
class WmcaAdapter(DatasetAdapter):
    name = "wmca"
    reads_protocol_files = True
    description = (
        "Idiap WMCA. Either the preprocessed release ROOT/WMCA_preprocessed_RGB/WMCA/face-station/<date>/"
        "<client>_<session>_<presenter>_<type>_<pai>.hdf5 (groups Frame_<i>/array, 3xHxW BGR) with its twin "
        "under WMCA_preprocessed_CDIT (4xHxW gray, depth, infrared, thermal; frames present in both are used), "
        "or raw ROOT/face-station/<dd.mm.yy>/<stem>.hdf5 or .h5 with streams /intelsr300_bgr and "
        "/intelsr300_depth (unverified names: set ANNOTATOR_WMCA_COLOR_KEY / ANNOTATOR_WMCA_DEPTH_KEY). The "
        "depth stream replaces pseudo-depth (meta/depth_source). Protocols from PROTOCOL-<name>.csv (path, "
        "label, ..., group train/dev/eval; with or without a header) found in wmca-protocols-csv/ under ROOT, "
        "ROOT/WMCA or ROOT/WMCA_preprocessed_RGB/WMCA, in WMCA/bob/, ROOT, ROOT/protocols, or --protocol-dir "
        "DIR: protocols/grandtest, LOO_<category>, ...; a missing LOO_<category> is derived from grandtest as "
        "bob.pad.face does. Without any protocol file the store gets no protocols (a note says so)."
    )

    def setup(self) -> None:
        pre = self.root / PREPROCESSED_RGB
        if pre.is_dir():
            self.layout, self.color_root = "preprocessed", pre
            self.depth_root = self.root / PREPROCESSED_CDIT
            self.files = sorted(pre.rglob("*.hdf5"), key=lambda p: p.name)
        elif (self.root / "face-station").is_dir():
            self.layout, self.color_root, self.depth_root = "raw", self.root, None
            self.files = sorted((p for p in (self.root / "face-station").rglob("*")
                                 if p.suffix.lower() in RAW_EXTENSIONS and p.is_file()), key=lambda p: p.name)
        else:
            raise AnnotatorError(f"wmca: {self.root} has neither {PREPROCESSED_RGB}/ nor face-station/; "
                                 "pass the folder that holds one of them as --root")
        self._read_protocols()
        self._derive_loo()

    def _read_protocols(self) -> None:
        looked = protocol_folders(self.root, self.protocol_dir)
        files: dict[str, Path] = {}
        for d in looked:
            for f in sorted(d.glob("PROTOCOL-*.csv")) if d.is_dir() else []:
                files.setdefault(f.stem[len("PROTOCOL-"):], f)
        if not files:
            self.findings.notes.append(no_protocols_note(self.name, looked))
        for name, f in sorted(files.items()):
            self.protocols.setdefault(name, {})
            with open(f, newline="") as fh:
                for line, row in enumerate(csv.reader(fh), start=1):
                    row = [c.strip() for c in row]
                    if not row or not any(row):
                        continue
                    group = row[-1].lower()
                    if line == 1 and group not in GROUPS and "/" not in row[0]:
                        continue  # a header row (the distribution's files may or may not have one)
                    where = f"{f} line {line}"
                    if len(row) < 3 or group not in GROUPS:
                        self.findings.bad_name(where, "expected 'path,label,...,group' with group train/dev/eval, "
                                                      f"got {','.join(row)!r}")
                        continue
                    safe_join(self.root, row[0], where)
                    self.list_code(name, PurePosixPath(row[0]).stem, GROUPS[group])
            self.listed[name] = set(self.protocols[name])

    def _derive_loo(self) -> None:
        """LOO_<category> from grandtest where its CSV is missing, as bob.pad.face defines it: train and dev
        are grandtest's train and dev minus that category; eval is grandtest's eval files of that category
        or bona fide; every other row is unused."""
        grand = self.protocols.get("grandtest")
        if grand is None:
            return
        types = {}
        for stem in grand:
            m = STEM.match(stem)
            types[stem] = attack_type(int(m.group(4)), int(m.group(5))) if m else None
        for loo, left_out in LOO_CATEGORIES.items():
            name = f"LOO_{loo}"
            if name in self.protocols:
                continue
            table = {}
            for stem, code in grand.items():
                t = types[stem]
                if code in (0, 1) and t not in (None, left_out):
                    table[stem] = code
                elif code == 2 and t in (left_out, "bonafide"):
                    table[stem] = 2
            self.protocols[name] = table
            # a stem grandtest's lists put in two groups conflicts in the derived protocol too
            clash = {k: v for k, v in self.conflicts.get("grandtest", {}).items() if k in table}
            if clash:
                self.conflicts[name] = clash

    def samples(self) -> Iterator[SampleRef]:
        if not self.files:
            raise AnnotatorError(f"wmca: no .hdf5 files under {self.color_root}")
        for path in self.files:
            m = STEM.match(path.stem)
            if not m:
                self.findings.bad_name(path, "expected <client>_<session>_<presenter>_<type>_<pai>.hdf5")
                continue
            client, session, presenter, typ, pai = m.groups()
            kind = attack_type(int(typ), int(pai))
            if kind is None:
                self.findings.bad_name(path, f"wmca: native (type, pai) id ({typ}, {pai}) has no canonical mapping")
                continue
            if self.layout == "preprocessed":
                twin = self.depth_root / path.relative_to(self.color_root)
                media = {"kind": "frame-groups", "depth_channel": str(CDIT_DEPTH_CHANNEL)}
                if twin.is_file():
                    media["depth_file"] = str(twin)
            else:
                media = {"kind": "stacks", "color_key": RAW_COLOR_KEY, "depth_key": RAW_DEPTH_KEY}
            yield from refs_for_file(
                path, self.root, self.k, is_attack=kind != "bonafide", attack_type=kind,
                dataset=self.name, subject=client, pai=f"{typ}_{pai}",
                extra={"session": session, "presenter": presenter}, protocols=self.protocol_codes(path.stem),
                media=media)
