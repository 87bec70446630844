"""Landmark layouts: what the points of a store's `landmarks` are, and the indices the face geometry
(regions, depth mesh, SAM prompts, MCREA exchanges) reads them by (docs/labels.md "Landmark layouts").

mediapipe-478  FaceMesh's 468 mesh vertices and 10 iris points (annotator/face/regions.py's polygons).
ibug-68        FAN's 68 points in the iBUG 300-W order (annotator/face/points68.py). They leave the
               forehead, the brows' lower edges and the insides of cheeks and eyes without points, so
               `points()` appends derived ones, all computed from the 68 (x, y and z alike):
               68-76  forehead arc: the half ellipse through jaw ends 16 and 0 whose top (72) lies
                      `fan_forehead_lift` inter-ocular distances (IOD, outer eye corners) above the brow
                      centre, along the brow-centre-from-chin axis; its z runs from the jaw ends' to the
                      brows' mean z over the same ellipse;
               77, 78 eye centres (right, left: means of the eye contours 36-41, 42-47);
               79-88  the brows' lower lines: brow points 17-26 moved `fan_brow_thickness` IOD down;
               89-98  the brows' centre lines (halfway), where SAM's brow prompts go;
               99, 100 cheeks (the midpoints of jaw point 1 and nostril 31, of 15 and 35);
               101    mid-forehead (halfway between the brow centre and 72);
               102    below the lips (halfway between 57 and the chin 8).
               The depth mesh is a Delaunay triangulation of all 103 points on MediaPipe's canonical
               face (triangles whose centre falls outside the jaw-and-forehead outline dropped).

A store records its layout in its root attributes (`landmark_layout`); inside this package the point
count of an array picks the layout (layout_of), the two counts being distinct.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from annotator.core.tuning import TUNING
from . import points478 as R
from .regions import Region

# MediaPipe's canonical face (mediapipe/modules/face_geometry/data/canonical_face_model.obj, Apache-2.0:
# x right, y up, z towards the viewer, centimetres) at the 68 iBUG points (points68.MESH_68).
CANONICAL_68 = np.array([
    (-7.556, 4.107, -0.992), (-7.664, 0.673, -2.436), (-7.542, -1.049, -2.431), (-6.720, -4.789, -1.745),
    (-5.941, -6.224, -0.631), (-5.085, -7.179, 0.715), (-3.211, -8.533, 2.802), (-1.293, -9.296, 4.094),
    (0.000, -9.403, 4.264), (1.293, -9.296, 4.094), (3.211, -8.533, 2.802), (5.085, -7.179, 0.715),
    (5.941, -6.224, -0.631), (6.720, -4.789, -1.745), (7.542, -1.049, -2.431), (7.664, 0.673, -2.436),
    (7.556, 4.107, -0.992), (-6.374, 4.786, 1.592), (-4.986, 4.802, 3.752), (-3.987, 5.109, 4.466),
    (-2.760, 5.101, 5.016), (-1.396, 5.012, 5.316), (1.396, 5.012, 5.316), (2.760, 5.101, 5.016),
    (3.987, 5.109, 4.466), (4.986, 4.802, 3.752), (6.374, 4.786, 1.592), (0.000, 3.271, 5.236),
    (0.000, 1.728, 6.317), (0.000, 0.366, 7.243), (0.000, -0.463, 7.587), (-1.044, -1.465, 5.662),
    (-0.597, -2.014, 5.866), (0.000, -2.089, 6.058), (0.597, -2.014, 5.866), (1.044, -1.465, 5.662),
    (-4.446, 2.664, 3.173), (-3.670, 2.928, 3.724), (-2.724, 2.962, 3.872), (-1.856, 2.585, 3.758),
    (-2.724, 2.316, 3.777), (-3.670, 2.360, 3.635), (1.856, 2.585, 3.758), (2.724, 2.962, 3.872),
    (3.670, 2.928, 3.724), (4.446, 2.664, 3.173), (3.670, 2.360, 3.635), (2.724, 2.316, 3.777),
    (-2.456, -4.343, 4.284), (-1.432, -3.501, 5.496), (-0.711, -3.329, 5.877), (0.000, -3.406, 5.980),
    (0.711, -3.329, 5.877), (1.432, -3.501, 5.496), (2.456, -4.343, 4.284), (1.325, -5.107, 5.205),
    (0.700, -5.292, 5.448), (0.000, -5.365, 5.535), (-0.700, -5.292, 5.448), (-1.325, -5.107, 5.205),
    (-2.153, -4.276, 4.038), (-0.533, -3.993, 5.138), (0.000, -3.994, 5.219), (0.533, -3.993, 5.138),
    (2.153, -4.276, 4.038), (0.583, -4.518, 5.340), (0.000, -4.542, 5.405), (-0.583, -4.518, 5.340),
])

Prompts = dict  # region id -> (positive point indices or "prior", negative point indices)


@dataclass(frozen=True)
class Layout:
    """One landmark layout. Every index refers to `points(lm)`: the stored points, then (ibug-68)
    the derived ones; exchange indices refer to stored points only (MCREA moves those)."""

    name: str
    n_points: int  # stored points per face
    description: str
    oval: tuple[int, ...]
    brows: tuple[tuple[int, ...], tuple[int, ...]]
    eyes: tuple[tuple[int, ...], tuple[int, ...]]
    nose: tuple[int, ...]  # its convex hull is the nose
    lips_outer: tuple[int, ...]
    forehead_top: int
    chin: int
    left_edge: int  # image-left side of the face at eye height (the subject's right)
    right_edge: int
    jaw_left: int
    jaw_right: int
    nose_tip: int
    eye_centers: tuple[int, int]
    region_prompts: Prompts
    instrument_prompts: dict[str, tuple[Region, tuple[int, ...], tuple[int, ...]]]
    exchange: dict[str, tuple[Region, tuple[int, ...]]]
    _points: Callable[[np.ndarray], np.ndarray] = field(repr=False, default=None)
    _mesh: Callable[[], tuple[int, np.ndarray]] = field(repr=False, default=None)

    def points(self, lm: np.ndarray) -> np.ndarray:
        """(K, C) working points from (n_points, C) stored ones (the same array for mediapipe-478)."""
        lm = np.asarray(lm)
        if lm.shape[0] != self.n_points:
            raise ValueError(f"{self.name} landmarks have {self.n_points} points, got {lm.shape[0]}")
        return lm if self._points is None else self._points(lm)

    def mesh(self, lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(vertices (V, 3) float, triangles (T, 3) int32) of the depth mesh of one face."""
        n_vertices, tri = self._mesh()
        return self.points(lm)[:n_vertices], tri

    def attrs(self) -> dict:
        """What a store records of its layout (root attribute `landmark_layout`)."""
        return {"name": self.name, "points": self.n_points, "description": self.description}


def _mediapipe_mesh() -> tuple[int, np.ndarray]:
    return 468, R.triangles()  # the 10 iris points are not mesh vertices


MEDIAPIPE_478 = Layout(
    name="mediapipe-478", n_points=478,
    description="MediaPipe FaceMesh with irises: 468 mesh vertices then 10 iris points (centres 468, 473); "
                "x, y crop pixels, z in pixel units, larger = nearer",
    oval=tuple(R.FACE_OVAL), brows=(tuple(R.LEFT_BROW), tuple(R.RIGHT_BROW)), eyes=(tuple(R.LEFT_EYE), tuple(R.RIGHT_EYE)),
    nose=tuple(R.NOSE_POINTS), lips_outer=tuple(R.LIPS_OUTER), forehead_top=R.FOREHEAD_TOP, chin=R.CHIN,
    left_edge=R.FACE_LEFT_EDGE, right_edge=R.FACE_RIGHT_EDGE, jaw_left=R.JAW_LEFT, jaw_right=R.JAW_RIGHT,
    nose_tip=R.NOSE_TIP, eye_centers=R.EYE_CENTERS,
    region_prompts={
        Region.SKIN: ((50, 280, 151, 199), (468, 473, 13)),  # cheeks, forehead, chin | irises, inner lip
        Region.BROWS: ((105, 334, 66, 296), (468, 473, 151)),  # brows | irises, forehead
        Region.EYES: ((468, 473, 159, 386), (105, 334, 50, 280)),  # eyes | brows, cheeks
        Region.NOSE: ((1, 4, 195, 5), (50, 280, 13)),  # nose | cheeks, mouth
        Region.MOUTH: ((13, 14, 0, 17), (1, 152, 50)),  # mouth | nose tip, chin, cheek
        Region.HAIR: ("prior", (151, 9, 1)),  # hair | forehead, nose
        Region.EARS: ("prior", (50, 280, 1)),  # ears | cheeks, nose
        Region.NECK: ("prior", (152, 1, 13)),  # neck | chin, nose, mouth
    },
    instrument_prompts={
        "pai_surface": (Region.PAI_SURFACE, (151, 1, 152, 234, 454), ()),
        "occluder": (Region.OCCLUDER, (468, 473, 168), (1, 152)),
        "mouth_occluder": (Region.OCCLUDER, (13, 14, 0, 17), (468, 473, 168)),
        "lower_occluder": (Region.OCCLUDER, (13, 14, 152, 4), (468, 473, 151)),
    },
    exchange={
        "eyes": (Region.EYES, tuple(R.LEFT_EYE + R.RIGHT_EYE) + R.EYE_CENTERS),
        "brows": (Region.BROWS, tuple(R.LEFT_BROW + R.RIGHT_BROW)),
        "nose": (Region.NOSE, tuple(R.NOSE_POINTS)),
        "mouth": (Region.MOUTH, tuple(R.LIPS_OUTER)),
        "skin": (Region.SKIN, tuple(R.FACE_OVAL)),
    },
    _mesh=_mediapipe_mesh,
)

# ibug-68's derived points (module doc): where each group starts in points().
ARC, N_ARC = 68, 9
EYE_C = 77
BROW_LOW = 79
BROW_MID = 89
CHEEKS = 99
FOREHEAD = 101
BELOW_LIPS = 102
N_IBUG_POINTS = 103
_RIGHT_BROW, _LEFT_BROW = tuple(range(17, 22)), tuple(range(22, 27))


def ibug_points(lm: np.ndarray) -> np.ndarray:
    """(103, C) ibug-68 working points from (68, C) stored ones (C = 2 or 3; module doc)."""
    p = np.asarray(lm, dtype=np.float64)
    iod = float(np.linalg.norm(p[45, :2] - p[36, :2])) or 1.0
    brow_c = p[17:27].mean(axis=0)
    axis = brow_c[:2] - p[8, :2]
    up = axis / (float(np.linalg.norm(axis)) or 1.0)
    up_c = np.zeros(p.shape[1])
    up_c[:2] = up
    top = brow_c + TUNING.fan_forehead_lift * iod * up_c  # z: the brows' mean
    centre = (p[0] + p[16]) / 2
    theta = np.pi * np.arange(1, N_ARC + 1) / (N_ARC + 1)
    arc = centre + np.cos(theta)[:, None] * (p[16] - centre) + np.sin(theta)[:, None] * (top - centre)
    eyes = np.stack([p[36:42].mean(axis=0), p[42:48].mean(axis=0)])
    low = p[17:27] - TUNING.fan_brow_thickness * iod * up_c
    mid = (p[17:27] + low) / 2
    cheeks = np.stack([(p[1] + p[31]) / 2, (p[15] + p[35]) / 2])
    forehead = (brow_c + top) / 2
    below = (p[57] + p[8]) / 2
    return np.concatenate([p, arc, eyes, low, mid, cheeks, forehead[None], below[None]]).astype(np.asarray(lm).dtype)


def canonical_ibug() -> np.ndarray:
    """(68, 3) the canonical face's 68 points in crop conventions: x right, y down, z nearer = larger."""
    return CANONICAL_68 * np.array([1.0, -1.0, 1.0])


@functools.lru_cache(maxsize=1)
def _ibug_mesh() -> tuple[int, np.ndarray]:
    import cv2
    from scipy.spatial import Delaunay

    xy = ibug_points(canonical_ibug())[:, :2]
    tri = Delaunay(xy).simplices
    outline = xy[list(IBUG_68.oval)].astype(np.float32)
    keep = [cv2.pointPolygonTest(outline, tuple(map(float, xy[t].mean(axis=0))), False) >= 0 for t in tri]
    return N_IBUG_POINTS, np.ascontiguousarray(tri[keep], dtype=np.int32)


_ARC_PTS = tuple(range(ARC, ARC + N_ARC))
_BM = {k: BROW_MID + k - 17 for k in range(17, 27)}  # brow point -> its centre-line point
IBUG_68 = Layout(
    name="ibug-68", n_points=68,
    description="FAN (face-alignment) 68 points in the iBUG 300-W order: jaw 0-16, brows 17-26, nose 27-35, "
                "eyes 36-47 (the subject's right first), lips 48-67; x, y crop pixels, z in pixel units, "
                "larger = nearer (3D FAN's own z, 2D FAN's fitted from MediaPipe's canonical face)",
    oval=tuple(range(17)) + _ARC_PTS,
    brows=(_LEFT_BROW + tuple(range(BROW_LOW + 9, BROW_LOW + 4, -1)), _RIGHT_BROW + tuple(range(BROW_LOW + 4, BROW_LOW - 1, -1))),
    eyes=(tuple(range(42, 48)), tuple(range(36, 42))),
    nose=tuple(range(27, 36)), lips_outer=tuple(range(48, 60)), forehead_top=ARC + N_ARC // 2, chin=8,
    left_edge=1, right_edge=15, jaw_left=4, jaw_right=12, nose_tip=30, eye_centers=(EYE_C, EYE_C + 1),
    region_prompts={
        Region.SKIN: ((CHEEKS, CHEEKS + 1, FOREHEAD, BELOW_LIPS), (EYE_C, EYE_C + 1, 62)),
        Region.BROWS: ((_BM[19], _BM[24], _BM[20], _BM[23]), (EYE_C, EYE_C + 1, FOREHEAD)),
        Region.EYES: ((EYE_C, EYE_C + 1, 37, 44), (_BM[19], _BM[24], CHEEKS, CHEEKS + 1)),
        Region.NOSE: ((30, 29, 28), (CHEEKS, CHEEKS + 1, 62)),
        Region.MOUTH: ((62, 66, 51, 57), (30, 8, CHEEKS)),
        Region.HAIR: ("prior", (FOREHEAD, 27, 30)),
        Region.EARS: ("prior", (CHEEKS, CHEEKS + 1, 30)),
        Region.NECK: ("prior", (8, 30, 62)),
    },
    instrument_prompts={
        "pai_surface": (Region.PAI_SURFACE, (FOREHEAD, 30, 8, 1, 15), ()),
        "occluder": (Region.OCCLUDER, (EYE_C, EYE_C + 1, 27), (30, 8)),
        "mouth_occluder": (Region.OCCLUDER, (62, 66, 51, 57), (EYE_C, EYE_C + 1, 27)),
        "lower_occluder": (Region.OCCLUDER, (62, 66, 8, 30), (EYE_C, EYE_C + 1, FOREHEAD)),
    },
    exchange={
        "eyes": (Region.EYES, tuple(range(36, 48))),
        "brows": (Region.BROWS, tuple(range(17, 27))),
        "nose": (Region.NOSE, tuple(range(27, 36))),
        "mouth": (Region.MOUTH, tuple(range(48, 60))),
        "skin": (Region.SKIN, tuple(range(17))),
    },
    _points=ibug_points,
    _mesh=_ibug_mesh,
)

LAYOUTS = {lay.name: lay for lay in (MEDIAPIPE_478, IBUG_68)}
_BY_COUNT = {lay.n_points: lay for lay in LAYOUTS.values()}


def layout_of(lm: np.ndarray) -> Layout:
    """The layout of (P, C) landmarks (or a batch (..., P, C)) by its point count P."""
    n = np.shape(lm)[-2]
    try:
        return _BY_COUNT[n]
    except KeyError:
        raise ValueError(f"landmarks with {n} points match no layout ({', '.join(f'{k}: {v.name}' for k, v in _BY_COUNT.items())})") from None


def layout_named(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown landmark layout {name!r}; known: {', '.join(LAYOUTS)}") from None


def fit_canonical_depth(points: np.ndarray) -> np.ndarray:
    """(68,) float32 z for 2-D ibug-68 points (68, >=2), pixel units, larger = nearer: MediaPipe's
    canonical face fitted to them by an orthographic camera (a least-squares 2x4 projection whose two
    rotation rows are made orthonormal; depth is the third row, scaled like the first two)."""
    x = np.asarray(points, np.float64)[:, :2]
    c = canonical_ibug()
    proj, *_ = np.linalg.lstsq(np.concatenate([c, np.ones((len(c), 1))], axis=1), x, rcond=None)
    u, s, vt = np.linalg.svd(proj[:3].T, full_matrices=False)  # (2, 3) = scale x two rotation rows
    rows = u @ vt
    return orient_depth(float(s.mean()) * (c @ np.cross(rows[0], rows[1]))).astype(np.float32)


def orient_depth(z: np.ndarray) -> np.ndarray:
    """ibug-68 z with its sign set so that the nose tip (30) is nearer (larger) than the jaw ends'
    mean (0, 16): face-alignment does not state its z direction, and every face satisfies this."""
    z = np.asarray(z, np.float64)
    return z if z[30] >= (z[0] + z[16]) / 2 else -z
