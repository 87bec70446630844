"""What verify finds: a Problem (one line and what mends it), the store's layout as its metadata says, and the report."""

from __future__ import annotations

from dataclasses import dataclass, field

from annotator import store

LEVELS = ("metadata", "quick", "full")


RECREATE_FIX = ("no rerun can mend this: restore the file from a backup, or re-create the store with its "
                "`annotate run` command plus --overwrite")


@dataclass(frozen=True)
class Problem:
    """One finding. `action` says how repair mends it: "reopen" (uncommit `shards`), "recreate"
    (an empty `target` array from the layout, every shard reopened), "restore" (`target`'s zarr.json
    from the consolidated copy), "reconsolidate", "remove" (only `paths` to remove: an unreadable
    failure record or lock, a leftover temporary file), "rerun" (the next `annotate run` does it, nothing to
    repair), or "" (no rerun can: `fix` says what to do)."""

    text: str
    action: str = ""
    shards: tuple[int, ...] = ()
    target: str = ""
    fix: str = ""
    paths: tuple[str, ...] = ()  # store-relative files or folders in the way, which repair removes

    def __str__(self) -> str:
        return f"{self.text}; {self.fix}" if self.fix else self.text


@dataclass
class StoreLayout:
    """What the metadata level learned: enough to read chunks and to repair."""

    url: str
    attrs: dict
    version: int
    n: int
    size: int
    shard_size: int
    nodes: dict[str, dict] = field(default_factory=dict)  # array path -> its own (readable) zarr.json
    expected: dict[str, tuple] = field(default_factory=dict)  # array path -> (shape, dtype, dims)
    committed: dict[int, dict] = field(default_factory=dict)

    @property
    def shards(self) -> list[store.Shard]:
        return store.plan_shards(self.n, self.shard_size)

    def all_shard_ids(self) -> list[int]:
        """Every shard id: what recreating an array reopens."""
        return [s.id for s in self.shards]


@dataclass
class Report:
    problems: list[Problem]
    layout: StoreLayout | None
    level: str

    @property
    def ok(self) -> bool:
        return not self.problems


def describe_error(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if "checksum do not match" in text:
        return "crc32c checksum mismatch (its bytes changed on storage)"
    return f"{type(e).__name__}: {text}"[:200]
