"""Adapter `casia-fasd`: CASIA-FASD train_release/ and test_release/."""

from __future__ import annotations

from typing import Iterator

from annotator.core.samples import SampleRef

from .base import DATASETS, DatasetAdapter, media_kind, refs_for_file
from .naming import require

RELEASES = {"train_release": ("train", 0), "test_release": ("test", 2)}
# 1, 2, HR_1 real; 3, 4, HR_2 warped photo; 5, 6, HR_3 cut photo (eyes cut out: the attacker's own eyes
# show through the holes); 7, 8, HR_4 video replay.
FILE_TYPES = {"1": "bonafide", "2": "bonafide", "HR_1": "bonafide", "3": "print", "4": "print", "HR_2": "print",
              "5": "cut_print", "6": "cut_print", "HR_3": "cut_print", "7": "replay", "8": "replay",
              "HR_4": "replay"}
# Recording quality as bob.db.casia_fasd names it: odd ids normal, even ids low, HR_* high.
QUALITY = {**{str(i): "normal" if i % 2 else "low" for i in range(1, 9)}, **{f"HR_{i}": "high" for i in range(1, 5)}}


@DATASETS.register("casia-fasd")
class CasiaFasdAdapter(DatasetAdapter):
    name = "casia-fasd"
    description = (
        "CASIA-FASD. ROOT/train_release/<1..20>/ and ROOT/test_release/<1..30>/ with <id>.avi: 1, 2, HR_1 "
        "real; 3, 4, HR_2 warped print; 5, 6, HR_3 cut print (cut_print: eyes live); 7, 8, HR_4 replay. "
        "Writes protocols/train_test (the official split); meta quality: 1, 3, 5, 7 normal, 2, 4, 6, 8 low, "
        "HR_* high."
    )

    def setup(self) -> None:
        for rel in RELEASES:
            require(self.root / rel, self.name, "folder")

    def protocol_names(self) -> list[str]:
        return ["train_test"]

    def samples(self) -> Iterator[SampleRef]:
        for rel, (split, code) in RELEASES.items():
            subjects = [p for p in (self.root / rel).iterdir() if p.is_dir()]
            for subj in sorted(subjects, key=lambda p: (len(p.name), p.name)):
                if not subj.name.isdigit():
                    self.findings.bad_name(subj, f"expected numbered subject folders under {rel}/")
                    continue
                for path in sorted(p for p in subj.iterdir() if p.is_file() and media_kind(p) == "video"):
                    attack_type = self.attack_type_of(FILE_TYPES, path.stem, path)
                    if attack_type is None:
                        continue
                    yield from refs_for_file(
                        path, self.root, self.k, is_attack=attack_type != "bonafide", attack_type=attack_type,
                        dataset=self.name, subject=f"{split}_{subj.name}", pai=path.stem, split=split,
                        extra={"quality": QUALITY[path.stem]}, protocols={"train_test": code})
