"""Adapters `siw-m` and `siw-mv2`: the spoof-in-the-wild collections with many attack types."""

from __future__ import annotations

import re
from typing import Iterator

from ..errors import AnnotatorError
from ..samples import SampleRef
from .base import DATASETS, media_kind, refs_for_file, require_dir
from .naming import SPLIT_CODE, canonical, list_entry, read_lines, require


def read_split_lists(root, dataset: str) -> dict[str, dict[str, int]]:
    """ROOT/Protocols/<name>/{train,dev,test}.txt -> {name: {path or stem: 0/1/2}} (none: {})."""
    base = root / "Protocols"
    out: dict[str, dict[str, int]] = {}
    if not base.is_dir():
        return out
    for pdir in sorted(p for p in base.iterdir() if p.is_dir()):
        for split, code in SPLIT_CODE.items():
            f = pdir / f"{split}.txt"
            if not f.is_file():
                continue
            table = out.setdefault(pdir.name, {})
            for i, line in enumerate(read_lines(f, dataset), start=1):
                entry = list_entry(root, re.split(r"[,\s]+", line)[0], f"{f} line {i}")
                table[entry] = code
                table.setdefault(entry.rsplit("/", 1)[-1].rsplit(".", 1)[0], code)
    return out

SIWM_TYPES = {
    "Live": "bonafide", "Makeup_Co": "makeup", "Makeup_Im": "makeup", "Makeup_Ob": "makeup",
    "Mask_Half": "half_mask", "Mask_Mann": "fake_head", "Mask_Paper": "paper_mask",
    "Mask_Silicone": "flexible_mask", "Mask_Trans": "transparent_mask", "Paper": "print",
    "Partial_Eye": "partial_eye", "Partial_Mouth": "partial_mouth", "Partial_Funnyeye": "glasses",
    "Partial_Paperglass": "glasses", "Replay": "replay",
}
SIWMV2_TYPES = {
    "Makeup_Cosmetic": "makeup", "Makeup_Impersonation": "makeup", "Makeup_Obfuscation": "makeup",
    "Mannequin": "fake_head", "Silicone": "flexible_mask", "Print": "print", "Replay": "replay",
    "Partial_FunnyeyeGlasses": "glasses", "Partial_PaperGlasses": "glasses", "Partial_Eye": "partial_eye",
    "Partial_Mouth": "partial_mouth", "Mask_HalfMask": "half_mask", "Mask_PaperMask": "paper_mask",
    "Mask_TransparentMask": "transparent_mask",
}
SIWM_ID = re.compile(r"^([A-Za-z]+(?:_[A-Za-z]+)?)_(\d+)")


@DATASETS.register("siw-m")
class SiwMAdapter:
    name = "siw-m"
    description = (
        "SiW-M. Videos anywhere under ROOT whose file name (or parent folder) starts with a SiW-M id "
        "<Type>_<n>: Live, Makeup_{Co,Im,Ob}, Mask_{Half,Mann,Paper,Silicone,Trans}, Paper, Partial_{Eye,"
        "Mouth,Funnyeye,Paperglass}, Replay. No protocols are written (leave-one-type-out is chosen at "
        "training time from meta/pai)."
    )

    def __init__(self, root: str | None, frames_per_video: int = 10):
        self.root = require_dir(root, self.name)
        self.k = frames_per_video

    def protocol_names(self) -> list[str]:
        return []

    def samples(self) -> Iterator[SampleRef]:
        found = False
        for path in sorted(p for p in self.root.rglob("*") if p.is_file() and media_kind(p) == "video"):
            m = SIWM_ID.match(path.stem) or SIWM_ID.match(path.parent.name)
            if not m:
                raise AnnotatorError(f"{path}: expected a SiW-M id <Type>_<n> (e.g. Paper_12) in its name or folder")
            native, number = m.groups()
            attack_type = canonical(SIWM_TYPES, native, self.name, str(path))
            found = True
            yield from refs_for_file(path, self.root, self.k, is_attack=attack_type != "bonafide",
                                     attack_type=attack_type, dataset=self.name, subject=number, pai=native)
        if not found:
            raise AnnotatorError(f"{self.name}: no videos under {self.root}")


@DATASETS.register("siw-mv2")
class SiwMv2Adapter:
    name = "siw-mv2"
    description = (
        "SiW-Mv2. ROOT/Live/** and ROOT/Spoof/<category>/** videos, category one of Makeup_Cosmetic, "
        "Makeup_Impersonation, Makeup_Obfuscation, Mannequin, Silicone, Print, Replay, Partial_FunnyeyeGlasses, "
        "Partial_PaperGlasses, Partial_Eye, Partial_Mouth, Mask_HalfMask, Mask_PaperMask, Mask_TransparentMask. "
        "Protocol lists, when present: ROOT/Protocols/<name>/{train,dev,test}.txt, one video per line (path "
        "relative to ROOT, or its stem; first comma/space-separated field) -> protocols/<name>."
    )

    def __init__(self, root: str | None, frames_per_video: int = 10):
        self.root = require_dir(root, self.name)
        self.k = frames_per_video
        require(self.root / "Live", self.name, "folder")
        require(self.root / "Spoof", self.name, "folder")

        self.protocols = read_split_lists(self.root, self.name)

    def protocol_names(self) -> list[str]:
        return sorted(self.protocols)

    def samples(self) -> Iterator[SampleRef]:
        names = self.protocol_names()
        groups = [("Live", "bonafide", self.root / "Live")]
        for cat in sorted(p for p in (self.root / "Spoof").iterdir() if p.is_dir()):
            groups.append((cat.name, canonical(SIWMV2_TYPES, cat.name, self.name, str(cat)), cat))
        for native, attack_type, base in groups:
            for path in sorted(p for p in base.rglob("*") if p.is_file() and media_kind(p) == "video"):
                rel = path.relative_to(self.root).as_posix()
                prot = {n: self.protocols[n].get(rel, self.protocols[n].get(path.stem, -1)) for n in names}
                yield from refs_for_file(path, self.root, self.k, is_attack=attack_type != "bonafide",
                                         attack_type=attack_type, dataset=self.name, subject=path.stem.split("_")[0],
                                         pai=native, protocols=prot)
