"""Contact sheets: one row per sample - image, attack, live, background, depth, regions overlaid."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw

from annotator.core.samples import Status
from annotator.face.regions import REGION_COLOURS, REGION_NAMES
from annotator.store import open_store

COLUMNS = ["image", "attack", "live", "background", "depth", "regions"]
PALETTE = np.array(REGION_COLOURS, dtype=np.uint8)
_TILE = 128
_CAPTION = 170
_HEADER = 18


def _gray(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, axis=2)


def overlay_regions(image: np.ndarray, region: np.ndarray, alpha: float = 0.5,
                    outline: np.ndarray | None = None) -> np.ndarray:
    """HWC uint8 image with region ids (HW uint8) blended in PALETTE colours; optional bool outline drawn white."""
    colour = PALETTE[np.minimum(region, len(PALETTE) - 1)].astype(np.float32)
    out = np.where(region[..., None] > 0, (1 - alpha) * image + alpha * colour, image).astype(np.uint8)
    if outline is not None:
        out[outline] = 255
    return out


def pick_rows(n_total: int, n: int) -> list[int]:
    if n_total <= n:
        return list(range(n_total))
    return sorted({int(round(i)) for i in np.linspace(0, n_total - 1, n)})


def sample_tiles(root, i: int) -> list[np.ndarray]:
    """The six HWC uint8 tiles of row i of an open store, in COLUMNS order."""
    image = root["image"][i]
    label = root["label"][i]
    depth = root["depth"][i]
    region = root["region"][i]
    edge = None
    if "mcrea_mask" in root:  # augmented stores: outline the pixels taken from donors
        m = root["mcrea_mask"][i].astype(np.uint8)
        edge = (m - cv2.erode(m, np.ones((3, 3), np.uint8))).astype(bool)
        image = image.copy()
        image[edge] = 255
    return [image, _gray(label[0]), _gray(label[1]), _gray(label[2]), _gray(depth),
            overlay_regions(image, region, outline=edge)]


def contact_sheet(url: str, out: str, n: int = 16) -> int:
    """Write a PNG contact sheet of up to n samples spread over the store. Returns rows drawn."""
    root = open_store(url)
    total = root["image"].shape[0]
    rows = pick_rows(total, n)
    meta = root["meta"]
    sid, atype, status = meta["sample_id"][:], meta["attack_type"][:], meta["status"][:]
    width = _CAPTION + _TILE * len(COLUMNS)
    sheet = Image.new("RGB", (width, _HEADER + _TILE * len(rows) + 14 * 1), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(COLUMNS):
        draw.text((_CAPTION + c * _TILE + 4, 3), name, fill=(0, 0, 0))
    for r, i in enumerate(rows):
        y = _HEADER + r * _TILE
        for c, tile in enumerate(sample_tiles(root, i)):
            sheet.paste(Image.fromarray(tile).resize((_TILE, _TILE), Image.NEAREST), (_CAPTION + c * _TILE, y))
        caption = [str(sid[i])[-26:], str(atype[i]), Status(int(status[i])).name.lower()]
        for k, text in enumerate(caption):
            draw.text((4, y + 4 + 14 * k), text, fill=(0, 0, 0))
    legend = "  ".join(f"{k}:{name}" for k, name in enumerate(REGION_NAMES) if k)
    draw.text((4, _HEADER + _TILE * len(rows) + 1), "regions " + legend, fill=(0, 0, 0))
    sheet.save(out)
    return len(rows)
