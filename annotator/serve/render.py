"""Pictures of store rows for the QA page: thumbnails with an overlay, and full-size layers the page
stacks with opacity sliders. Plain numpy + Pillow. A row is read through a bounded cache of decoded
chunks (one chunk decode serves its neighbours), and encoded thumbnails have their own bounded cache."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict

import numpy as np
from PIL import Image

from annotator.face.regions import REGION_COLOURS, REGION_NAMES

THUMB = 128
OVERLAYS = ("none", "label", "depth", "region")
LAYERS = ("image", "attack", "live", "background", "depth", "region")
COLOURS = {"attack": (230, 40, 40), "live": (40, 200, 60), "background": (60, 90, 230)}


def region_palette(n: int) -> np.ndarray:
    """(n, 3) uint8 colours for region ids: the regions' own (REGION_COLOURS; 0, background, black),
    ids past them grey."""
    pal = np.full((max(n, len(REGION_COLOURS)), 3), 128, np.uint8)
    pal[:len(REGION_COLOURS)] = REGION_COLOURS
    return pal[:max(n, 1)]


def heat(d: np.ndarray) -> np.ndarray:
    """The depth overlay's colour of depths d in 0 .. 1, shape (..., 1): (..., 3) float RGB 0 .. 255,
    far blue through green to near red."""
    return np.concatenate([d, 1 - np.abs(2 * d - 1), 1 - d], axis=-1) * 255


def legend(region_names) -> dict:
    """What the page's legend draws, from the colours the pictures are drawn in (the page keeps no
    copy): the channels' colours, each region's id, name and colour, and the depth ramp far to near."""
    names = list(region_names) or REGION_NAMES
    palette = region_palette(len(names))
    return {"channels": [{"name": name, "colour": list(colour)} for name, colour in COLOURS.items()],
            "regions": [{"id": i, "name": name, "colour": palette[i].tolist()} for i, name in enumerate(names)],
            "depth": np.round(heat(np.linspace(0, 1, 5)[:, None])).astype(int).tolist()}


def overlay(image: np.ndarray, label: np.ndarray | None, depth: np.ndarray | None, region: np.ndarray | None,
            kind: str, palette: np.ndarray) -> np.ndarray:
    """(S, S, 3) uint8: the image with the overlay `kind` blended in (label: attack red, live green;
    depth: a heat ramp; region: one colour per region)."""
    img = image.astype(np.float32)
    if kind == "label":
        a, live = label[0, ..., None] / 255.0, label[1, ..., None] / 255.0
        img = img * (1 - 0.6 * a) + 0.6 * a * np.array(COLOURS["attack"])
        img = img * (1 - 0.6 * live) + 0.6 * live * np.array(COLOURS["live"])
    elif kind == "depth":
        img = np.where(depth[..., None] > 0, 0.4 * img + 0.6 * heat(depth[..., None] / 255.0), img)
    elif kind == "region":
        colour = palette[np.minimum(region, len(palette) - 1)].astype(np.float32)
        img = np.where(region[..., None] > 0, 0.45 * img + 0.55 * colour, img)
    return np.clip(img, 0, 255).astype(np.uint8)


def layer(name: str, arrays: dict[str, np.ndarray], palette: np.ndarray) -> np.ndarray:
    """A full-size layer: image RGB; attack / live / background RGBA in their colour with the
    channel as alpha; depth RGBA grey with alpha where > 0; region RGBA in region colours."""
    if name == "image":
        return arrays["image"]
    if name in COLOURS:
        c = arrays["label"][("attack", "live", "background").index(name)]
        rgb = np.broadcast_to(np.array(COLOURS[name], np.uint8), (*c.shape, 3))
        return np.dstack([rgb, c])
    if name == "depth":
        d = arrays["depth"]
        return np.dstack([d, d, d, np.where(d > 0, 255, 0).astype(np.uint8)])
    r = arrays["region"]
    return np.dstack([palette[np.minimum(r, len(palette) - 1)], np.where(r > 0, 200, 0).astype(np.uint8)])


def png(pixels: np.ndarray, side: int | None = None) -> bytes:
    img = Image.fromarray(np.ascontiguousarray(pixels))
    if side and img.size[0] != side:
        img = img.resize((side, side), Image.BILINEAR if pixels.ndim == 3 else Image.NEAREST)
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=1)
    return out.getvalue()


class Cache:
    """A thread-safe LRU of at most `size` entries."""

    def __init__(self, size: int):
        self.size, self._d, self._lock = size, OrderedDict(), threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def get(self, key, make):
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        value = make()
        with self._lock:
            self._d[key] = value
            while len(self._d) > self.size:
                self._d.popitem(last=False)
        return value


class Renderer:
    """Rows of `root` (an open zarr group) as PNG bytes. chunks: decoded chunks kept per array;
    thumbs: encoded thumbnails kept."""

    def __init__(self, root, chunks: int = 256, thumbs: int = 4096):
        self.root = root
        self.arrays = {name: root[name] for name in ("image", "label", "depth", "region", "landmarks") if name in root}
        self.pyramid = sorted(int(k) for k in root["pyramid"].array_keys() if k.isdigit()) if "pyramid" in root else []
        self.shard = int(root["image"].chunks[0])
        self.palette = region_palette(len(root.attrs.get("region_names", [])) or 16)
        self._chunks, self._thumbs = Cache(chunks), Cache(thumbs)

    def forget(self) -> None:
        """Drop every cached chunk and thumbnail: a shard was reopened, and its rows will change."""
        self._chunks.clear()
        self._thumbs.clear()

    def _chunk(self, name: str, c: int) -> np.ndarray:
        if name not in self.arrays:
            self.arrays[name] = self.root[name]
        arr = self.arrays[name]
        return self._chunks.get((name, c), lambda: arr[c * self.shard:(c + 1) * self.shard])

    def row(self, name: str, i: int) -> np.ndarray:
        return self._chunk(name, i // self.shard)[i % self.shard]

    def thumbnail(self, i: int, kind: str) -> bytes:
        def make():
            image = self.row("image", i)
            need = {"label": "label", "depth": "depth", "region": "region"}.get(kind)
            extra = {n: self.row(n, i) if n == need else None for n in ("label", "depth", "region")}
            return png(overlay(image, extra["label"], extra["depth"], extra["region"], kind, self.palette), THUMB)

        return self._thumbs.get((i, kind), make)

    def layer(self, i: int, name: str) -> bytes:
        if name.startswith("pyramid-"):
            k = int(name.split("-", 1)[1])
            level = self.row(f"pyramid/{k}", i)  # (3, k, k): attack, live, background as RGB
            return png(np.ascontiguousarray(level.transpose(1, 2, 0)), 96)
        source = {"attack": "label", "live": "label", "background": "label"}.get(name, name)
        return png(layer(name, {source: self.row(source, i)}, self.palette))

    def landmarks(self, i: int) -> list[list[float]] | None:
        lm = self.row("landmarks", i)
        return None if not np.isfinite(lm).all() else np.round(lm[:, :2].astype(np.float64), 1).tolist()
