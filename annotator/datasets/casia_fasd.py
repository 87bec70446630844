"""Adapter `casia-fasd`: CASIA-FASD train_release/ and test_release/."""

from __future__ import annotations

from typing import Iterator

from ..errors import AnnotatorError
from ..samples import SampleRef
from .base import DATASETS, media_kind, refs_for_file, require_dir
from .naming import canonical, require

RELEASES = {"train_release": ("train", 0), "test_release": ("test", 2)}
# 1, 2, HR_1 real (low, normal, high quality); 3, 4, HR_2 warped print; 5, 6, HR_3 cut print; 7, 8, HR_4 replay
FILE_TYPES = {"1": "bonafide", "2": "bonafide", "HR_1": "bonafide", "3": "print", "4": "print", "HR_2": "print",
              "5": "print", "6": "print", "HR_3": "print", "7": "replay", "8": "replay", "HR_4": "replay"}
QUALITY = {"1": "low", "2": "normal", "HR_1": "high", "3": "low", "4": "normal", "HR_2": "high", "5": "low",
           "6": "normal", "HR_3": "high", "7": "low", "8": "normal", "HR_4": "high"}


@DATASETS.register("casia-fasd")
class CasiaFasdAdapter:
    name = "casia-fasd"
    description = (
        "CASIA-FASD. ROOT/train_release/<1..20>/ and ROOT/test_release/<1..30>/ with <id>.avi: 1, 2, HR_1 "
        "real; 3, 4, HR_2 warped print; 5, 6, HR_3 cut print; 7, 8, HR_4 replay. Writes "
        "protocols/train_test (the official split); meta quality low/normal/high."
    )

    def __init__(self, root: str | None, frames_per_video: int = 10):
        self.root = require_dir(root, self.name)
        self.k = frames_per_video
        for rel in RELEASES:
            require(self.root / rel, self.name, "folder")

    def protocol_names(self) -> list[str]:
        return ["train_test"]

    def samples(self) -> Iterator[SampleRef]:
        for rel, (split, code) in RELEASES.items():
            subjects = [p for p in (self.root / rel).iterdir() if p.is_dir()]
            for subj in sorted(subjects, key=lambda p: (len(p.name), p.name)):
                if not subj.name.isdigit():
                    raise AnnotatorError(f"{subj}: expected numbered subject folders under {rel}/")
                for path in sorted(p for p in subj.iterdir() if p.is_file() and media_kind(p) == "video"):
                    attack_type = canonical(FILE_TYPES, path.stem, self.name, str(path))
                    yield from refs_for_file(
                        path, self.root, self.k, is_attack=attack_type != "bonafide", attack_type=attack_type,
                        dataset=self.name, subject=f"{split}_{subj.name}", pai=path.stem, split=split,
                        extra={"quality": QUALITY[path.stem]}, protocols={"train_test": code})
