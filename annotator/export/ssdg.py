"""`--format ssdg`: the layout of SSDG's label lists (github.com/taylover-pei/SSDG-CVPR2020,
data_label/generate_label.py writes them; utils/utils.py:sample_frames and utils/dataset.py read them).

Their lists: JSON arrays of {"photo_path": absolute path of a 256x256 face PNG, "photo_label":
1 bona fide / 0 attack}, per dataset train_label.json, test_label.json, all_label.json,
real_label.json, fake_label.json. sample_frames groups entries into videos by the PNG's folder,
orders a video's frames by the integer file name and takes the entries 6 + j * floor(n / K)
(j < K; K = 1 per source video in their training configs, 2 per target video in test), adding
"photo_belong_to_video_ID".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from annotator.core.samples import SPLITS

from .base import EXPORTERS, Row, SlottedExporter, safe_name, save, write_text
from .slots import ssdg_slots


class SsdgExporter(SlottedExporter):
    name = "ssdg"
    slot_map = staticmethod(ssdg_slots)
    about = """Format: SSDG's label lists (github.com/taylover-pei/SSDG-CVPR2020, data_label/generate_label.py).
- <dataset>_<S>/<group>/<real|fake>/<video>/<n>.png: the face crop (RGB PNG), n = 0, 1, ... (frames.csv
  gives each file's source frame).
- Frames: SSDG's sample_frames takes positions 6 + j * floor(n / K), j < K, of a video's n files (K = 1
  per training video, 2 per test video). A video of 14 or more exported frames has one file per frame,
  as SSDG's own data. A video of fewer frames (a still image has one) is stretched over 14 files, file s
  showing frame floor(s * frames / 14) (hard links to the same file): the positions fall on the frames
  at the same relative times as in a 14-frame video, and a video of the two frames `--sampling
  flip-mcio` keeps gives K = 2 exactly those two.
- data_label/<dataset>/{train,dev,test,all,real,fake}_label.json: JSON arrays of {"photo_path":
  absolute path, "photo_label": 1 bona fide / 0 attack, "photo_belong_to_video_ID": video number},
  one entry per file; the paths are absolute as SSDG's are: moving the folder means exporting again
  (a rerun only rewrites the lists)."""

    def slot_files(self, r: Row, slot: int) -> list[str]:
        return [f"{safe_name(r.dataset or 'dataset')}_{self.size}/{r.group}/{'fake' if r.is_attack else 'real'}/"
                f"{r.video}/{slot}.png"]

    def write_slot(self, paths: list[str], image: np.ndarray, label: np.ndarray, landmarks: np.ndarray,
                   out: Path) -> None:
        save(out / paths[0], image)

    def lists(self, rows: list[Row], out: Path) -> list[str]:
        written = []
        for dataset in sorted({r.dataset for r in rows}):
            # one entry per file, a video's entries together (sample_frames groups them by folder)
            mine = sorted(((path, r) for r in rows if r.dataset == dataset for path in self.files(r)),
                          key=lambda e: e[0])
            video_number = {}
            entries = []
            for path, r in mine:
                vid = video_number.setdefault((r.group, r.video), len(video_number))
                entries.append((r, {"photo_path": str((out / path).resolve()),
                                    "photo_label": 0 if r.is_attack else 1, "photo_belong_to_video_ID": vid}))
            folder = f"data_label/{safe_name(dataset or 'dataset')}"
            for name, keep in (*((g, lambda r, g=g: r.group == g) for g in SPLITS),
                               ("all", lambda r: True), ("real", lambda r: not r.is_attack),
                               ("fake", lambda r: r.is_attack)):
                chosen = [e for r, e in entries if keep(r)]
                if chosen:
                    write_text(out / folder / f"{name}_label.json", json.dumps(chosen, indent=4))
                    written.append(f"{folder}/{name}_label.json")
        return written


EXPORTERS.register("ssdg")(SsdgExporter)
