"""The store's rows, declared once (docs/store.md): the arrays (shape after the sample axis, dtype,
dimension names) and the meta columns. store.py creates a store from this, verify.py checks one
against it, annotator/shard/ fills rows of it. Plain numpy: workers import it without zarr."""

from __future__ import annotations

import numpy as np

from annotator.face.landmarks import N_LANDMARKS  # points per face of a store without a `landmark_layout` attribute
from annotator.label import PYRAMID_SIZES

# meta column -> numpy dtype ("str" = Zarr variable-length UTF-8)
META_COLUMNS = {
    "sample_id": "str", "video_id": "str", "frame_index": "int32", "subject": "str", "is_attack": "bool",
    "attack_type": "str", "pai": "str", "dataset": "str", "split": "str", "status": "int8", "error": "str",
    "segmenter": "str", "source": "str", "n_faces": "int16", "face_score": "float32", "depth_source": "str",
    "face_source": "str", "rotation": "int16", "landmark_nme": "float32",
    # the frame as stored (docs/store.md, "Mapping a crop back"): mirrored left-right before `rotation`;
    # its size in pixels, 0 where it was not decoded
    "mirrored": "bool", "frame_height": "int32", "frame_width": "int32",
    # quality signals (annotator/label/quality.py): NaN (or "") where a row has none
    "share_attack": "float32", "share_live": "float32", "share_background": "float32",
    "landmark_confidence": "float32", "prior_agreement": "float32", "prior_worst_region": "str",
    "temporal_consistency": "float32", "segmenter_iou": "float32",
}
QUALITY_COLUMNS = ("share_attack", "share_live", "share_background", "landmark_confidence", "prior_agreement",
                   "prior_worst_region", "temporal_consistency", "segmenter_iou")
OPTIONAL_IN_SCHEMA_1 = ("rotation",)  # added late in schema 1: older stores lack it
# added after stores of schema 2 were written: a store may lack them (verify accepts that)
OPTIONAL_COLUMNS = ("landmark_nme", *QUALITY_COLUMNS, "mirrored", "frame_height", "frame_width")
# Arrays a store may lack (stores written before them, and stores whose writer knows no frame: `annotate
# augment` of such a store, a test's synthetic one); store.create makes them on request and verify
# checks them where present. `transform`: the stored frame's pixels -> the crop's (docs/store.md).
OPTIONAL_ARRAYS = {"transform": ((2, 3), "float64", ("sample", "crop_xy", "frame_xy1"))}


def array_specs(size: int, n_points: int = N_LANDMARKS) -> dict[str, tuple[tuple[int, ...], str, tuple[str, ...]]]:
    """Store path -> (shape after the sample axis, dtype, dimension names) for crops of side `size`
    and landmarks of `n_points` points (the store's landmark layout: 478 FaceMesh, 68 FAN)."""
    specs = {
        "image": ((size, size, 3), "uint8", ("sample", "y", "x", "rgb")),
        "label": ((3, size, size), "uint8", ("sample", "channel", "y", "x")),
        "depth": ((size, size), "uint8", ("sample", "y", "x")),
        "region": ((size, size), "uint8", ("sample", "y", "x")),
        "landmarks": ((n_points, 3), "float32", ("sample", "point", "xyz")),
    }
    for k in PYRAMID_SIZES:
        specs[f"pyramid/{k}"] = ((3, k, k), "uint8", ("sample", "channel", f"y{k}", f"x{k}"))
    return specs


def fill_value(dtype: str):
    """What an unwritten or failed row holds: NaN for floats, "" for text, False for bool, else 0."""
    return np.nan if dtype in ("float32", "float64") else "" if dtype == "str" else False if dtype == "bool" else 0


def empty_rows(n: int, size: int, n_points: int = N_LANDMARKS) -> dict[str, np.ndarray]:
    """n rows of every array, the optional ones included, each at its fill value (what a failed row keeps)."""
    return {name: np.full((n, *shape), fill_value(dtype), dtype)
            for name, (shape, dtype, _) in {**array_specs(size, n_points), **OPTIONAL_ARRAYS}.items()}


def stored_layout(attrs: dict) -> dict:
    """A store's `landmark_layout` root attribute ({"name", "points", ...}); a store from before the
    attribute (or one whose attribute is unreadable, which verify reports) holds FaceMesh's points."""
    lay = attrs.get("landmark_layout")
    if isinstance(lay, dict) and isinstance(lay.get("points"), int) and isinstance(lay.get("name"), str):
        return lay
    return {"name": "mediapipe-478", "points": N_LANDMARKS}


def landmark_points(attrs: dict) -> int:
    """Points per face of a store from its root attributes."""
    return stored_layout(attrs)["points"]


def empty_meta(n: int) -> dict[str, list]:
    """n rows of every meta column, each at its fill value (face_score 0 rather than NaN: a row without
    a face has score 0)."""
    meta = {col: [fill_value(dtype)] * n for col, dtype in META_COLUMNS.items()}
    meta["face_score"] = [0.0] * n
    return meta
