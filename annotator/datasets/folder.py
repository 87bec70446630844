"""Adapter `folder`: a generic tree (bonafide/, attack/<type>/) or a manifest.csv."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from annotator.core.errors import AnnotatorError
from annotator.core.samples import SPLITS, SampleRef
from annotator.label import ATTACK_TYPES

from .base import (
    DATASETS,
    MANIFEST_CONFLICTS,
    DatasetAdapter,
    check_extra_columns,
    conflict_note,
    media_kind,
    refs_for_file,
    refuse_conflicts,
    safe_join,
)

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("path", "is_attack", "attack_type", "subject", "split")
MANIFEST_SPLITS = ("", *SPLITS)  # "" = the manifest gives none
_TRUE = {"1", "true", "yes", "attack"}
_FALSE = {"0", "false", "no", "bonafide", "real", "live"}


@DATASETS.register("folder")
class FolderAdapter(DatasetAdapter):
    name = "folder"
    description = (
        "Your own images and videos. Either ROOT/bonafide/** and ROOT/attack/<attack_type>/** "
        f"(attack_type one of: {', '.join(t for t in ATTACK_TYPES if t != 'bonafide')}; a sub-folder "
        "name under the class folder becomes the subject), or ROOT/manifest.csv with columns "
        "path,is_attack,attack_type,subject,split (split train/dev/test or empty; other columns kept "
        "in meta). Images: png jpg bmp tif webp; videos: avi mov mp4 mkv webm, sampled evenly."
    )

    dataset = "folder"  # meta/dataset of the rows

    def setup(self) -> None:
        self.manifest = self.root / MANIFEST
        if not self.manifest.exists():
            self._check_tree()

    def _check_tree(self) -> None:
        if not (self.root / "bonafide").is_dir() and not (self.root / "attack").is_dir():
            raise AnnotatorError(
                f"{self.root} has neither {MANIFEST} nor bonafide/ and attack/<type>/ folders; "
                "see `annotate datasets` for the folder layout"
            )
        attack = self.root / "attack"
        if attack.is_dir():
            unknown = sorted(p.name for p in attack.iterdir() if p.is_dir() and p.name not in ATTACK_TYPES)
            if unknown or "bonafide" in {p.name for p in attack.iterdir()}:
                bad = unknown or ["bonafide"]
                raise AnnotatorError(
                    f"unknown attack type folder(s) {', '.join(bad)} under {attack}; known types: "
                    f"{', '.join(t for t in ATTACK_TYPES if t != 'bonafide')}"
                )

    def samples(self) -> Iterator[SampleRef]:
        if self.manifest.exists():
            yield from self._from_manifest()
            return
        groups = [("bonafide", self.root / "bonafide")]
        attack = self.root / "attack"
        if attack.is_dir():
            groups += [(p.name, p) for p in sorted(attack.iterdir()) if p.is_dir()]
        for attack_type, base in groups:
            if not base.is_dir():
                continue
            for path in sorted(p for p in base.rglob("*") if p.is_file() and media_kind(p)):
                rel = path.relative_to(base).parts
                yield from refs_for_file(
                    path, self.root, self.k, is_attack=attack_type != "bonafide",
                    attack_type=attack_type, dataset=self.dataset, subject=rel[0] if len(rel) > 1 else "",
                )

    def _from_manifest(self) -> Iterator[SampleRef]:
        where = str(self.manifest)
        with open(self.manifest, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise AnnotatorError(f"{where}: missing column(s) {', '.join(missing)}; "
                                     f"expected {','.join(MANIFEST_COLUMNS)}")
            extras = [c for c in reader.fieldnames if c not in MANIFEST_COLUMNS]
            check_extra_columns(extras, where)
            first: dict[str, tuple[int, tuple]] = {}  # source -> (its first line, what that line says)
            repeats = 0
            for line, row in enumerate(reader, start=2):
                at = f"{where} line {line}"
                problem = self._row_problem(row)
                if problem:
                    self.findings.bad_name(at, problem)
                    continue
                path = safe_join(self.root, row["path"], at)
                is_attack = row["is_attack"].strip().lower() in _TRUE
                attack_type = (row["attack_type"] or "").strip() or "bonafide"
                fields = dict(is_attack=is_attack, attack_type=attack_type, subject=(row["subject"] or "").strip(),
                              split=(row["split"] or "").strip(), extra={c: row[c] or "" for c in extras})
                source = path.relative_to(self.root).as_posix()
                said = (is_attack, attack_type, fields["subject"], fields["split"], tuple(fields["extra"].items()))
                if source in first:  # one file is one sample: a repeat adds no row
                    repeats += 1
                    if first[source][1] != said:
                        lines = self.conflicts.setdefault(MANIFEST_CONFLICTS, {}).setdefault(source, [first[source][0]])
                        lines.append(line)
                    continue
                first[source] = (line, said)
                yield from refs_for_file(path, self.root, self.k, dataset=self.dataset, **fields)
            if repeats:
                self.findings.notes.append(f"{where}: {repeats} line(s) repeat a file listed before; each file is one "
                                           "sample, annotated once")

    def settle_rows(self, refs: list[SampleRef], on_conflict: str) -> list[SampleRef]:
        """The rows after the manifest's contradicting lines are settled: refused (""), the file left
        out ("drop"), or its first line kept ("first": the rows as enumerated)."""
        clash = {MANIFEST_CONFLICTS: self.conflicts.get(MANIFEST_CONFLICTS, {})}
        if not clash[MANIFEST_CONFLICTS]:
            return refs
        refuse_conflicts(clash, on_conflict, f"listed by {MANIFEST} with contradicting labels, subjects or splits")
        self.findings.notes.append(conflict_note(clash, on_conflict))
        if on_conflict == "drop":
            return [r for r in refs if r.source not in clash[MANIFEST_CONFLICTS]]
        return refs

    @staticmethod
    def _row_problem(row: dict) -> str:
        """What is wrong with a manifest row ("" when nothing)."""
        if not (row["path"] or "").strip():
            return "empty path"
        flag = (row["is_attack"] or "").strip().lower()
        if flag not in _TRUE | _FALSE:
            return f"is_attack must be 0/1 or true/false, got {row['is_attack']!r}"
        is_attack = flag in _TRUE
        attack_type = (row["attack_type"] or "").strip() or ("bonafide" if not is_attack else "")
        if attack_type not in ATTACK_TYPES:
            return f"unknown attack type {attack_type!r}; known types: {', '.join(ATTACK_TYPES)}"
        if is_attack != (attack_type != "bonafide"):
            return f"is_attack={row['is_attack']} contradicts attack_type={attack_type}"
        split = (row["split"] or "").strip()
        if split not in MANIFEST_SPLITS:
            return f"split must be train, dev, test or empty, got {split!r}"
        if media_kind(Path(row["path"])) is None:
            return f"{row['path']} is neither an image nor a video file by its extension"
        return ""
