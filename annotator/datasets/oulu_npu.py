"""Adapter `oulu-npu`: OULU-NPU videos with Protocol_1..4 (and the folds of 3 and 4)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from annotator.core.samples import SampleRef

from .base import DATASETS, DatasetAdapter, refs_for_file
from .naming import list_entry, no_protocols_note, read_lines, require

FOLDERS = {"Train_files": "train", "Dev_files": "dev", "Test_files": "test"}
FILE_TYPES = {"1": "bonafide", "2": "print", "3": "print", "4": "replay", "5": "replay"}
STEM = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d)$")
PROTOCOL_FILES = {"Train": 0, "Dev": 1, "Test": 2}
LIST_FILE = re.compile(r"^(Train|Dev|Test)(?:_(\d))?\.txt$")


@DATASETS.register("oulu-npu")
class OuluNpuAdapter(DatasetAdapter):
    name = "oulu-npu"
    reads_protocol_files = True
    description = (
        "OULU-NPU. ROOT/Train_files, Dev_files, Test_files with <Phone>_<Session>_<User>_<File>.avi "
        "(File 1 real, 2-3 print, 4-5 replay), and ROOT/Protocols/Protocol_N/{Train,Dev,Test}[_k].txt "
        "(or --protocol-dir DIR holding Protocol_N/) with lines 'label,video' (LF or CRLF). Eye positions "
        "<stem>.txt beside a video serve --use-dataset-faces. Writes protocols/Protocol_1, Protocol_2, "
        "Protocol_3_1..6, Protocol_4_1..6 (those present); meta phone, session."
    )

    def setup(self) -> None:
        for folder in FOLDERS:
            require(self.root / folder, self.name, "folder")
        base = self.protocol_dir or self.root
        looked = [base / "Protocols", base]
        pdirs = [p for b in looked if b.is_dir() for p in sorted(b.iterdir())
                 if p.is_dir() and p.name.startswith("Protocol_")]
        for pdir in pdirs:
            for f in sorted(pdir.glob("*.txt")):
                m = LIST_FILE.match(f.name)
                if m:
                    self._read_list(f, pdir.name + (f"_{m.group(2)}" if m.group(2) else ""), PROTOCOL_FILES[m.group(1)])
        if not self.protocols:
            self.findings.notes.append(no_protocols_note(self.name, looked))

    def _read_list(self, f: Path, name: str, code: int) -> None:
        self.protocols.setdefault(name, {})
        listed = self.listed.setdefault(name, set())
        for i, line in enumerate(read_lines(f, self.name), start=1):
            parts = line.split(",")
            if len(parts) != 2:
                self.findings.bad_name(f"{f} line {i}", f"expected 'label,video', got {line!r}")
                continue
            stem = Path(list_entry(self.root, parts[1].strip(), f"{f} line {i}")).stem
            self.list_code(name, stem, code)
            listed.add(stem)

    def samples(self) -> Iterator[SampleRef]:
        for folder, split in FOLDERS.items():
            for path in sorted((self.root / folder).glob("*.avi")):
                m = STEM.match(path.stem)
                if not m:
                    self.findings.bad_name(path, "expected a name <Phone>_<Session>_<User>_<File>.avi like 1_1_01_1.avi")
                    continue
                phone, session, user, file_id = m.groups()
                attack_type = self.attack_type_of(FILE_TYPES, file_id, path)
                if attack_type is None:
                    continue
                eyes = path.with_suffix(".txt")
                media = {"faces": str(eyes), "faces_format": "eyes"} if eyes.is_file() else {}
                yield from refs_for_file(
                    path, self.root, self.k, is_attack=attack_type != "bonafide", attack_type=attack_type,
                    dataset=self.name, subject=user, pai=file_id, split=split,
                    extra={"phone": phone, "session": session}, protocols=self.protocol_codes(path.stem),
                    media=media)
