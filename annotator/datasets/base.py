"""The adapter interface and helpers shared by adapters."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator

from annotator.core.errors import AnnotatorError
from annotator.core.registry import Registry
from annotator.core.samples import SPLIT_CODES, SampleRef
from annotator.media.decode import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS


@dataclass
class Findings:
    """What an adapter noticed while reading a dataset root.

    strict (`annotate run`): a name that does not parse is an AnnotatorError, raised at once.
    Not strict (`annotate check-dataset`): it is recorded and the file is skipped, so that one
    report lists every problem. Notes are facts a user should hear once (e.g. "no protocol files").
    """

    strict: bool = True
    bad_names: list[tuple[str, str]] = field(default_factory=list)  # (file or list line, what was expected)
    notes: list[str] = field(default_factory=list)
    # list ids of files that are on disk but were skipped (their labels did not parse): a list that
    # names one is not missing a file
    skipped_ids: set[str] = field(default_factory=set)

    def bad_name(self, where: str | Path, message: str, listed_as: str | None = None) -> None:
        if self.strict:
            raise AnnotatorError(f"{where}: {message}")
        self.bad_names.append((str(where), message))
        if listed_as:
            self.skipped_ids.add(listed_as)


MANIFEST_CONFLICTS = "manifest"  # the key of a manifest's contradicting lines in DatasetAdapter.conflicts


class DatasetAdapter:
    """Base of every adapter: turns a dataset root into SampleRefs without decoding media.

    Built as ADAPTER(root=..., frames_per_video=..., protocol_dir=..., strict=...); raises
    AnnotatorError on a wrong root. Subclasses set `name`, `description` and, when they read
    protocol list files, `reads_protocol_files = True` (then --protocol-dir may point elsewhere).
    `listed` maps a protocol name to the ids its list files name (what check-dataset compares with
    the files on disk); `list_ids(ref)` are the ids by which a list may name a row.
    """

    name: str = ""
    description: str = ""  # one paragraph: the layout it expects and the protocols it writes
    reads_protocol_files = False
    #: the key of `conflicts` that holds contradicting rows (settle_rows settles them); every other key
    #: is a protocol whose lists put ids in two groups (settle_conflicts)
    row_conflicts = MANIFEST_CONFLICTS

    def __init__(self, root: str | Path | None, frames_per_video: int = 10, protocol_dir: str | None = None,
                 strict: bool = True):
        self.root = require_dir(root, self.name)
        self.k = frames_per_video
        if protocol_dir and not self.reads_protocol_files:
            raise AnnotatorError(f"{self.name} reads no protocol files, so --protocol-dir does not apply; "
                                 "drop it")
        self.protocol_dir = require_dir(protocol_dir, f"{self.name} --protocol-dir") if protocol_dir else None
        self.findings = Findings(strict)
        self.listed: dict[str, set[str]] = {}
        self.protocols: dict[str, dict[str, int]] = {}  # protocol -> list id -> 0/1/2
        # Leakage: protocol -> list id -> the groups its lists put it in (the first kept meanwhile);
        # "manifest" -> source -> the manifest lines that contradict each other about it.
        self.conflicts: dict[str, dict[str, list]] = {}
        self.setup()

    def setup(self) -> None:
        """Check the root's layout and read list files (called by __init__)."""

    def samples(self) -> Iterator[SampleRef]:
        raise NotImplementedError

    def protocol_names(self) -> list[str]:
        return sorted(self.protocols)

    def list_ids(self, ref: SampleRef) -> set[str]:
        return {Path(ref.source).stem, ref.source}

    def attack_type_of(self, table: dict[str, str], native: str, where: str | Path) -> str | None:
        """The canonical attack type of a dataset-native id; an unmapped id is a bad name, never a guess."""
        if native in table:
            return table[native]
        self.findings.bad_name(where, f"{self.name}: native attack id {native!r} has no canonical mapping "
                                      f"(known: {', '.join(sorted(table))})")
        return None

    def list_code(self, protocol: str, key: str, code: int) -> None:
        """Put list id `key` in group `code` of `protocol`. An id already in another group is a
        conflict: recorded for settle_conflicts and check-dataset, its earliest group (train, dev,
        test) kept meanwhile, whatever order the list files were read in."""
        table = self.protocols.setdefault(protocol, {})
        old = table.setdefault(key, code)
        if old != code:
            groups = self.conflicts.setdefault(protocol, {}).setdefault(key, [old])
            groups[:] = sorted(set(groups) | {code})
            table[key] = groups[0]

    def settle_conflicts(self, on_conflict: str) -> None:
        """Refuse the lists' conflicts (on_conflict ""), or leave each conflicting id out of its
        protocol ("drop"), or keep its earliest group in train, dev, test order ("first"); call
        before samples()."""
        protocol_conflicts = {p: ids for p, ids in self.conflicts.items() if p != self.row_conflicts}
        if not protocol_conflicts:
            return
        refuse_conflicts(protocol_conflicts, on_conflict, "listed in two groups of one protocol")
        if on_conflict == "drop":
            for protocol, ids in protocol_conflicts.items():
                for key in ids:
                    self.leave_out(protocol, key)
        self.findings.notes.append(conflict_note(protocol_conflicts, on_conflict))

    def leave_out(self, protocol: str, key: str) -> None:
        """Take a listed id out of one protocol (--on-conflict drop)."""
        self.protocols[protocol][key] = -1

    def settle_rows(self, refs: list[SampleRef], on_conflict: str) -> list[SampleRef]:
        """The enumerated rows once conflicts that only enumeration finds are settled (the folder
        adapter's manifest); the rows as they are for adapters without such conflicts."""
        return refs

    def protocol_codes(self, *keys: str) -> dict[str, int]:
        """protocol -> code of the first key a protocol's lists name (-1 when none does)."""
        out = {}
        for name, table in self.protocols.items():
            out[name] = next((table[k] for k in keys if k in table), -1)
        return out


DATASETS: Registry[DatasetAdapter] = Registry("dataset")

ON_CONFLICT = ("drop", "first")
GROUP_NAMES = {-1: "none", **{code: name for name, code in SPLIT_CODES.items()}}


def check_extra_columns(columns: list[str], where: str) -> None:
    """Extra meta columns (a manifest's, an adapter's) are named like plain identifiers and never
    like a column of the schema: a column named `sample_id` or `status` would overwrite the row's own,
    and `a/b`, `../x` or `zarr.json` would land outside the meta group."""
    from annotator.store.schema import META_COLUMNS

    for c in columns:
        if c in META_COLUMNS or c in RESERVED_COLUMNS:
            raise AnnotatorError(f"{where}: extra column {c!r} is a column the store already has; rename it "
                                 f"(for example {c}_orig)")
        if not c.strip() or c != c.strip() or c.startswith(".") or UNSAFE.search(c) or len(c) > 128:
            raise AnnotatorError(f"{where}: extra column {c!r} cannot be a meta column name (empty, leading or "
                                 "trailing spaces, a leading '.', '/', '\\', control characters or over 128 "
                                 "characters); rename it")


UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")  # a path separator would leave meta/; control characters mislead
RESERVED_COLUMNS = {"zarr.json", "path"}  # Zarr's own file; `path` is the manifest's, stored as `source`


def conflict_where(protocol: str, found: list) -> str:
    """Where an id's conflict lies: its groups ('train, test') or its manifest lines ('lines 2, 5')."""
    if protocol == MANIFEST_CONFLICTS:
        return f"lines {', '.join(map(str, found))}"
    return ", ".join(GROUP_NAMES.get(c, str(c)) for c in found)


def describe_conflicts(conflicts: dict[str, dict[str, list]], limit: int = 5) -> str:
    """'Protocol_1: 1_1_01_1 (train, test); ...' for the first `limit` ids of each protocol."""
    parts = []
    for protocol, ids in sorted(conflicts.items()):
        shown = ", ".join(f"{k} ({conflict_where(protocol, v)})" for k, v in sorted(ids.items())[:limit])
        more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
        parts.append(f"{protocol}: {shown}{more}")
    return "; ".join(parts)


def refuse_conflicts(conflicts: dict[str, dict[str, list]], on_conflict: str, what: str) -> None:
    """A one-line AnnotatorError naming the conflicting ids unless on_conflict says what to do."""
    if on_conflict in ON_CONFLICT:
        return
    if on_conflict:
        raise AnnotatorError(f"--on-conflict takes {' or '.join(ON_CONFLICT)}, got {on_conflict!r}")
    n = sum(len(v) for v in conflicts.values())
    raise AnnotatorError(f"{n} id(s) {what} (train/test leakage): {describe_conflicts(conflicts)}; "
                         "`annotate check-dataset` lists them all; pass --on-conflict drop to leave them out, or "
                         "--on-conflict first to keep each in its first group (train, dev, test) or manifest line")


def conflict_note(conflicts: dict[str, dict[str, list]], on_conflict: str) -> str:
    n = sum(len(v) for v in conflicts.values())
    how = "left out" if on_conflict == "drop" else "kept in their first group (train, dev, test) or manifest line"
    return f"--on-conflict {on_conflict}: {n} conflicting id(s) {how}: {describe_conflicts(conflicts)}"


def require_dir(root: str | Path | None, what: str) -> Path:
    if not root:
        raise AnnotatorError(f"dataset {what} needs --root DIR pointing at the dataset")
    p = Path(root).expanduser()
    if not p.is_dir():
        raise AnnotatorError(f"{what} root {root} is not a directory; pass --root DIR pointing at the dataset")
    return p.resolve()


def safe_join(root: Path, rel: str, where: str) -> Path:
    """root / rel, refusing absolute paths and `..` that would leave root (paths read from list files)."""
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or not rel.strip():
        raise AnnotatorError(f"{where}: path {rel!r} must be relative to the dataset root without '..'")
    return root / Path(*pure.parts)


def media_kind(path: Path) -> str | None:
    ext = path.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    return None


def media_files(base: Path, kind: str | None = None) -> list[Path]:
    """Media files under base (recursively), sorted; kind "video" or "image" restricts them."""
    return sorted(p for p in base.rglob("*") if p.is_file() and (media_kind(p) == kind if kind else media_kind(p)))


def refs_for_file(path: Path, root: Path, frames_per_video: int, **fields) -> list[SampleRef]:
    """The rows of one media file: one for an image, frames_per_video slots for a video."""
    source = path.relative_to(root).as_posix()
    kind = "video" if fields.get("media") and fields["media"].get("kind") else media_kind(path)  # HDF5: video
    if kind == "video":
        return [SampleRef(sample_id=f"{source}#{k}", path=str(path), source=source, video_id=source,
                          slot=k, n_slots=frames_per_video, **fields) for k in range(frames_per_video)]
    return [SampleRef(sample_id=source, path=str(path), source=source, video_id=source, **fields)]
