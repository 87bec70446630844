"""`--format folder`: plain PNGs, the image and each label channel of every row, with an index.

Layout: <group>/image/<stem>.png (RGB), <group>/attack/<stem>.png, <group>/live/<stem>.png,
<group>/background/<stem>.png (8-bit grey: the label channel as stored), stem = <row>_<sample_id>;
index.csv: stem, group, row, sample_id, video_id, frame_index, is_attack, attack_type, dataset.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from annotator.label import LABEL_CHANNELS
from .base import EXPORTERS, Exporter, Row, safe_name, save


class FolderExporter(Exporter):
    name = "folder"
    about = """Format: plain PNG folders (this tool's own; no other codebase's reader implied).
- <group>/image/<stem>.png: the face crop, RGB, 8 bits per channel.
- <group>/attack/, live/, background/<stem>.png: the three label channels, 8-bit grey, 0-255 exactly
  as in the store: attack = how much of the pixel is an attack instrument, live = pseudo-depth of
  bona fide skin (0 where there is none), background = 255 where attack and live are both 0.
- index.csv: one line per row (stem, group, row, sample_id, video_id, frame_index, is_attack 1 = attack,
  attack_type, dataset)."""

    def stem(self, r: Row) -> str:
        return f"{r.row:06d}_{safe_name(r.sample_id)}"

    def files(self, r: Row) -> list[str]:
        return [f"{r.group}/{part}/{self.stem(r)}.png" for part in ("image", *LABEL_CHANNELS)]

    def write(self, r: Row, image: np.ndarray, label: np.ndarray, landmarks: np.ndarray, out: Path) -> None:
        paths = self.files(r)
        save(out / paths[0], image)
        for c, path in enumerate(paths[1:]):
            save(out / path, label[c])

    def lists(self, rows: list[Row], out: Path) -> list[str]:
        with open(out / "index.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["stem", "group", "row", "sample_id", "video_id", "frame_index", "is_attack", "attack_type",
                        "dataset"])
            for r in sorted(rows, key=lambda r: r.row):
                w.writerow([self.stem(r), r.group, r.row, r.sample_id, r.video_id, r.frame_index, int(r.is_attack),
                            r.attack_type, r.dataset])
        return ["index.csv"]


EXPORTERS.register("folder")(FolderExporter)
