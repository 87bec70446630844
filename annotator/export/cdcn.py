"""`--format cdcn`: the layout of CDCN's OULU-NPU loaders (github.com/ZitongYu/CDCN,
CVPR2020_paper_codes/Load_OULUNPU_train.py and Load_OULUNPU_valtest.py), which DC-CDN and many
depth-supervised FAS codebases reuse.

Their reader: a list CSV without header, `label,video` (label 1 = bona fide, anything else an
attack: OULU's own lists write +1 / -1); for a video it counts the files of
<map_dir>/<video>/ (training: an id drawn from 1..count-2) or of <image_dir>/<video>/ divided by 3
(val/test: ids 1 + i * (count // 10), i < 8), picks frame ids (1-based, `_%03d`), reads <image_dir>/<video>/<video>_<id>_scene.jpg
and its box file <video>_<id>_scene.dat (four lines: x, y, w, h of the face in pixels; their code
names them y1, x1, w, h and uses the first as the column), crops the box times a face scale (1.2-1.5
in training, 1.3 in test) and resizes to 256; the map <map_dir>/<video>/<video>_<id>_depth1D.jpg
(grey) is cropped the same way and resized to 32x32, and set to 0 for attacks by the loader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import EXPORTERS, Row, SlottedExporter, face_box, save, write_text
from .slots import cdcn_slots

GROUPS = {"train": "Train", "dev": "Dev", "test": "Test", "all": "All"}


class CdcnExporter(SlottedExporter):
    name = "cdcn"
    slot_map = staticmethod(cdcn_slots)
    about = """Format: CDCN's OULU-NPU loaders (github.com/ZitongYu/CDCN, CVPR2020_paper_codes/Load_OULUNPU_*.py).
- <G>_images/<video>/<video>_<NNN>_scene.jpg: the face crop (RGB JPEG, quality 95) as the "scene";
  NNN = 001, 002, ... (frames.csv gives each file's source frame).
- <G>_images/<video>/<video>_<NNN>_scene.dat: four lines x, y, w, h: the square around the face's
  landmarks in that image (CDCN crops it times its face scale, 1.2-1.5, clipped to the image).
- <G>_images/<video>/<video>_<NNN>_map.png: the three-channel label (attack, live, background as
  R, G, B). CDCN's test loader counts this folder's files divided by 3 as the video's frames: this
  third file per frame makes the count right (its loaders do not read it).
- <G>_depth/<video>/<video>_<NNN>_depth1D.jpg: the label's live channel (grey JPEG, quality 100):
  pseudo-depth 0-255 on bona fide skin, 0 on attack pixels, background and non-skin. CDCN's loader
  zeroes the map of attack videos anyway; a partial attack's bona fide pixels keep their depth here.
- Protocol/<G>.txt: `+1,<video>` for bona fide, `-1,<video>` for attack videos (CDCN: 1 = real).
- Frames: a video of 10 or more exported frames has one id per frame, as CDCN's own data: training
  draws ids 1..n-2, test takes ids 1 + i * (n // 10), i < 8. A video of fewer frames (a still image
  has one) has 2 + n * ceil(8 / n) ids showing its frames in turn (hard links to the same files), so
  that training draws every frame equally often and test's 8 ids show every frame.
G = Train, Dev, Test (or All). Point CDCN's train_image_dir / map_dir / train_list at them."""

    def slot_files(self, r: Row, slot: int) -> list[str]:
        g, stem = GROUPS[r.group], f"{r.video}/{r.video}_{slot + 1:03d}"
        return [f"{g}_images/{stem}_scene.jpg", f"{g}_images/{stem}_scene.dat", f"{g}_images/{stem}_map.png",
                f"{g}_depth/{stem}_depth1D.jpg"]

    def write_slot(self, paths: list[str], image: np.ndarray, label: np.ndarray, landmarks: np.ndarray,
                   out: Path) -> None:
        scene, box, labels, depth = paths
        save(out / scene, image, quality=95)
        write_text(out / box, "".join(f"{v:.1f}\n" for v in face_box(landmarks, image.shape[0])))
        save(out / labels, np.moveaxis(label, 0, -1))
        save(out / depth, label[1], quality=100)

    def lists(self, rows: list[Row], out: Path) -> list[str]:
        written = []
        for group, g in GROUPS.items():
            videos = sorted({(r.video, r.is_attack) for r in rows if r.group == group})
            if videos:
                write_text(out / "Protocol" / f"{g}.txt", "".join(f"{'-1' if a else '+1'},{v}\n" for v, a in videos))
                written.append(f"Protocol/{g}.txt")
        return written


EXPORTERS.register("cdcn")(CdcnExporter)
