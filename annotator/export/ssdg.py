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

from .base import EXPORTERS, Exporter, Row, safe_name, save, write_text


class SsdgExporter(Exporter):
    name = "ssdg"
    about = """Format: SSDG's label lists (github.com/taylover-pei/SSDG-CVPR2020, data_label/generate_label.py).
- <dataset>_<S>/<group>/<real|fake>/<video>/<n>.png: the face crop (RGB PNG), n = 0, 1, ... the
  video's exported frames in frame order (frames.csv gives the source frame). SSDG's sample_frames
  takes entry 6 + j * floor(n / K) of a video: it needs at least 7 frames per video, so annotate videos
  with enough of them (e.g. --frames-per-video 10 or more).
- data_label/<dataset>/{train,dev,test,all,real,fake}_label.json: JSON arrays of {"photo_path":
  absolute path, "photo_label": 1 bona fide / 0 attack, "photo_belong_to_video_ID": video number};
  the paths are absolute as SSDG's are: moving the folder means exporting again (a rerun only
  rewrites the lists)."""

    def files(self, r: Row) -> list[str]:
        return [f"{safe_name(r.dataset or 'dataset')}_{self.size}/{r.group}/{'fake' if r.is_attack else 'real'}/"
                f"{r.video}/{r.number}.png"]

    def write(self, r: Row, image: np.ndarray, label: np.ndarray, landmarks: np.ndarray, out: Path) -> None:
        save(out / self.files(r)[0], image)

    def lists(self, rows: list[Row], out: Path) -> list[str]:
        written = []
        for dataset in sorted({r.dataset for r in rows}):
            mine = sorted((r for r in rows if r.dataset == dataset), key=lambda r: self.files(r)[0])
            video_number = {}
            entries = []
            for r in mine:
                vid = video_number.setdefault((r.group, r.video), len(video_number))
                entries.append((r, {"photo_path": str((out / self.files(r)[0]).resolve()),
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
