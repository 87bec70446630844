"""Adapter `wmca`: Idiap WMCA, preprocessed RGB/CDIT HDF5 pairs or raw face-station HDF5 streams."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path, PurePosixPath
from typing import Iterator

from ..errors import AnnotatorError
from ..samples import SampleRef
from .base import DATASETS, refs_for_file, require_dir, safe_join

STEM = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d)_(\d+)$")
GROUPS = {"train": 0, "dev": 1, "eval": 2, "test": 2}
PREPROCESSED_RGB = "WMCA_preprocessed_RGB"
PREPROCESSED_CDIT = "WMCA_preprocessed_CDIT"
# Key names of the raw release are unverified (REFERENCE.md): override with these variables.
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
    t = {}
    rules = {
        0: [("0-2", "bonafide")],
        1: [("1,3-7,15,16", "glasses"), ("2,13,14", "rigid_mask"), ("8-12", "wig")],
        2: [("1-7", "fake_head"), ("8-11", "paper_mask"), ("12-17", "rigid_mask"), ("18,75-99", "flexible_mask")],
        3: [("1-4,6-9,11-14", "print"), ("5,10,15", "replay")],
    }
    for typ, entries in rules.items():
        for spec, name in entries:
            for pai in _ids(spec):
                t[(typ, pai)] = name
    for pai in range(0, 100):
        t[(4, pai)] = "replay"
        t[(5, pai)] = "makeup"
    return t


PAI_TYPES = _table()
# LOO_<category> protocol names of the distribution -> canonical attack type left out.
LOO_CATEGORIES = {"fakehead": "fake_head", "flexiblemask": "flexible_mask", "glasses": "glasses",
                  "papermask": "paper_mask", "prints": "print", "replay": "replay", "rigidmask": "rigid_mask"}


def _native(stem: str) -> tuple[int, int]:
    m = STEM.match(stem)
    return int(m.group(4)), int(m.group(5))


@DATASETS.register("wmca")
class WmcaAdapter:
    name = "wmca"
    description = (
        "Idiap WMCA. Either the preprocessed release ROOT/WMCA_preprocessed_RGB/WMCA/face-station/<date>/"
        "<client>_<session>_<presenter>_<type>_<pai>.hdf5 (groups Frame_<i>/array, 3xHxW BGR) with its twin "
        "under WMCA_preprocessed_CDIT (4xHxW gray, depth, infrared, thermal; frames present in both are used), "
        "or raw ROOT/face-station/<dd.mm.yy>/<stem>.hdf5 with streams /intelsr300_bgr and /intelsr300_depth "
        "(unverified names: set ANNOTATOR_WMCA_COLOR_KEY / ANNOTATOR_WMCA_DEPTH_KEY). The depth stream "
        "replaces pseudo-depth (meta/depth_source). Protocols from PROTOCOL-<name>.csv files in ROOT or "
        "ROOT/protocols (path, label, ..., group train/dev/eval): protocols/grandtest, LOO_<category>, ...; "
        "LOO_<category> without its CSV is derived from grandtest."
    )

    def __init__(self, root: str | None, frames_per_video: int = 10):
        self.root = require_dir(root, self.name)
        self.k = frames_per_video
        pre = self.root / PREPROCESSED_RGB
        if pre.is_dir():
            self.layout, self.color_root = "preprocessed", pre
            self.depth_root = self.root / PREPROCESSED_CDIT
        elif (self.root / "face-station").is_dir():
            self.layout, self.color_root, self.depth_root = "raw", self.root, None
        else:
            raise AnnotatorError(f"wmca: {self.root} has neither {PREPROCESSED_RGB}/ nor face-station/; "
                                 "pass the folder that holds one of them as --root")
        self.protocols = self._read_protocols()
        self.files = sorted(self.color_root.rglob("*.hdf5"), key=lambda p: p.name)
        self._derive_loo({p.stem: PAI_TYPES.get(_native(p.stem), "") for p in self.files if STEM.match(p.stem)})

    def _read_protocols(self) -> dict[str, dict[str, int]]:
        files = sorted(list(self.root.glob("PROTOCOL-*.csv")) + list(self.root.glob("protocols/PROTOCOL-*.csv")))
        if not files:
            raise AnnotatorError(f"wmca: no PROTOCOL-<name>.csv in {self.root} or {self.root / 'protocols'}; "
                                 "copy the protocol files of the distribution there")
        out: dict[str, dict[str, int]] = {}
        for f in files:
            name = f.stem[len("PROTOCOL-"):]
            table = out.setdefault(name, {})
            with open(f, newline="") as fh:
                for line, row in enumerate(csv.reader(fh), start=1):
                    if not row or (line == 1 and row[-1].strip().lower() not in GROUPS):
                        continue  # blank line, or a header row (its presence is unverified)
                    where = f"{f} line {line}"
                    if len(row) < 3 or row[-1].strip().lower() not in GROUPS:
                        raise AnnotatorError(f"{where}: expected 'path,label,...,group' with group train/dev/eval")
                    safe_join(self.root, row[0].strip(), where)
                    table[PurePosixPath(row[0].strip()).stem] = GROUPS[row[-1].strip().lower()]
        return out

    def protocol_names(self) -> list[str]:
        return sorted(self.protocols)

    def _derive_loo(self, categories: dict[str, str]) -> None:
        """LOO_<category> from grandtest where its CSV is missing (REFERENCE.md): train and dev are
        grandtest's minus that category; eval is that category (from any grandtest group) plus
        grandtest's bona fide eval. categories: file stem -> canonical attack type."""
        grand = self.protocols.get("grandtest")
        if grand is None:
            return
        for loo, attack_type in LOO_CATEGORIES.items():
            name = f"LOO_{loo}"
            if name in self.protocols:
                continue
            table = {}
            for stem, code in grand.items():
                t = categories.get(stem)
                if t == attack_type:
                    table[stem] = 2
                elif t == "bonafide" and code == 2 or t is not None and code in (0, 1):
                    table[stem] = code
            self.protocols[name] = table

    def samples(self) -> Iterator[SampleRef]:
        if not self.files:
            raise AnnotatorError(f"wmca: no .hdf5 files under {self.color_root}")
        names = self.protocol_names()
        for path in self.files:
            m = STEM.match(path.stem)
            if not m:
                raise AnnotatorError(f"{path}: expected <client>_<session>_<presenter>_<type>_<pai>.hdf5")
            client, session, presenter, typ, pai = m.groups()
            key = (int(typ), int(pai))
            if key not in PAI_TYPES:
                raise AnnotatorError(f"wmca: {path}: native (type, pai) id ({typ}, {pai}) has no canonical mapping")
            attack_type = PAI_TYPES[key]
            if self.layout == "preprocessed":
                twin = self.depth_root / path.relative_to(self.color_root)
                media = {"kind": "frame-groups", "depth_channel": str(CDIT_DEPTH_CHANNEL)}
                if twin.is_file():
                    media["depth_file"] = str(twin)
            else:
                media = {"kind": "stacks", "color_key": RAW_COLOR_KEY, "depth_key": RAW_DEPTH_KEY}
            protocols = {n: self.protocols[n].get(path.stem, -1) for n in names}
            yield from refs_for_file(
                path, self.root, self.k, is_attack=attack_type != "bonafide", attack_type=attack_type,
                dataset=self.name, subject=client, pai=f"{typ}_{pai}",
                extra={"session": session, "presenter": presenter}, protocols=protocols, media=media)
