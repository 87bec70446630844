"""The constants that change what a run writes, in one recorded place.

Each run stores `dataclasses.asdict(TUNING)` in its store's config, and a resume compares it like
the command-line settings: a store is never finished by code whose thresholds differ from the code
that started it (unless `annotate run --allow-code-change`, which is recorded). Change a value here,
never in the module that uses it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Tuning:
    # Face following (annotator/face/track.py): the landmarks' extent over the detector's box side; the
    # square FaceMesh searches around the previous face, in box sides; how far inside that square the
    # face found must lie (box sides); the largest size change from one sampled frame to the next.
    track_extent_over_box: float = 1.07
    track_context: float = 3.4
    track_inside: float = 0.1
    track_max_scale: float = 1.35
    # FaceMesh's crop around a detected face, in box sides (annotator/face/landmarks.py).
    mesh_context: float = 1.7
    # Outer region estimates (annotator/face/regions.py), in face widths / heights: hair band outset and
    # lift; ear centre offset and half-axes; neck inset (of the jaw width) and length.
    hair_outset: float = 1.25
    hair_lift: float = 0.12
    hair_cut: float = 0.05
    ear_offset: float = 0.05
    ear_half_width: float = 0.07
    ear_half_height: float = 0.16
    neck_inset: float = 0.1
    neck_length: float = 0.7
    # The ibug-68 layout's derived points (annotator/face/layouts.py), in inter-ocular distances: how far
    # the forehead's top lies above the brow centre (MediaPipe's oval ends there on the sample faces), and
    # the brows' thickness.
    fan_forehead_lift: float = 0.35
    fan_brow_thickness: float = 0.05
    # Segmenters' mask selection (annotator/segment/sam/): interior points per prior-prompted region;
    # the share of its site (face, eyes, mouth) an instrument mask must cover; the largest occluder, as
    # a share of the face oval.
    sam_prior_points: int = 3
    sam_min_cover: float = 0.8
    occluder_max_face_share: float = 0.6
    # Smallest image side accepted, pixels (annotator/shard/pipeline.py).
    min_image_side: int = 32

    def to_dict(self) -> dict:
        return asdict(self)


TUNING = Tuning()
