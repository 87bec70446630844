"""Adapter `replay-attack`: Idiap Replay-Attack with grandtest and the per-instrument protocols."""

from __future__ import annotations

import re
from typing import Iterator

from annotator.core.samples import SPLIT_CODES, SampleRef

from .base import DATASETS, DatasetAdapter, refs_for_file
from .naming import require

GROUPS = {"train": "train", "devel": "dev", "test": "test"}
REAL = re.compile(r"^client(\d{3})_session(\d{2})_webcam_authenticate_(\w+?)_(\d)$")
ATTACK = re.compile(r"^attack_(print|mobile|highdef)_client(\d{3})_session(\d{2})_(highdef|mobile)_(photo|video)_(\w+)$")
# bona fide plus: grandtest every attack; print/mobile/highdef one instrument; photo/video one medium;
# digitalphoto the photos shown on a screen (mobile or highdef), as bob.db.replay defines them.
PROTOCOLS = ("grandtest", "print", "mobile", "highdef", "photo", "video", "digitalphoto")


def face_file(root, video, fmt: str = "xywh") -> dict:
    """media entry of the video's `.face` file: face-locations/ mirroring the tree, flat, or beside it."""
    rel = video.relative_to(root).with_suffix(".face")
    for cand in (root / "face-locations" / rel, root / "face-locations" / rel.name, video.with_suffix(".face")):
        if cand.is_file():
            return {"faces": str(cand), "faces_format": fmt}
    return {}


def attack_protocols(instrument: str, medium: str) -> set[str]:
    """The protocols (besides their bona fide rows) that hold an attack of this instrument and medium."""
    out = {"grandtest", instrument, medium}
    if medium == "photo" and instrument in ("mobile", "highdef"):
        out.add("digitalphoto")
    return out


@DATASETS.register("replay-attack")
class ReplayAttackAdapter(DatasetAdapter):
    name = "replay-attack"
    description = (
        "Idiap Replay-Attack. ROOT/<train|devel|test>/real/client<NNN>_session01_webcam_authenticate_"
        "<light>_<take>.mov and ROOT/<group>/attack/<fixed|hand>/attack_<print|mobile|highdef>_client<NNN>_"
        "session01_<highdef|mobile>_<photo|video>_<light>.mov (enroll/ is not read). print -> print; photo or "
        "video on a screen -> replay. face-locations/[<group>/...]/<stem>.face (frame x y w h) serve "
        "--use-dataset-faces. Writes protocols/grandtest, print, mobile, highdef, photo, video, digitalphoto "
        "(photos on mobile and highdef screens); meta light, support."
    )

    def setup(self) -> None:
        for g in GROUPS:
            require(self.root / g, self.name, "group folder")

    def protocol_names(self) -> list[str]:
        return list(PROTOCOLS)

    def samples(self) -> Iterator[SampleRef]:
        for group, split in GROUPS.items():
            code = SPLIT_CODES[split]
            for path in sorted((self.root / group).rglob("*.mov")):
                rel = path.relative_to(self.root / group).parts
                if rel[0] == "real":
                    m = REAL.match(path.stem)
                    if not m:
                        self.findings.bad_name(path, "expected client<NNN>_session01_webcam_authenticate_<light>_<take>.mov")
                        continue
                    client, light = m.group(1), m.group(3)
                    attack_type, pai, extra = "bonafide", "real", {"light": light, "support": ""}
                    prot = {p: code for p in PROTOCOLS}
                elif rel[0] == "attack" and len(rel) == 3 and rel[1] in ("fixed", "hand"):
                    m = ATTACK.match(path.stem)
                    if not m:
                        self.findings.bad_name(path, "expected attack_<print|mobile|highdef>_client<NNN>_session01_"
                                                     "<highdef|mobile>_<photo|video>_<light>.mov")
                        continue
                    instrument, client, _, _, medium, light = m.groups()
                    attack_type = "print" if instrument == "print" else "replay"
                    pai = f"{instrument}_{medium}"
                    extra = {"light": light, "support": rel[1]}
                    member = attack_protocols(instrument, medium)
                    prot = {p: code if p in member else -1 for p in PROTOCOLS}
                else:
                    self.findings.bad_name(path, f"expected it under {group}/real/ or {group}/attack/<fixed|hand>/")
                    continue
                yield from refs_for_file(
                    path, self.root, self.k, is_attack=attack_type != "bonafide", attack_type=attack_type,
                    dataset=self.name, subject=client, pai=pai, split=split, extra=extra, protocols=prot,
                    media=face_file(self.root, path))
