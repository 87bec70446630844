"""The region taxonomy (docs/labels.md): region ids and names, the face's own regions, and the order
in which overlapping priors are painted."""

from __future__ import annotations

import enum


class Region(enum.IntEnum):
    """Region ids of `region` (the store's `region_names` lists their names in this order)."""

    BACKGROUND = 0
    SKIN = 1
    BROWS = 2
    EYES = 3
    NOSE = 4
    MOUTH = 5
    HAIR = 6
    EARS = 7
    NECK = 8
    OCCLUDER = 9  # glasses, a patch or printed eyes over the eyes
    PAI_SURFACE = 10  # the attack instrument around the face: paper, screen, mask surface


REGION_NAMES = [r.name.lower() for r in Region]
REGION_IDS = {r.name.lower(): int(r) for r in Region}
FACE_REGIONS = (Region.SKIN, Region.BROWS, Region.EYES, Region.NOSE, Region.MOUTH)
KEY_REGIONS = (Region.EYES, Region.NOSE, Region.MOUTH)

# Paint order: later regions win where priors overlap (inner features over skin over outer regions).
PAINT_ORDER = (Region.NECK, Region.EARS, Region.HAIR, Region.SKIN, Region.NOSE, Region.BROWS, Region.EYES,
               Region.MOUTH)

# One colour per region id (RGB), wherever regions are drawn: the QA page, contact sheets, docs figures.
REGION_COLOURS = ((0, 0, 0), (230, 190, 150), (120, 70, 20), (40, 200, 255), (255, 80, 80), (200, 30, 120),
                  (250, 220, 40), (60, 180, 75), (145, 30, 180), (0, 130, 200), (255, 140, 0))
