"""Adapter `msu-mfsd`: MSU-MFSD with the train/test subject lists."""

from __future__ import annotations

import re
from typing import Iterator

from ..errors import AnnotatorError
from ..samples import SampleRef
from .base import DATASETS, refs_for_file, require_dir
from .naming import canonical, read_lines, require
from .replay_attack import face_file

REAL = re.compile(r"^real_client(\d{3})_(android|laptop)_SD_scene01$")
ATTACK = re.compile(r"^attack_client(\d{3})_(android|laptop)_SD_(\w+?)_scene01$")
PAI_TYPES = {"ipad_video": "replay", "iphone_video": "replay", "printed_photo": "print"}
EXTS = (".mp4", ".mov")


@DATASETS.register("msu-mfsd")
class MsuMfsdAdapter:
    name = "msu-mfsd"
    description = (
        "MSU-MFSD. ROOT/real/real_client<NNN>_<android|laptop>_SD_scene01.<mp4|mov>, ROOT/attack/attack_client"
        "<NNN>_<android|laptop>_SD_<ipad_video|iphone_video|printed_photo>_scene01.<ext>, and ROOT/"
        "train_sub_list.txt, test_sub_list.txt (client ids). <stem>.face (frame x y w h; format unverified) "
        "beside a video or under face-locations/ serves --use-dataset-faces. Writes protocols/train_test (no dev split); "
        "meta camera."
    )

    def __init__(self, root: str | None, frames_per_video: int = 10):
        self.root = require_dir(root, self.name)
        self.k = frames_per_video
        require(self.root / "real", self.name, "folder")
        require(self.root / "attack", self.name, "folder")
        self.split_of: dict[str, str] = {}
        for fname, split in (("train_sub_list.txt", "train"), ("test_sub_list.txt", "test")):
            for line in read_lines(self.root / fname, self.name):
                if not line.isdigit():
                    raise AnnotatorError(f"{self.root / fname}: expected one client id per line, got {line!r}")
                self.split_of[f"{int(line):03d}"] = split

    def protocol_names(self) -> list[str]:
        return ["train_test"]

    def samples(self) -> Iterator[SampleRef]:
        for kind in ("real", "attack"):
            for path in sorted(p for p in (self.root / kind).iterdir() if p.suffix.lower() in EXTS):
                if kind == "real":
                    m = REAL.match(path.stem)
                    if not m:
                        raise AnnotatorError(f"{path}: expected real_client<NNN>_<android|laptop>_SD_scene01.<mp4|mov>")
                    client, camera, pai = m.group(1), m.group(2), "real"
                    attack_type = "bonafide"
                else:
                    m = ATTACK.match(path.stem)
                    if not m:
                        raise AnnotatorError(f"{path}: expected attack_client<NNN>_<camera>_SD_<pai>_scene01.<ext>")
                    client, camera, pai = m.groups()
                    attack_type = canonical(PAI_TYPES, pai, self.name, str(path))
                split = self.split_of.get(client, "")
                yield from refs_for_file(
                    path, self.root, self.k, is_attack=kind == "attack", attack_type=attack_type,
                    dataset=self.name, subject=client, pai=pai, split=split, extra={"camera": camera},
                    protocols={"train_test": {"train": 0, "test": 2}.get(split, -1)},
                    media=face_file(self.root, path))
