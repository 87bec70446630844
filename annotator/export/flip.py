"""`--format flip-mcio` and `--format flip-wcs`: the frame folders of FLIP (github.com/koushiksrivats/FLIP,
docs/datasets.md; its lists data/MCIO/txt and data/WCS/txt name every file; utils/utils.py reads
them), the layouts of most domain-generalization FAS work since 2023.

- MCIO (MSU, CASIA, Replay, OULU; CelebA-Spoof as extra training data): two frames per video,
  frame 6 and frame 6 + floor(n / 2) (`--sampling flip-mcio`), as
  <dataset>/<train|test>/<real|fake>/<video>_frame0.png and _frame1.png; its lists name frame0 and its
  test loader reads frame1 beside it. CelebA-Spoof's images: celeb/<real|fake>/<subject>_<live|spoof>_<image>.jpg.
- WCS (WMCA, CeFA, SURF): ten equidistant frames per video (`--sampling flip-wcs`) as
  <dataset>/<train|test>/<real|fake>/<video>_<XX>.jpg, XX the frame (WMCA: the source frame index,
  00, 05, ... 45 of its 50; otherwise the rank 00..09).

Video names follow FLIP's: the source file's stem, with its folder in front for CASIA-FASD ("1_1"),
Replay-Attack ("fixed_attack_highdef_...", "real_client...") and WMCA ("31.01.18_035_01_000_0_01").
With lists (annotate export --lists DIR, a copy of FLIP's data/MCIO/txt or data/WCS/txt), every
listed name the store can produce is written at its listed path, whatever the store's split; the
names it cannot produce are reported (unmatched.txt). Without lists the store's groups decide.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import numpy as np

from annotator.core.errors import AnnotatorError

from .base import EXPORTERS, Exporter, Row, link, safe_name, save, write_text

FLIP_SIZE = 224
# dataset -> (FLIP's folder name, how its video names are made from the source path)
NAMES = {"msu-mfsd": ("msu", "stem"), "casia-fasd": ("casia", "folder_stem"), "replay-attack": ("replay", "folder_stem"),
         "oulu-npu": ("oulu", "stem"), "celeba-spoof": ("celeb", "celeb"), "wmca": ("wmca", "folder_stem")}


def flip_dataset(dataset: str) -> str:
    return NAMES.get(dataset, (safe_name(dataset or "dataset"), "stem"))[0]


def flip_video(r: Row) -> str:
    """The FLIP name of a row's video (of its image for CelebA-Spoof) from its source path."""
    path = PurePosixPath(r.video_id.split("#")[0])
    rule = NAMES.get(r.dataset, ("", "stem"))[1]
    stem = path.stem
    if rule == "folder_stem" and len(path.parts) > 1:
        return f"{path.parent.name}_{stem}"
    if rule == "celeb" and len(path.parts) > 2:
        return f"{path.parent.parent.name}_{path.parent.name}_{stem}"
    return stem


class _Flip(Exporter):
    """What both FLIP layouts share: 224 x 224 crops, names from FLIP's rules, placement by lists."""

    image_suffix = ".png"
    sampling = ""  # the store's sampling this layout's frames come from

    def __init__(self, size: int):
        super().__init__(size)
        self.out_size = FLIP_SIZE
        self.by_lists: dict[int, list[str]] | None = None  # with --lists: store row -> its listed files
        self.unmatched: list[str] = []
        self.listed: dict[str, list[str]] = {}  # list file name -> the listed names written

    template = ""  # the README's lines, {side} the written crops' side

    @property
    def about(self) -> str:
        return self.template.format(side=self.out_size)

    def prepare(self, root, rows: list[Row], options: dict) -> None:
        given = options.get("size")
        self.out_size = FLIP_SIZE if given is None else int(given)  # 0 is a bad size, not "the default"
        if not 32 <= self.out_size <= 4096:
            raise AnnotatorError(f"--size must be 32..4096 pixels, got {self.out_size}")
        self._check_sampling(root, rows)
        if options.get("lists"):
            self._place_by_lists(Path(options["lists"]), rows)

    def _check_sampling(self, root, rows: list[Row]) -> None:
        from annotator.media.sampling import parse

        cfg = root.attrs.get("config", {})
        spec = parse(cfg.get("sampling") or "even", int(cfg.get("frames_per_video") or 10)).spec
        if spec != parse(self.sampling).spec and any(r.frame_index >= 0 for r in rows):
            raise AnnotatorError(f"--format {self.name} takes the frames of `--sampling {self.name}` "
                                 f"({parse(self.sampling).spec}); this store sampled {spec}: annotate the videos with "
                                 f"--sampling {self.name}")

    def own_paths(self, r: Row) -> list[str]:
        """The row's files when the store's groups decide (no lists)."""
        raise NotImplementedError

    def parse_listed(self, name: str) -> tuple[str, str, int] | None:
        """(FLIP dataset, video name, slot) of a listed path, or None when it is not this layout's."""
        raise NotImplementedError

    def slot_of(self, r: Row) -> int:
        """The slot a video row fills (frame0/frame1, or XX)."""
        raise NotImplementedError

    def _place_by_lists(self, folder: Path, rows: list[Row]) -> None:
        files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
        if not files:
            raise AnnotatorError(f"--lists {folder}: no .txt lists there; give a copy of FLIP's data/MCIO/txt or "
                                 "data/WCS/txt")
        self.by_lists = {}
        index: dict[tuple[str, str, int], Row] = {}
        for r in rows:
            slot = self.slot_of(r)
            if slot >= 0:
                index.setdefault((flip_dataset(r.dataset), flip_video(r), slot), r)
        for lst in files:
            written = []
            for line in lst.read_text().splitlines():
                name = line.strip()
                if not name:
                    continue
                key = self.parse_listed(name)
                hit = index.get(key) if key else None
                if hit is None:
                    self.unmatched.append(f"{lst.name}: {name}")
                    continue
                written.append(name)
                for path, row in self.with_siblings(name, key, index):
                    self.by_lists.setdefault(row.row, []).append(path)
            self.listed[lst.name] = written
        if not self.by_lists:  # refused before anything is written: an empty export is no result
            datasets = ", ".join(sorted({flip_dataset(r.dataset) for r in rows})) or "none"
            raise AnnotatorError(f"--lists {folder}: none of its {len(self.unmatched)} listed names is a frame this "
                                 f"store can produce (its datasets: {datasets}); give FLIP's data/MCIO/txt for "
                                 "flip-mcio, data/WCS/txt for flip-wcs, and a store of the listed videos")

    def with_siblings(self, name: str, key, index) -> list[tuple[str, Row]]:
        """The files a listed name needs: itself (MCIO adds its frame1)."""
        return [(name, index[key])]

    def images(self, r: Row) -> list[str]:
        return self.files(r)  # every file is an image (an image row's _frame0 and _frame1, listed siblings)

    def files(self, r: Row) -> list[str]:
        if self.by_lists is None:  # the store's groups decide
            return self.own_paths(r)
        return list(dict.fromkeys(self.by_lists.get(r.row, [])))  # a name listed twice is written once

    def write(self, r: Row, image: np.ndarray, label: np.ndarray, landmarks: np.ndarray, out: Path) -> None:
        paths = self.files(r)
        if not paths:
            return
        if self.out_size != image.shape[0]:
            import cv2

            image = cv2.resize(image, (self.out_size, self.out_size), interpolation=cv2.INTER_AREA)
        save(out / paths[0], image, quality=None if paths[0].endswith(".png") else 95)
        for path in paths[1:]:
            link(out / paths[0], out / path)

    def lists(self, rows: list[Row], out: Path) -> list[str]:
        written = []
        if self.by_lists is not None:
            for name, names in self.listed.items():
                write_text(out / "txt" / name, "".join(f"{n}\n" for n in names))
                written.append(f"txt/{name}")
            write_text(out / "unmatched.txt", "".join(f"{n}\n" for n in self.unmatched))
            return written + ["unmatched.txt"]
        by_list: dict[str, list[str]] = {}
        for r in rows:
            for path in self.own_paths(r):
                if self.lists_name(path):
                    by_list.setdefault(self.list_file(r), []).append(path)
        for name, paths in sorted(by_list.items()):
            write_text(out / "txt" / name, "".join(f"{p}\n" for p in sorted(paths)))
            written.append(f"txt/{name}")
        return written

    def lists_name(self, path: str) -> bool:
        """Whether FLIP's lists name this file (MCIO's name frame0 only)."""
        return True

    def list_file(self, r: Row) -> str:
        """FLIP's list of a row: <dataset>_<real|fake>_<group>.txt."""
        group = "train" if r.dataset == "celeba-spoof" else r.group
        return f"{flip_dataset(r.dataset)}_{_class(r)}_{group}.txt"


def _class(r: Row) -> str:
    return "fake" if r.is_attack else "real"


class FlipMcioExporter(_Flip):
    name = "flip-mcio"
    sampling = "ssdg-test"
    template = """Format: FLIP's MCIO frames (github.com/koushiksrivats/FLIP, docs/datasets.md, data/MCIO/txt).
- <dataset>/<group>/<real|fake>/<video>_frame0.png and _frame1.png: {side} x {side} RGB crops (--size), the
  video's frames 6 and 6 + floor(n / 2) (the store must be annotated with --sampling flip-mcio); an image
  gives both names. dataset: msu, casia, replay, oulu (others by their adapter name).
- celeb/<real|fake>/<subject>_<live|spoof>_<image>.jpg: CelebA-Spoof's images (training data only).
- txt/<dataset>_<real|fake>_<group>.txt: FLIP's lists, naming frame0 (its test loader adds frame1).
  With --lists DIR: every name of DIR's lists the store can produce, at its listed path (train/ or
  test/ as the list says, whatever the store's split); txt/ holds the lists cut to those names and
  unmatched.txt the names the store cannot produce."""

    MCIO = re.compile(r"^(?P<ds>[^/]+)/(?:(?P<split>[^/]+)/)?(?P<cls>real|fake)/(?P<name>[^/]+)$")

    def slot_of(self, r: Row) -> int:
        return 0 if r.frame_index < 0 else r.number

    def own_paths(self, r: Row) -> list[str]:
        ds, video = flip_dataset(r.dataset), flip_video(r)
        if r.dataset == "celeba-spoof":
            return [f"{ds}/{_class(r)}/{video}.jpg"]
        if r.frame_index < 0:  # an image stands for both frames
            return [f"{ds}/{r.group}/{_class(r)}/{video}_frame{j}.png" for j in (0, 1)]
        return [f"{ds}/{r.group}/{_class(r)}/{video}_frame{r.number}.png"] if r.number < 2 else []

    def lists_name(self, path: str) -> bool:
        return not path.endswith("_frame1.png")

    def parse_listed(self, name: str):
        m = self.MCIO.match(name)
        if not m:
            return None
        base = m["name"]
        if base.endswith("_frame0.png") or base.endswith("_frame1.png"):
            return m["ds"], base[: -len("_frame0.png")], int(base[-5])
        return m["ds"], PurePosixPath(base).stem, 0  # celeb's images

    def with_siblings(self, name: str, key, index):
        out = [(name, index[key])]
        if name.endswith("_frame0.png"):  # FLIP's test loader reads frame1 beside every listed frame0
            other = index.get((key[0], key[1], 1)) or index[key]  # an image fills both
            out.append((name[: -len("0.png")] + "1.png", other))
        return out


class FlipWcsExporter(_Flip):
    name = "flip-wcs"
    sampling = "flip-wcs"
    template = """Format: FLIP's WCS frames (github.com/koushiksrivats/FLIP, docs/datasets.md, data/WCS/txt).
- <dataset>/<group>/<real|fake>/<video>_<XX>.jpg: {side} x {side} RGB crops (--size), JPEG 95, ten evenly spaced
  frames of a video (the store must be annotated with --sampling flip-wcs); XX = the source frame index
  for WMCA (00, 05, ... 45 of its 50 frames), else the rank 00..09. An image: <dataset>/<group>/<real|fake>/<name>.jpg.
- txt/<dataset>_<real|fake>_<group>.txt: FLIP's lists, one line per file. With --lists DIR: every name of
  DIR's lists the store can produce, at its listed path; txt/ and unmatched.txt as for flip-mcio."""

    WCS = re.compile(r"^(?P<ds>[^/]+)/(?P<split>[^/]+)/(?P<cls>real|fake)/(?P<name>[^/]+)\.jpg$")

    def _xx(self, r: Row) -> int:
        return r.frame_index if r.dataset == "wmca" else r.number

    def slot_of(self, r: Row) -> int:
        return -1 if r.frame_index < 0 else self._xx(r)

    def own_paths(self, r: Row) -> list[str]:
        base = f"{flip_dataset(r.dataset)}/{r.group}/{_class(r)}/{flip_video(r)}"
        return [f"{base}.jpg"] if r.frame_index < 0 else [f"{base}_{self._xx(r):02d}.jpg"]

    def parse_listed(self, name: str):
        m = self.WCS.match(name)
        if not m:
            return None
        video, _, xx = m["name"].rpartition("_")
        return (m["ds"], video, int(xx)) if xx.isdigit() and video else None


EXPORTERS.register("flip-mcio")(FlipMcioExporter)
EXPORTERS.register("flip-wcs")(FlipWcsExporter)
