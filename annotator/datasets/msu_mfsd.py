"""Adapter `msu-mfsd`: MSU-MFSD (scene01/real, scene01/attack) with the train/test subject lists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from annotator.core.errors import AnnotatorError
from annotator.core.samples import SPLIT_CODES, SampleRef

from .base import DATASETS, DatasetAdapter, refs_for_file
from .naming import no_protocols_note, read_lines
from .replay_attack import face_file

REAL = re.compile(r"^real_client(\d{3})_(android|laptop)_SD_scene01$")
ATTACK = re.compile(r"^attack_client(\d{3})_(android|laptop)_SD_(\w+?)_scene01$")
PAI_TYPES = {"ipad_video": "replay", "iphone_video": "replay", "printed_photo": "print"}
EXTS = (".mp4", ".mov")
LISTS = {"train_sub_list.txt": "train", "test_sub_list.txt": "test"}


def media_folder(root: Path) -> Path:
    """The folder holding real/ and attack/: ROOT/scene01, ROOT/<one folder>/scene01 (e.g.
    MSU-MFSD-Publish/), ROOT itself when it is scene01 or holds real/ and attack/."""
    candidates = [root / "scene01"] + sorted(p / "scene01" for p in root.iterdir() if p.is_dir()) + [root]
    for c in candidates:
        if (c / "real").is_dir() and (c / "attack").is_dir():
            return c
    raise AnnotatorError(f"msu-mfsd: no scene01/real/ and scene01/attack/ under {root} (looked in "
                         f"{root / 'scene01'}, {root}/*/scene01 and {root}); pass the top of the download as --root")


@DATASETS.register("msu-mfsd")
class MsuMfsdAdapter(DatasetAdapter):
    name = "msu-mfsd"
    reads_protocol_files = True
    description = (
        "MSU-MFSD. ROOT[/<top folder>]/scene01/real/real_client<NNN>_<android|laptop>_SD_scene01.<mp4|mov> and "
        "scene01/attack/attack_client<NNN>_<android|laptop>_SD_<ipad_video|iphone_video|printed_photo>_scene01."
        "<ext>; train_sub_list.txt and test_sub_list.txt (client ids, LF or CRLF) at ROOT, beside scene01/ or in "
        "--protocol-dir DIR. --root may be the download's top or the folder holding scene01/. <stem>.face "
        "(frame,x1,y1,x2,y2,eye1x,eye1y,eye2x,eye2y) beside a video serves --use-dataset-faces. Writes "
        "protocols/train_test (no dev split); meta camera."
    )

    def setup(self) -> None:
        self.media = media_folder(self.root)
        looked = [self.protocol_dir] if self.protocol_dir else list(dict.fromkeys([self.root, self.media.parent]))
        self.split_of: dict[str, str] = {}
        base = next((d for d in looked if all((d / f).is_file() for f in LISTS)), None)
        if base is None:
            self.findings.notes.append(no_protocols_note(self.name, looked))
            return
        self.protocols["train_test"] = {}
        for fname, split in LISTS.items():
            listed = self.listed.setdefault("train_test", set())
            for i, line in enumerate(read_lines(base / fname, self.name), start=1):
                if not line.isdigit():
                    self.findings.bad_name(f"{base / fname} line {i}", f"expected one client id per line, got {line!r}")
                    continue
                client = f"{int(line):03d}"
                self.split_of.setdefault(client, split)
                self.list_code("train_test", client, SPLIT_CODES[split])
                listed.add(client)

    def _split(self, client: str) -> str:
        """The client's list; "" when --on-conflict drop left it out of train_test (in both lists)."""
        return self.split_of.get(client, "") if self.protocols.get("train_test", {}).get(client) != -1 else ""

    def list_ids(self, ref: SampleRef) -> set[str]:
        return {ref.subject}

    def samples(self) -> Iterator[SampleRef]:
        for kind in ("real", "attack"):
            for path in sorted(p for p in (self.media / kind).iterdir() if p.suffix.lower() in EXTS):
                if kind == "real":
                    m = REAL.match(path.stem)
                    if not m:
                        self.findings.bad_name(path, "expected real_client<NNN>_<android|laptop>_SD_scene01.<mp4|mov>")
                        continue
                    client, camera, pai = m.group(1), m.group(2), "real"
                    attack_type = "bonafide"
                else:
                    m = ATTACK.match(path.stem)
                    if not m:
                        self.findings.bad_name(path, "expected attack_client<NNN>_<camera>_SD_<pai>_scene01.<ext>")
                        continue
                    client, camera, pai = m.groups()
                    attack_type = self.attack_type_of(PAI_TYPES, pai, path)
                    if attack_type is None:
                        continue
                yield from refs_for_file(
                    path, self.root, self.k, is_attack=kind == "attack", attack_type=attack_type,
                    dataset=self.name, subject=client, pai=pai, split=self._split(client),
                    extra={"camera": camera}, protocols=self.protocol_codes(client),
                    media=face_file(self.root, path, "corners"))
