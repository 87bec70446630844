"""A measured test set for partial attacks: real faces with drawn instruments whose exact pixels
are kept beside them (docs/labels.md, "Measuring partial attacks").

Faces come from what ships offline (the sample data's photos, scikit-image's astronaut) and their
flips, scales and colour shifts. Instruments are drawn from the clean face's own landmarks: paper
strips over the eyes (narrow and wide, several colours), paper glasses (plain, and printed with
another face's eyes), a paper patch over the mouth, and a cut photo (a print of the face with the
eyes cut out), and a paper half mask over the lower face. Each composite keeps its instrument mask (frame pixels), so the share of the
instrument labelled attack and the share of the uncovered face labelled attack are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from annotator.face.points478 import FACE_OVAL, LEFT_EYE, LIPS_OUTER, RIGHT_EYE

# kind -> the canonical attack type a dataset would give it
KINDS = {
    "strip_narrow": "partial_eye",
    "strip_wide": "partial_eye",
    "glasses_plain": "glasses",
    "glasses_eyes": "glasses",
    "mouth_patch": "partial_mouth",
    "half_mask": "half_mask",
    "cut_photo": "cut_print",
}
PAPER = [(236, 236, 230), (250, 226, 120), (150, 190, 235), (200, 200, 200), (245, 180, 190)]  # RGB


@dataclass
class Composite:
    """image: HWC uint8 RGB; mask: bool (H, W), True on the instrument; kind (KINDS); name."""

    image: np.ndarray
    mask: np.ndarray
    kind: str
    name: str

    @property
    def attack_type(self) -> str:
        return KINDS.get(self.kind, "bonafide")


def base_faces(sample_root: str | Path) -> list[tuple[str, np.ndarray]]:
    """(name, HWC uint8 RGB) of the offline faces and their variants (flip, scale, colour shift)."""
    from PIL import Image
    from skimage import data

    root = Path(sample_root)
    photos = [("astronaut", data.astronaut()),
              ("room", np.asarray(Image.open(root / "bonafide" / "astronaut_room.jpg").convert("RGB")))]
    out = []
    for name, img in photos:
        out.append((name, img))
        out.append((f"{name}-flip", np.ascontiguousarray(img[:, ::-1])))
        small = cv2.resize(img, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
        out.append((f"{name}-small", small))
        warm = np.clip(img.astype(np.float32) * np.array([1.08, 1.0, 0.85]) + 6, 0, 255).astype(np.uint8)
        out.append((f"{name}-warm", warm))
        dark = np.clip(img.astype(np.float32) * 0.75, 0, 255).astype(np.uint8)
        out.append((f"{name}-dark", dark))
    return out


def face_landmarks(image: np.ndarray) -> np.ndarray | None:
    """FaceMesh's (478, 3) frame-pixel landmarks of the largest face, or None."""
    from annotator.face.detect import BlazeFaceDetector
    from annotator.face.landmarks import FaceMeshLandmarker

    faces = BlazeFaceDetector()(image)
    return FaceMeshLandmarker()(image, faces[0]) if faces else None


def _axes(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(image-right unit vector along the eyes, image-down unit vector, inter-ocular distance)."""
    left, right = lm[468, :2], lm[473, :2]  # iris centres
    along = right - left
    iod = float(np.linalg.norm(along))
    along = along / iod
    if along[0] < 0:
        along = -along
    down = np.array([-along[1], along[0]])
    return along, down, iod


def _band(lm: np.ndarray, top: float, bottom: float, reach: float) -> np.ndarray:
    """A rotated rectangle along the eye line: from `top` to `bottom` x IOD below the eye line,
    `reach` x IOD to each side of the eyes' midpoint. (4, 2) float32 corners."""
    along, down, iod = _axes(lm)
    mid = (lm[468, :2] + lm[473, :2]) / 2
    a, b = along * reach * iod, down * iod
    return np.array([mid - a + top * b, mid + a + top * b, mid + a + bottom * b, mid - a + bottom * b], np.float32)


def _poly_mask(shape, polys: list[np.ndarray]) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(p).astype(np.int32) for p in polys], 1)
    return m.astype(bool)


def _paint(image: np.ndarray, mask: np.ndarray, colour, rng: np.random.Generator) -> np.ndarray:
    """Matte paper of `colour` on mask, with a little print noise and the scene's light (so that it
    is not a flat synthetic colour)."""
    out = image.copy()
    shade = cv2.GaussianBlur(image.mean(axis=2).astype(np.float32), (0, 0), 25) / 160.0
    paper = np.array(colour, np.float32)[None, None] * np.clip(shade, 0.6, 1.2)[..., None]
    paper += rng.normal(0, 4, paper.shape)
    out[mask] = np.clip(paper[mask], 0, 255).astype(np.uint8)
    return out


def strip(image, lm, rng, wide: bool, colour) -> tuple[np.ndarray, np.ndarray]:
    """A paper strip over the eyes; wide: also over the brows."""
    corners = _band(lm, -0.75 if wide else -0.32, 0.36 if wide else 0.3, 1.35)
    mask = _poly_mask(image.shape, [corners])
    return _paint(image, mask, colour, rng), mask


def glasses(image, lm, rng, colour, eyes_from: np.ndarray | None = None,
            eyes_lm: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Paper glasses: two lenses round the eyes and a bridge; eyes_from: a face whose eye patches
    are printed on the lenses (else plain paper)."""
    along, down, iod = _axes(lm)
    mask = np.zeros(image.shape[:2], np.uint8)
    angle = float(np.degrees(np.arctan2(along[1], along[0])))
    for c in (lm[468, :2], lm[473, :2]):
        cv2.ellipse(mask, (int(round(c[0])), int(round(c[1]))), (int(0.36 * iod), int(0.26 * iod)), angle, 0, 360, 1, -1)
    mid = (lm[468, :2] + lm[473, :2]) / 2
    bridge = np.array([mid - along * 0.2 * iod - down * 0.08 * iod, mid + along * 0.2 * iod - down * 0.08 * iod,
                       mid + along * 0.2 * iod + down * 0.02 * iod, mid - along * 0.2 * iod + down * 0.02 * iod])
    cv2.fillPoly(mask, [np.round(bridge).astype(np.int32)], 1)
    mask = mask.astype(bool)
    out = _paint(image, mask, colour, rng)
    if eyes_from is not None and eyes_lm is not None:  # a print of another face's eyes on the lenses
        src = np.float32([eyes_lm[468, :2], eyes_lm[473, :2], eyes_lm[6, :2]])
        dst = np.float32([lm[468, :2], lm[473, :2], lm[6, :2]])
        warped = cv2.warpAffine(eyes_from, cv2.getAffineTransform(src, dst), image.shape[1::-1])
        printed = np.clip(warped.astype(np.float32) * 0.85 + 25, 0, 255).astype(np.uint8)  # paper's lower contrast
        lenses = mask & ~_poly_mask(image.shape, [bridge])
        out[lenses] = printed[lenses]
    return out, mask


def mouth_patch(image, lm, rng, colour) -> tuple[np.ndarray, np.ndarray]:
    """A paper patch over the mouth, a little wider than the lips."""
    along, down, iod = _axes(lm)
    lips = lm[LIPS_OUTER, :2]
    c = lips.mean(axis=0)
    a, b = along * 0.62 * iod, down * 0.32 * iod
    mask = _poly_mask(image.shape, [np.array([c - a - b, c + a - b, c + a + b, c - a + b], np.float32)])
    return _paint(image, mask, colour, rng), mask


def half_mask(image, lm, rng, colour) -> tuple[np.ndarray, np.ndarray]:
    """A paper half mask: the face oval from just above the nose tip down, widened a little."""
    along, down, iod = _axes(lm)
    oval = lm[FACE_OVAL, :2]
    c = oval.mean(axis=0)
    lower = oval[((oval - lm[1, :2]) @ down) > -0.08 * iod]
    sheet = c + (lower - c) * 1.05
    mask = _poly_mask(image.shape, [sheet])
    return _paint(image, mask, colour, rng), mask


def cut_photo(image, lm, rng) -> tuple[np.ndarray, np.ndarray]:
    """A print of the face held over it with the eyes cut out: the photo covers the face oval
    (and a margin) except two holes through which the real eyes show."""
    along, down, iod = _axes(lm)
    oval = lm[FACE_OVAL, :2]
    c = oval.mean(axis=0)
    sheet = c + (oval - c) * 1.08
    holes = [lm[RIGHT_EYE, :2], lm[LEFT_EYE, :2]]
    holes = [h.mean(axis=0) + (h - h.mean(axis=0)) * 1.5 for h in holes]
    mask = _poly_mask(image.shape, [sheet]) & ~_poly_mask(image.shape, holes)
    # the print: the same face slightly shifted and scaled, flatter and duller, as paper shows it
    m = np.float32([[1.03, 0, -0.03 * c[0] + 0.04 * iod], [0, 1.03, -0.03 * c[1] + 0.03 * iod]])
    printed = cv2.warpAffine(image, m, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
    printed = cv2.GaussianBlur(printed, (0, 0), 1.2).astype(np.float32)
    printed = np.clip((printed - 128) * 0.8 + 128 + np.array([8, 4, -6]) + rng.normal(0, 3, printed.shape), 0, 255)
    out = image.copy()
    out[mask] = printed.astype(np.uint8)[mask]
    return out, mask


def build(sample_root: str | Path, seed: int = 0, kinds=tuple(KINDS)) -> list[Composite]:
    """Every kind on every base face whose landmarks FaceMesh finds (the clean face)."""
    rng = np.random.default_rng(seed)
    faces = [(n, img, face_landmarks(img)) for n, img in base_faces(sample_root)]
    faces = [f for f in faces if f[2] is not None]
    out = []
    for k, (name, img, lm) in enumerate(faces):
        other_img, other_lm = faces[(k + 1) % len(faces)][1], faces[(k + 1) % len(faces)][2]
        colour = PAPER[k % len(PAPER)]
        for kind in kinds:
            if kind == "strip_narrow":
                image, mask = strip(img, lm, rng, False, colour)
            elif kind == "strip_wide":
                image, mask = strip(img, lm, rng, True, PAPER[(k + 2) % len(PAPER)])
            elif kind == "glasses_plain":
                image, mask = glasses(img, lm, rng, PAPER[(k + 1) % len(PAPER)])
            elif kind == "glasses_eyes":
                image, mask = glasses(img, lm, rng, colour, other_img, other_lm)
            elif kind == "mouth_patch":
                image, mask = mouth_patch(img, lm, rng, PAPER[(k + 3) % len(PAPER)])
            elif kind == "half_mask":
                image, mask = half_mask(img, lm, rng, PAPER[(k + 4) % len(PAPER)])
            else:
                image, mask = cut_photo(img, lm, rng)
            out.append(Composite(image, mask, kind, f"{name}-{kind}"))
    return out


def bona_fide(sample_root: str | Path) -> list[Composite]:
    """The clean base faces, as bona fide rows (mask empty)."""
    return [Composite(img, np.zeros(img.shape[:2], bool), "bonafide", name) for name, img in base_faces(sample_root)]


@dataclass
class Measured:
    """One composite through the pipeline: face found, and inside the face mesh (depth > 0 of the
    row): the share of the instrument labelled attack / live, the share of the uncovered face
    labelled attack (NaN where undefined: no face, no instrument)."""

    name: str
    kind: str
    found: bool
    instrument_attack: float = float("nan")
    instrument_live: float = float("nan")
    uncovered_attack: float = float("nan")
    segmenter: str = ""


def measure(items: list[Composite], cfg, models, folder: str | Path) -> list[Measured]:
    """Run the composites through annotate run's frame pipeline (annotator/shard/pipeline.py: crop, segment,
    fuse) with `cfg` (AnnotateConfig) and `models` (shard.Models); images are written to `folder`."""
    from PIL import Image

    from annotator.core.samples import SampleRef, Status
    from annotator.shard import crop_faces, segment_and_fuse

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    refs = []
    for c in items:
        path = folder / f"{c.name}.png"
        Image.fromarray(c.image).save(path)
        refs.append(SampleRef(sample_id=c.name, path=str(path), source=path.name, video_id=c.name,
                              is_attack=c.attack_type != "bonafide", attack_type=c.attack_type, dataset="composites"))
    rows = crop_faces(refs, cfg, models)
    segment_and_fuse(rows, cfg, models)
    crop_of = {i: it.crop_matrix for i, it in zip(rows.faced, rows.items)}
    out = []
    for i, c in enumerate(items):
        if rows.meta["status"][i] != Status.OK or i not in crop_of:
            out.append(Measured(c.name, c.kind, False))
            continue
        inst = cv2.warpAffine(c.mask.astype(np.uint8), crop_of[i], (cfg.size, cfg.size), flags=cv2.INTER_NEAREST) > 0
        face = rows.arrays["depth"][i] > 0
        attack, live = rows.arrays["label"][i, 0] > 0, rows.arrays["label"][i, 1] > 0
        inside, rest = inst & face, face & ~inst
        share = (lambda m, of: float((m & of).sum() / of.sum()) if of.any() else float("nan"))  # noqa: E731
        out.append(Measured(c.name, c.kind, True, share(attack, inside), share(live, inside), share(attack, rest),
                            str(rows.meta["segmenter"][i])))
    return out


def table(results: list[Measured]) -> dict[str, dict[str, float]]:
    """kind -> {n, found, instrument_attack, instrument_live, uncovered_attack} (means over the found)."""
    out = {}
    for kind in sorted({r.kind for r in results}):
        rs = [r for r in results if r.kind == kind]
        ok = [r for r in rs if r.found]
        mean = (lambda f: float(np.nanmean([getattr(r, f) for r in ok])) if ok else float("nan"))  # noqa: E731
        out[kind] = {"n": len(rs), "found": len(ok) / len(rs), "instrument_attack": mean("instrument_attack"),
                     "instrument_live": mean("instrument_live"), "uncovered_attack": mean("uncovered_attack")}
    return out
