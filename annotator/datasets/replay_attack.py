"""Adapter `replay-attack`: Idiap Replay-Attack with grandtest and the per-instrument protocols."""

from __future__ import annotations

import re
from typing import Iterator

from ..errors import AnnotatorError
from ..samples import SampleRef
from .base import DATASETS, refs_for_file, require_dir
from .naming import SPLIT_CODE, require

GROUPS = {"train": "train", "devel": "dev", "test": "test"}
REAL = re.compile(r"^client(\d{3})_session(\d{2})_webcam_authenticate_(\w+?)_(\d)$")
ATTACK = re.compile(r"^attack_(print|mobile|highdef)_client(\d{3})_session(\d{2})_(highdef|mobile)_(photo|video)_(\w+)$")
# grandtest: every attack; the others: bona fide plus the attacks of one instrument or medium.
PROTOCOLS = ("grandtest", "print", "mobile", "highdef", "photo", "video")


def face_file(root, video) -> dict:
    """media entry of the video's `.face` file: face-locations/ mirroring the tree, flat, or beside it."""
    rel = video.relative_to(root).with_suffix(".face")
    for cand in (root / "face-locations" / rel, root / "face-locations" / rel.name, video.with_suffix(".face")):
        if cand.is_file():
            return {"faces": str(cand), "faces_format": "xywh"}
    return {}


@DATASETS.register("replay-attack")
class ReplayAttackAdapter:
    name = "replay-attack"
    description = (
        "Idiap Replay-Attack. ROOT/<train|devel|test>/real/client<NNN>_session01_webcam_authenticate_"
        "<light>_<take>.mov and ROOT/<group>/attack/<fixed|hand>/attack_<print|mobile|highdef>_client<NNN>_"
        "session01_<highdef|mobile>_<photo|video>_<light>.mov. print -> print; photo or video on a screen -> "
        "replay. face-locations/[<group>/...]/<stem>.face (frame x y w h) serve --use-dataset-faces. "
        "Writes protocols/grandtest, print, mobile, highdef, photo, video; meta light, support."
    )

    def __init__(self, root: str | None, frames_per_video: int = 10):
        self.root = require_dir(root, self.name)
        self.k = frames_per_video
        for g in GROUPS:
            require(self.root / g, self.name, "group folder")

    def protocol_names(self) -> list[str]:
        return list(PROTOCOLS)

    def samples(self) -> Iterator[SampleRef]:
        for group, split in GROUPS.items():
            code = SPLIT_CODE[split]
            for path in sorted((self.root / group).rglob("*.mov")):
                rel = path.relative_to(self.root / group).parts
                if rel[0] == "real":
                    m = REAL.match(path.stem)
                    if not m:
                        raise AnnotatorError(f"{path}: expected client<NNN>_session01_webcam_authenticate_<light>_<take>.mov")
                    client, light = m.group(1), m.group(3)
                    attack_type, pai, extra = "bonafide", "real", {"light": light, "support": ""}
                    prot = {p: code for p in PROTOCOLS}
                elif rel[0] == "attack" and len(rel) == 3 and rel[1] in ("fixed", "hand"):
                    m = ATTACK.match(path.stem)
                    if not m:
                        raise AnnotatorError(f"{path}: expected attack_<print|mobile|highdef>_client<NNN>_session01_"
                                             "<highdef|mobile>_<photo|video>_<light>.mov")
                    instrument, client, _, _, medium, light = m.groups()
                    attack_type = "print" if instrument == "print" else "replay"
                    pai = f"{instrument}_{medium}"
                    extra = {"light": light, "support": rel[1]}
                    prot = {p: code if p in ("grandtest", instrument, medium) else -1 for p in PROTOCOLS}
                else:
                    raise AnnotatorError(f"{path}: expected it under {group}/real/ or {group}/attack/<fixed|hand>/")
                yield from refs_for_file(
                    path, self.root, self.k, is_attack=attack_type != "bonafide", attack_type=attack_type,
                    dataset=self.name, subject=client, pai=pai, split=split, extra=extra, protocols=prot,
                    media=face_file(self.root, path))
