"""`--format ssan`: the layout of SSAN's OULU-NPU loaders (github.com/wangzhuo2019/SSAN,
datasets/Load_OULUNPU_train.py and Load_OULUNPU_valtest.py; datasets/data_merge.py puts them
together for the OCIM protocols).

Their reader: a list CSV without header, `label,video` (1 = bona fide, else attack); for a video
it counts <root>/<video>/*.jpg, picks frame ids (0-based in training, ii * interval + 1 over 8
frames in test, no zero padding), reads <root>/<video>/<video>_<id>_scene.jpg, already a face crop
(it crops the central scale / 1.5 of it, scale drawn from 1.0-1.5, and resizes to 256), and for
bona fide videos the map <root with Train_files -> Depth/Train_files>/<video>/<video>_<id>_depth1D.jpg
(grey, resized to 32x32; attacks get zeros).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import EXPORTERS, Row, SlottedExporter, save, write_text
from .slots import ssan_slots

GROUPS = {"train": "Train_files", "dev": "Dev_files", "test": "Test_files", "all": "All_files"}


class SsanExporter(SlottedExporter):
    name = "ssan"
    slot_map = staticmethod(ssan_slots)
    about = """Format: SSAN's OULU-NPU loaders (github.com/wangzhuo2019/SSAN, datasets/Load_OULUNPU_*.py).
- <G>/<video>/<video>_<k>_scene.jpg: the face crop (RGB JPEG, quality 95); k = 0, 1, ... (frames.csv
  gives each file's source frame). SSAN assumes crops at 1.5 times the face; this store's crops are at
  its box scale (see above): annotate with --box-scale 1.5 to match.
- Depth/<G>/<video>/<video>_<k>_depth1D.jpg: the label's live channel (grey JPEG, quality 100):
  pseudo-depth 0-255 on bona fide skin, 0 elsewhere (SSAN's training reads it for bona fide videos, its
  test for every video).
- <group>_list_video.txt: `1,<video>` for bona fide, `0,<video>` for attack videos (SSAN: 1 = real).
- Frames: a video of 10 or more exported frames has one id per frame: training draws ids 0..n-2, test
  takes ids 1 + i * (n // 10), i < 8. A video of fewer frames (a still image has one) has
  1 + n * ceil(9 / n) ids showing its frames in turn (hard links to the same files): training draws
  every frame equally often, test's ids 1..8 show every frame. SSAN's test loader counts a folder's
  *.jpg by joining glob's paths to the folder again: give it an absolute root_dir, or it counts none.
G = Train_files, Dev_files, Test_files (or All_files): SSAN's root_dir is the folder holding them."""

    def slot_files(self, r: Row, slot: int) -> list[str]:
        g = GROUPS[r.group]
        return [f"{g}/{r.video}/{r.video}_{slot}_scene.jpg", f"Depth/{g}/{r.video}/{r.video}_{slot}_depth1D.jpg"]

    def write_slot(self, paths: list[str], image: np.ndarray, label: np.ndarray, landmarks: np.ndarray,
                   out: Path) -> None:
        scene, depth = paths
        save(out / scene, image, quality=95)
        save(out / depth, label[1], quality=100)

    def lists(self, rows: list[Row], out: Path) -> list[str]:
        written = []
        for group in GROUPS:
            videos = sorted({(r.video, r.is_attack) for r in rows if r.group == group})
            if videos:
                write_text(out / f"{group}_list_video.txt", "".join(f"{0 if a else 1},{v}\n" for v, a in videos))
                written.append(f"{group}_list_video.txt")
        return written


EXPORTERS.register("ssan")(SsanExporter)
