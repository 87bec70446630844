"""Adapters `siw-m` and `siw-mv2`: the spoof-in-the-wild collections with many attack types.

Both type every video by the SiW-M id prefix of its file name (`Paper_9`, `Mask_Mann_3`,
`Partial_Funnyeye_1`), never by its folder: folder names differ between releases, and SiW-M's
Partial/PaperCut folder holds two types (Partial_Eye, Partial_Mouth). Neither ships subject ids
(the number is an index within a type), so `meta/subject` stays empty.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from annotator.core.errors import AnnotatorError
from annotator.core.samples import SPLIT_CODES, SampleRef

from .base import DATASETS, DatasetAdapter, media_files, refs_for_file
from .naming import no_protocols_note, read_lines

PREFIX_TYPES = {
    "Live": "bonafide", "Makeup_Co": "makeup", "Makeup_Im": "makeup", "Makeup_Ob": "makeup",
    "Mask_Half": "half_mask", "Mask_Mann": "fake_head", "Mask_Paper": "paper_mask",
    "Mask_Silicone": "flexible_mask", "Mask_Trans": "transparent_mask", "Paper": "print",
    "Partial_Eye": "partial_eye", "Partial_Mouth": "partial_mouth", "Partial_Funnyeye": "glasses",
    "Partial_Paperglass": "glasses", "Replay": "replay",
}
SPOOF_PREFIXES = [p for p in PREFIX_TYPES if p != "Live"]
SIWM_ID = re.compile(r"^([A-Za-z]+(?:_[A-Za-z]+)?)_(\d+)")
# SiW-M's 13 leave-one-type-out types: each prefix, except that the paper cut-outs of the eye and of the
# mouth (both in Partial/PaperCut) form one type.
LOO_TYPES = {p: p for p in SPOOF_PREFIXES if p not in ("Partial_Eye", "Partial_Mouth")}
LOO_TYPES.update({"Partial_Eye": "Partial_PaperCut", "Partial_Mouth": "Partial_PaperCut"})
LIVE_SPLITS = {"Train": "train", "Test": "test"}


def live_split(path: Path, live_dir: Path) -> str:
    """train / test for a video under Live/Train or Live/Test, else ""."""
    parts = path.relative_to(live_dir).parts if path.is_relative_to(live_dir) else ()
    return LIVE_SPLITS.get(parts[0], "") if len(parts) > 1 else ""


class _SiwBase(DatasetAdapter):
    def typed_videos(self, base: Path, folder_ids: bool = False) -> Iterator[tuple[Path, str, str]]:
        """(path, SiW-M id prefix, canonical attack type) of every video under base."""
        for path in media_files(base, "video"):
            m = SIWM_ID.match(path.stem) or (SIWM_ID.match(path.parent.name) if folder_ids else None)
            if not m:
                self.findings.bad_name(path, "expected a SiW-M id <Type>_<n> (e.g. Paper_12, Mask_Mann_3) as its name")
                continue
            attack_type = self.attack_type_of(PREFIX_TYPES, m.group(1), path)
            if attack_type is not None:
                yield path, m.group(1), attack_type


@DATASETS.register("siw-m")
class SiwMAdapter(_SiwBase):
    name = "siw-m"
    description = (
        "SiW-M. ROOT/Live/{Train,Test}/ and the spoof folders (Makeup/, Mask/, Paper/, Partial/, Replay/, any "
        "depth); every video is typed by its SiW-M id <Type>_<n> (file name, or its folder's): Live, "
        "Makeup_{Co,Im,Ob}, Mask_{Half,Mann,Paper,Silicone,Trans}, Paper, Partial_{Eye,Mouth,Funnyeye,"
        "Paperglass}, Replay. meta/split train/test for Live/Train and Live/Test. Writes the leave-one-type-out "
        "protocols LOO_<type> (train = Live/Train + the other 12 types, test = Live/Test + that type) for "
        f"the 13 types {', '.join(sorted(set(LOO_TYPES.values())))} (Partial_PaperCut = Partial_Eye + "
        "Partial_Mouth). No subject ids (meta/subject empty)."
    )

    def protocol_names(self) -> list[str]:
        return sorted(f"LOO_{t}" for t in set(LOO_TYPES.values()))

    def samples(self) -> Iterator[SampleRef]:
        found = False
        names = self.protocol_names()
        for path, prefix, attack_type in self.typed_videos(self.root, folder_ids=True):
            found = True
            split = live_split(path, self.root / "Live") if prefix == "Live" else ""
            if prefix == "Live":
                code = SPLIT_CODES.get(split, -1)
                prot = dict.fromkeys(names, code)
            else:
                prot = {n: 2 if n == f"LOO_{LOO_TYPES[prefix]}" else 0 for n in names}
            yield from refs_for_file(path, self.root, self.k, is_attack=attack_type != "bonafide",
                                     attack_type=attack_type, dataset=self.name, pai=prefix, split=split,
                                     protocols=prot)
        if not found:
            raise AnnotatorError(f"{self.name}: no videos under {self.root}; pass the folder holding Live/ and "
                                 "the spoof folders as --root")


# The official lists (SiW-Mv2 code repository, pro_3_text/): one video stem per line, lines may repeat.
LISTS_I = {"trainlist_live.txt": 0, "trainlist_all.txt": 0, "testlist_live.txt": 2, "testlist_all.txt": 2}
LIST_III_TRAIN = "train_A_pretrain.txt"
LISTS_III_TEST = {"A": "test_A_pretrain.txt", "B": "test_B_spoof.txt", "C": "test_C_race.txt",
                  "D": "test_D_age.txt", "E": "test_E_ill*.txt"}


@DATASETS.register("siw-mv2")
class SiwMv2Adapter(_SiwBase):
    name = "siw-mv2"
    reads_protocol_files = True
    description = (
        "SiW-Mv2. ROOT/Live/ (or Live/{Train,Test}/) and ROOT/Spoof/<category>/ videos (.mov, .mp4); category "
        "folder names vary between releases (Print or Paper, Mannequin or Mask_MannequinHead, ...), so every "
        "video is typed by its stem's SiW-M id prefix (Live_12, Paper_9, Mask_Mann_3, Partial_Funnyeye_1). "
        "Protocol lists of the SiW-Mv2 code (pro_3_text/: trainlist_all, testlist_all, trainlist_live, "
        "testlist_live, train_A_pretrain, test_{A_pretrain,B_spoof,C_race,D_age,E_ill}.txt) are read from "
        "ROOT, ROOT/pro_3_text or --protocol-dir DIR. Writes Protocol_I (known types), Protocol_II_<prefix> "
        "for each of the 14 spoof prefixes (trained without it, tested on every video of it), Protocol_III "
        "(train A, test A-E together) and Protocol_III_<A..E> (one test domain each). No subject ids."
    )

    def setup(self) -> None:
        if not (self.root / "Live").is_dir() and not (self.root / "Spoof").is_dir():
            raise AnnotatorError(f"{self.name}: neither Live/ nor Spoof/ under {self.root}; pass the folder "
                                 "holding them as --root")
        base = self.protocol_dir or self.root
        looked = [base, base / "pro_3_text"]
        lists: dict[str, Path] = {}
        for d in looked:
            for f in sorted(d.glob("*.txt")) if d.is_dir() else []:
                lists.setdefault(f.name, f)
        self.unknown_type_protocols: dict[str, str] = {}  # Protocol_II_<prefix> -> prefix
        if all(n in lists for n in LISTS_I):
            entries = {n: self._entries(lists[n]) for n in LISTS_I}
            self._protocol("Protocol_I", [(entries[n], code) for n, code in LISTS_I.items()])
            for prefix in SPOOF_PREFIXES:
                name = f"Protocol_II_{prefix}"
                keep = [([e for e in entries[n] if self._prefix(e) != prefix], code)
                        for n, code in LISTS_I.items() if code == 0 or "live" in n]
                self._protocol(name, keep)
                self.unknown_type_protocols[name] = prefix
        if LIST_III_TRAIN in lists:
            train = self._entries(lists[LIST_III_TRAIN])
            tests = {}
            for domain, pattern in LISTS_III_TEST.items():
                f = next((lists[n] for n in sorted(lists) if Path(n).match(pattern)), None)
                if f is not None:
                    tests[domain] = self._entries(f)
                    self._protocol(f"Protocol_III_{domain}", [(train, 0), (tests[domain], 2)])
            self._protocol("Protocol_III", [(train, 0)] + [(t, 2) for t in tests.values()])
        if not self.protocols:
            self.findings.notes.append(no_protocols_note(self.name, looked))

    def _entries(self, f: Path) -> list[str]:
        out = []
        for i, line in enumerate(read_lines(f, self.name), start=1):
            stem = line.split()[0].replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
            if not SIWM_ID.match(stem):
                self.findings.bad_name(f"{f} line {i}", f"expected a SiW-Mv2 video stem like Paper_9, got {line!r}")
                continue
            out.append(stem)
        return out

    @staticmethod
    def _prefix(stem: str) -> str:
        m = SIWM_ID.match(stem)
        return m.group(1) if m else ""

    def _protocol(self, name: str, parts: list[tuple[list[str], int]]) -> None:
        # A stem in a train and a test list keeps its first (train) code, as the lists are read in that order.
        table = self.protocols.setdefault(name, {})
        both = set()
        for entries, code in parts:
            for e in entries:
                if table.setdefault(e, code) != code:
                    both.add(e)
        self.listed[name] = set(table)
        if both:  # documented (docs/datasets.md): not a conflict to settle, a fact to hear
            self.findings.notes.append(f"{name}: {', '.join(sorted(both))} in both a train and a test list of the "
                                       "official lists; kept in train, as the SiW-Mv2 code reads them")

    def samples(self) -> Iterator[SampleRef]:
        found = False
        for base in (self.root / "Live", self.root / "Spoof"):
            if not base.is_dir():
                continue
            for path, prefix, attack_type in self.typed_videos(base):
                found = True
                prot = self.protocol_codes(path.stem)
                for name, unknown in self.unknown_type_protocols.items():
                    if prefix == unknown:
                        prot[name] = 2
                split = live_split(path, self.root / "Live") if prefix == "Live" else ""
                yield from refs_for_file(path, self.root, self.k, is_attack=attack_type != "bonafide",
                                         attack_type=attack_type, dataset=self.name, pai=prefix, split=split,
                                         protocols=prot)
        if not found:
            raise AnnotatorError(f"{self.name}: no videos under {self.root / 'Live'} or {self.root / 'Spoof'}")
