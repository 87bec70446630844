"""Regenerate annotator/datasets/sample_data/: a real public-domain face and synthetic attacks made from it.

The face is scikit-image's astronaut photograph (Eileen Collins, NASA, public domain). Attacks:
a print (white-bordered paper, colour loss and halftone, perspective-warped onto a textured
table), a replay (screen bezel, moire, glare), a partial attack (a paper strip over the eyes),
and one short bona fide video. Deterministic: the same files every run.

    python scripts/make_sample_data.py [--out annotator/datasets/sample_data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image
from skimage import data

W, H = 640, 480
RNG = np.random.default_rng(20261122)


def texture(h: int, w: int, base=(150, 110, 70)) -> np.ndarray:
    """A wood-like table texture: grain stripes plus noise, HWC uint8."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    grain = np.sin(0.05 * y + 3 * np.sin(0.01 * x)) * 18 + RNG.normal(0, 6, (h, w))
    return np.clip(np.array(base, np.float32) + grain[..., None], 0, 255).astype(np.uint8)


def halftone(img: np.ndarray, period: int = 4) -> np.ndarray:
    y, x = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    dots = 0.85 + 0.15 * np.cos(2 * np.pi * x / period) * np.cos(2 * np.pi * y / period)
    return np.clip(img * dots[..., None], 0, 255).astype(np.uint8)


def degrade_print(img: np.ndarray) -> np.ndarray:
    f = img.astype(np.float32) / 255
    gray = f.mean(axis=2, keepdims=True)
    f = 0.6 * f + 0.4 * gray  # ink gamut loss
    f = f ** 1.15 * np.array([1.0, 0.97, 0.85])  # yellowed paper
    return halftone(np.clip(f * 255, 0, 255).astype(np.uint8))


def place_quad(background: np.ndarray, img: np.ndarray, quad) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), np.float32(quad))
    warped = cv2.warpPerspective(img, m, (background.shape[1], background.shape[0]))
    mask = cv2.warpPerspective(np.ones((h, w), np.uint8), m, (background.shape[1], background.shape[0]))
    out = background.copy()
    out[mask > 0] = warped[mask > 0]
    return out


def print_attack(face: np.ndarray) -> np.ndarray:
    paper = cv2.copyMakeBorder(degrade_print(face), 36, 36, 36, 36, cv2.BORDER_CONSTANT, value=(245, 243, 235))
    out = place_quad(texture(H, W), paper, [[150, 30], [500, 50], [520, 460], [130, 445]])
    return cv2.GaussianBlur(out, (3, 3), 0)


def replay_attack(face: np.ndarray) -> np.ndarray:
    screen = cv2.resize(face, (380, 380)).astype(np.float32)
    y, x = np.mgrid[0:380, 0:380].astype(np.float32)
    moire = 10 * np.sin(2 * np.pi * (x * np.cos(0.2) + y * np.sin(0.2)) / 5.3) * np.sin(2 * np.pi * y / 4.9)
    glare = 40 * np.exp(-((x - 280) ** 2 + (y - 80) ** 2) / (2 * 70**2))
    screen = screen * np.array([0.92, 0.97, 1.08]) + moire[..., None] + glare[..., None]
    screen = np.clip(screen, 0, 255).astype(np.uint8)
    device = np.full((440, 420, 3), 18, np.uint8)  # bezel
    device[30:410, 20:400] = screen
    cv2.circle(device, (210, 425), 7, (60, 60, 60), -1)
    return place_quad(texture(H, W, base=(90, 95, 100)), device, [[115, 20], [525, 35], [515, 470], [125, 462]])


def printed_eyes(face: np.ndarray) -> np.ndarray:
    """A partial attack: a paper strip with printed eyes (SiW-M's Partial_Eye) over the real eyes."""
    import mediapipe as mp

    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as fm:
        lm = fm.process(face).multi_face_landmarks[0].landmark
    h, w = face.shape[:2]
    pts = np.array([(lm[i].x * w, lm[i].y * h) for i in (33, 133, 159, 145, 263, 362, 386, 374, 70, 300)])
    x0, y0 = (pts.min(axis=0) - (14, 10)).astype(int)
    x1, y1 = (pts.max(axis=0) + (14, 16)).astype(int)
    out = face.copy()
    eyes = degrade_print(face[y0 + 4:y1 - 4, x0 + 6:x1 - 6])
    strip = np.full((y1 - y0, x1 - x0, 3), (240, 236, 226), np.uint8)  # paper margin around the print
    strip[4:-4, 6:-6] = eyes
    out[y0:y1, x0:x1] = strip
    cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (200, 196, 188), 1)  # the strip's cut edge
    return out


def bonafide_scene(face: np.ndarray, scale: float = 0.8, dx: int = 0, dy: int = 0, mirror: bool = False) -> np.ndarray:
    """The face photo as a 640x480 'camera' frame over a plain wall."""
    f = face[:, ::-1] if mirror else face
    side = int(H * scale)
    f = cv2.resize(np.ascontiguousarray(f), (side, side), interpolation=cv2.INTER_AREA)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    frame = np.clip(np.stack([200 - 0.05 * y, 205 - 0.05 * y, 195 - 0.04 * x], axis=2), 0, 255).astype(np.uint8)
    x0, y0 = (W - side) // 2 + dx, (H - side) // 2 + dy
    frame[y0:y0 + side, x0:x0 + side] = f
    return frame


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"crf": "28", "preset": "medium", "g": "25"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "annotator" / "datasets" / "sample_data"))
    out = Path(ap.parse_args().out)
    face = data.astronaut()
    files = {
        "bonafide/astronaut.jpg": face,
        "bonafide/astronaut_room.jpg": bonafide_scene(face, mirror=True),
        "attack/print/print_on_table.jpg": print_attack(face),
        "attack/replay/tablet_replay.jpg": replay_attack(face),
        "attack/partial_eye/printed_eyes.jpg": printed_eyes(face),
    }
    for rel, img in files.items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(p, quality=88)
    frames = [bonafide_scene(face, scale=0.7 + 0.004 * t, dx=int(20 * np.sin(t / 8)), dy=int(6 * np.cos(t / 10)))
              for t in range(50)]
    write_video(out / "bonafide/astronaut_pan.mp4", frames)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {len(files) + 1} files to {out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
