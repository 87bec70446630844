"""Adapter `oulu-npu`: OULU-NPU videos with Protocol_1..4 (and the folds of 3 and 4)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from ..errors import AnnotatorError
from ..samples import SampleRef
from .base import DATASETS, refs_for_file, require_dir
from .naming import canonical, list_entry, read_lines, require

FOLDERS = {"Train_files": "train", "Dev_files": "dev", "Test_files": "test"}
FILE_TYPES = {"1": "bonafide", "2": "print", "3": "print", "4": "replay", "5": "replay"}
STEM = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d)$")
PROTOCOL_FILES = {"Train": 0, "Dev": 1, "Test": 2}


@DATASETS.register("oulu-npu")
class OuluNpuAdapter:
    name = "oulu-npu"
    description = (
        "OULU-NPU. ROOT/Train_files, Dev_files, Test_files with <Phone>_<Session>_<User>_<File>.avi "
        "(File 1 real, 2-3 print, 4-5 replay), and ROOT/Protocols/Protocol_N/{Train,Dev,Test}[_k].txt "
        "with lines 'label,video'. Eye positions <stem>.txt beside a video serve --use-dataset-faces. Writes protocols/Protocol_1, Protocol_2, Protocol_3_1..6, "
        "Protocol_4_1..6; meta phone, session."
    )

    def __init__(self, root: str | None, frames_per_video: int = 10):
        self.root = require_dir(root, self.name)
        self.k = frames_per_video
        for folder in FOLDERS:
            require(self.root / folder, self.name, "folder")
        self.protocols = self._read_protocols()

    def _read_protocols(self) -> dict[str, dict[str, int]]:
        base = require(self.root / "Protocols", self.name, "protocol folder")
        out: dict[str, dict[str, int]] = {}
        for pdir in sorted(p for p in base.iterdir() if p.is_dir() and p.name.startswith("Protocol_")):
            for f in sorted(pdir.glob("*.txt")):
                m = re.match(r"^(Train|Dev|Test)(?:_(\d))?\.txt$", f.name)
                if not m:
                    continue
                name = pdir.name + (f"_{m.group(2)}" if m.group(2) else "")
                table = out.setdefault(name, {})
                for i, line in enumerate(read_lines(f, self.name), start=1):
                    parts = line.split(",")
                    if len(parts) != 2:
                        raise AnnotatorError(f"{f} line {i}: expected 'label,video', got {line!r}")
                    stem = list_entry(self.root, parts[1].strip(), f"{f} line {i}")
                    table[Path(stem).stem] = PROTOCOL_FILES[m.group(1)]
        if not out:
            raise AnnotatorError(f"{self.name}: no Protocol_N/Train.txt lists under {base}")
        return out

    def protocol_names(self) -> list[str]:
        return sorted(self.protocols)

    def samples(self) -> Iterator[SampleRef]:
        names = self.protocol_names()
        for folder, split in FOLDERS.items():
            for path in sorted((self.root / folder).glob("*.avi")):
                m = STEM.match(path.stem)
                if not m:
                    raise AnnotatorError(f"{path}: expected a name <Phone>_<Session>_<User>_<File>.avi like 1_1_01_1.avi")
                phone, session, user, file_id = m.groups()
                attack_type = canonical(FILE_TYPES, file_id, self.name, str(path))
                protocols = {n: self.protocols[n].get(path.stem, -1) for n in names}
                eyes = path.with_suffix(".txt")
                media = {"faces": str(eyes), "faces_format": "eyes"} if eyes.is_file() else {}
                yield from refs_for_file(
                    path, self.root, self.k, is_attack=attack_type != "bonafide", attack_type=attack_type,
                    dataset=self.name, subject=user, pai=file_id, split=split,
                    extra={"phone": phone, "session": session}, protocols=protocols, media=media)
