"""`annotate verify`: check a label store as it is on storage, and reopen what a rerun can mend.

Levels (docs/store.md, "Verify and repair"):
- "metadata": the root zarr.json and every node's own zarr.json (not only the consolidated copy that
  zarr and xarray read by default) against the layout of group.py and against the consolidated copy,
  and the commit markers. Reads a few kilobytes; `inspect` and `preview` run it.
- "quick": metadata plus the label contract of every committed shard (background is the complement
  of attack|live, pyramids are area means, failed rows are zero); what `augment` requires.
- "full": quick plus reading and decoding every chunk of every array of the committed shards, and
  the value ranges of each (the default of `annotate verify`).

Every finding is a `Problem` (problems.py): one line, and what mends it. repair.py carries out the
mends that need no annotation (reopening shards, recreating an empty array, restoring a node's
metadata from the consolidated copy, re-consolidating); a rerun of the same `annotate run` then
re-annotates exactly the reopened shards. The levels live in metadata_checks.py and shard_checks.py
(`check_shard`: plain zarr + numpy, run on the caller's parallel map).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed

from annotator import store
from annotator.label import PYRAMID_SIZES

from .metadata_checks import check_metadata
from .places import normalize
from .problems import LEVELS, RECREATE_FIX, Problem, Report, StoreLayout, describe_error
from .shard_checks import check_coordinates, check_shard


def verify(url: str, level: str = "full", workers: int | None = None, progress: bool = False,
           parallel_map: ParallelMap | None = None) -> Report:
    """Check the store at url (path or fsspec URL) at `level`. Chunk reads run through the caller's
    `parallel_map` (pipelines/cluster.py gives one over a Dask client), else on `workers` threads."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    url = normalize(url)
    try:
        problems, layout = check_metadata(url)
    except Exception as e:  # metadata this check did not foresee: still one line, never a traceback
        return Report([Problem(f"cannot read the store's metadata: {describe_error(e)}", fix=RECREATE_FIX)], None, level)
    if layout is None or level == "metadata":
        return Report(problems, layout, level)
    readable = [name for name in layout.nodes if _chunked_by_shard(name)]
    if level == "quick":
        readable = [n for n in readable if n in QUICK_ARRAYS]
    if "label" not in layout.nodes:  # reported once as missing; the pyramid checks need it
        readable = [n for n in readable if not n.startswith("pyramid/")]
    shards = [s for s in layout.shards if s.id in layout.committed]
    check = functools.partial(check_shard, url, names=readable, version=layout.version,
                              n_regions=len(layout.attrs.get("region_names", [])),
                              store_id=str(layout.attrs.get("store_id", "")))
    found: list[Problem] = []
    from tqdm import tqdm

    with tqdm(total=len(shards), unit="shard", desc="verify", disable=not progress) as bar:
        for result in (parallel_map or thread_map(workers or 4))(check, shards):
            found += result
            bar.update(1)
    if level == "full":
        found += check_coordinates(url, layout)
    order = {name: i for i, name in enumerate(layout.nodes)}
    found.sort(key=lambda p: (p.shards[:1], order.get(p.target, 0), p.text))
    return Report(problems + found, layout, level)


# (function, items) -> the function's results over the items, in any order, as they finish.
ParallelMap = Callable[[Callable, list], Iterable]


def thread_map(workers: int) -> ParallelMap:
    """A ParallelMap on `workers` threads (chunk reads release the GIL in the codecs)."""

    def run(fn: Callable, items: list) -> Iterator:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for f in as_completed([pool.submit(fn, item) for item in items]):
                yield f.result()

    return run


QUICK_ARRAYS = {"label", "landmarks", "meta/status", *(f"pyramid/{k}" for k in PYRAMID_SIZES)}


def _chunked_by_shard(name: str) -> bool:
    return name not in store.COORDINATES


# ---------------------------------------------------------------- metadata


# ---------------------------------------------------------------- chunks



# ---------------------------------------------------------------- repair


def require_sound(url: str, level: str, what: str, allow_pending: bool = False) -> StoreLayout:
    """The store's layout, or a one-line AnnotatorError naming the first problem `level` finds
    (for commands that read a store: preview at "metadata", augment and export at "quick")."""
    from annotator.core.errors import AnnotatorError

    store.open_store(url)  # no store there at all: "create one with `annotate run`", not "repair it"
    report = verify(url, level)
    problems = [p for p in report.problems if not (allow_pending and p.action == "rerun")]
    if problems:
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise AnnotatorError(f"{url} fails `annotate verify{' --quick' if level == 'quick' else ''}` "
                             f"({problems[0]}{more}); {what}")
    return report.layout
