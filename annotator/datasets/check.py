"""`annotate check-dataset`: what a dataset root holds and what is wrong with it, before any decoding.

The adapter enumerates the root leniently (a name that does not parse is recorded, not raised);
then the report compares the protocol lists with the files on disk, looks for subjects on both
sides of a protocol's train/test line, and probes every media file's header in parallel (the
container header only: a few milliseconds a file, no frame decoded).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from annotator.core.names import needs_escape, storable
from annotator.core.samples import SampleRef
from annotator.face.annotations import face_file_problem

from .base import MANIFEST_CONFLICTS, DatasetAdapter, conflict_where, media_kind
from .celeba_spoof import LABEL_CONFLICTS

# What each kind of conflict is, by its key in DatasetAdapter.conflicts (any other key is a protocol).
CONFLICT_TITLES = {
    MANIFEST_CONFLICTS: "files listed with contradicting labels, subjects or splits",
    LABEL_CONFLICTS: "images whose label vector contradicts their folder or another label file (annotate run "
                     "refuses them without --on-conflict)",
}


@dataclass
class DatasetReport:
    dataset: str
    root: str
    files: int = 0
    rows: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> attack type -> files
    protocols: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)  # protocol -> listed ids not on disk
    missing_files: list[str] = field(default_factory=list)  # rows whose file does not exist
    unused: list[str] = field(default_factory=list)  # media that no protocol uses
    crossing: dict[str, list[str]] = field(default_factory=dict)  # protocol -> subjects in train and test
    # protocol -> ids its lists put in two groups, "manifest" -> files listed with contradicting lines:
    # id -> "train, test" or "lines 2, 5"
    conflicts: dict[str, dict[str, str]] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    face_files: list[tuple[str, str]] = field(default_factory=list)  # (file, why its face file gives no box)
    bad_names: list[tuple[str, str]] = field(default_factory=list)  # (file or list line, what was expected)
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> int:
        """Count of findings that make the check fail (unused media alone do not)."""
        return (sum(len(v) for v in self.missing.values()) + len(self.missing_files)
                + sum(len(v) for v in self.crossing.values()) + len(self.unreadable) + len(self.bad_names)
                + sum(len(v) for v in self.conflicts.values()))

    def to_dict(self) -> dict:
        return {**asdict(self), "problems": self.problems, "ok": self.problems == 0}

    def text(self, limit: int = 20) -> str:
        skipped = f"; {len(self.bad_names)} name(s) skipped (listed below)" if self.bad_names else ""
        out = [f"{self.dataset} at {self.root}: {self.files} media files, {self.rows} rows{skipped}"]
        out += [f"note: {n}" for n in self.notes]
        for split in sorted(self.counts):
            types = ", ".join(f"{t} {c}" for t, c in sorted(self.counts[split].items()))
            out.append(f"  {split or '(no split)'}: {types}")
        out.append(f"protocols: {', '.join(self.protocols) or '(none)'}")

        def listing(title: str, items: list) -> None:
            if not items:
                return
            out.append(f"{title} ({len(items)}):")
            for item in items[:limit]:
                out.append("  " + storable(f"{item[0]}: {item[1]}" if isinstance(item, tuple) else str(item)))
            if len(items) > limit:
                out.append(f"  ... and {len(items) - limit} more (--json lists all)")

        for name, ids in sorted(self.missing.items()):
            listing(f"PROBLEM {name}: listed but not on disk", ids)
        listing("PROBLEM files named by the dataset's lists that do not exist", self.missing_files)
        for name, ids in sorted(self.conflicts.items()):
            what = CONFLICT_TITLES.get(name, "ids listed in two groups (leakage; annotate run refuses them without "
                                             "--on-conflict)")
            listing(f"PROBLEM {name}: {what}", sorted(ids.items()))
        for name, subjects in sorted(self.crossing.items()):
            listing(f"PROBLEM {name}: subjects in both train and test", subjects)
        listing("PROBLEM unreadable media (header probe)", self.unreadable)
        listing("PROBLEM names that do not parse", self.bad_names)
        listing("warning: media that no protocol uses", self.unused)
        listing("warning: face files that give no box (--use-dataset-faces falls back to the detector for "
                "these images)", self.face_files)
        out.append(f"{self.problems} problem(s)" if self.problems else "ok")
        return "\n".join(out)


def probe(path: str, media: dict) -> str:
    """"" when the file's header reads as the media it should be, else why not. Decodes no frame."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file"
        kind = media.get("kind")
        if kind:
            import h5py

            with h5py.File(path, "r") as f:
                if kind == "frame-groups" and not any(k.startswith("Frame_") for k in f.keys()):
                    return "no Frame_<i> groups"
                if kind == "stacks" and media.get("color_key", "").lstrip("/") not in f:
                    return f"no dataset {media.get('color_key')} (set ANNOTATOR_WMCA_COLOR_KEY if yours differs)"
            return ""
        if media_kind(Path(path)) == "image":
            from PIL import Image

            with Image.open(path) as im:
                w, h = im.size
            return "" if w > 0 and h > 0 else "zero-sized image"
        import av

        with av.open(path) as c:
            if not c.streams.video:
                return "no video stream"
            s = c.streams.video[0]
            if not (s.codec_context.width and s.codec_context.height):
                return "video stream without a frame size"
        return ""
    except Exception as e:  # every library has its own error types for a bad file
        return f"{type(e).__name__}: {e}".strip()


def check_dataset(adapter: DatasetAdapter, workers: int | None = None, probe_media: bool = True) -> DatasetReport:
    """Enumerate a (non-strict) adapter and report what is wrong with its dataset root."""
    report = DatasetReport(adapter.name, str(adapter.root), protocols=adapter.protocol_names())
    media: dict[str, SampleRef] = {}  # source -> first row of that file
    for ref in adapter.samples():
        report.rows += 1
        media.setdefault(ref.source, ref)
    report.files = len(media)
    counts: dict[str, Counter] = defaultdict(Counter)
    for ref in media.values():
        counts[ref.split][ref.attack_type] += 1
    report.counts = {k: dict(v) for k, v in counts.items()}
    report.notes = list(adapter.findings.notes)
    report.bad_names = list(adapter.findings.bad_names)
    escaped = sorted(storable(s) for s in media if needs_escape(s))
    if escaped:
        report.notes.append(f"{len(escaped)} file name(s) are not UTF-8 ({', '.join(escaped[:5])}"
                            f"{' ...' if len(escaped) > 5 else ''}); they are annotated, their stored source "
                            "writing each undecodable byte as \\xNN (docs/store.md)")
    report.conflicts = {p: {k: conflict_where(p, v) for k, v in ids.items()} for p, ids in adapter.conflicts.items()}

    on_disk = {ref.source: ref for ref in media.values() if Path(ref.path).exists()}
    report.missing_files = sorted(set(media) - set(on_disk))
    known_ids = {i for r in on_disk.values() for i in adapter.list_ids(r)}  # no set per row alive at once
    known_ids |= adapter.findings.skipped_ids  # on disk, reported as a name that does not parse
    for name, ids in adapter.listed.items():
        absent = sorted(ids - known_ids)
        if absent:
            report.missing[name] = absent
    if report.protocols:
        report.unused = sorted(s for s, r in on_disk.items()
                               if all(r.protocols.get(p, -1) == -1 for p in report.protocols))
    for name in report.protocols:
        sides = {0: set(), 2: set()}
        for r in on_disk.values():
            code = r.protocols.get(name, -1)
            if code in sides and r.subject:
                sides[code].add(r.subject)
        both = sorted(sides[0] & sides[2])
        if both:
            report.crossing[name] = both
    if probe_media and on_disk:
        refs = list(on_disk.values())
        faces = [r for r in refs if r.media.get("faces")]
        with ThreadPoolExecutor(max_workers=workers or min(32, 2 * (os.cpu_count() or 1))) as pool:
            errors = list(pool.map(lambda r: probe(r.path, r.media), refs))
            boxes = list(pool.map(lambda r: face_file_problem(r.media["faces"], r.media.get("faces_format", "xywh")),
                                  faces))
        report.unreadable = [(r.source, e) for r, e in zip(refs, errors) if e]
        report.face_files = [(r.source, e) for r, e in zip(faces, boxes) if e]
    return report
