"""`annotate inspect | preview | verify | diff | augment | serve | export`: commands on a finished store."""

from __future__ import annotations

import json
import sys

import click

from annotator.core.errors import AnnotatorError
from annotator.core.samples import Status

from .group import cli


@cli.command()
@click.argument("store_url")
@click.option("--failures", is_flag=True, help="List every failed row: source, frame, status, error.")
@click.option("--json", "as_json", is_flag=True, help="With --failures: print the rows as a JSON list.")
def inspect(store_url, failures, as_json):
    """Counts by split, attack type and status (rows of uncommitted shards as pending), failures per
    source file, protocols and provenance; exits 1 when the store's metadata is damaged."""
    from annotator.store.contents import read_contents

    if as_json and not failures:
        raise AnnotatorError("--json goes with --failures")
    contents = read_contents(store_url)
    if failures:
        rows = contents.failed()
        if as_json:
            click.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        else:
            for r in rows:
                click.echo(f"{r.source}\t{r.frame_index}\t{Status(r.status).name.lower()}\t{r.error}")
    else:
        click.echo(contents.text())
    if contents.problems:
        sys.exit(1)


@cli.command()
@click.argument("store_url")
@click.option("--out", required=True, help="PNG file to write.")
@click.option("--n", type=click.IntRange(min=1), default=16, show_default=True, help="Rows (samples) to draw.")
def preview(store_url, out, n):
    """Write a contact sheet: one row per sample - image, attack, live, background, depth, regions."""
    from annotator.store.places import require_writable
    from annotator.serve.preview import contact_sheet
    from annotator.store.verify import require_sound

    if not out.lower().endswith(".png"):
        raise AnnotatorError(f"--out must be a .png file, got {out}")
    require_writable(out, "--out", parent_must_exist=True)
    require_sound(store_url, "metadata", "run `annotate verify` on it", allow_pending=True)
    rows = contact_sheet(store_url, out, n)
    click.echo(f"wrote {out} ({rows} samples)")


@cli.command()
@click.argument("store_url")
@click.option("--quick", is_flag=True, help="Only metadata and the label contract (labels, pyramids, landmarks).")
@click.option("--repair", "do_repair", is_flag=True,
              help="Reopen the shards with damaged chunks and mend metadata, so that rerunning the store's "
                   "`annotate run` command re-annotates exactly those shards.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Reading threads [4].")
@click.option("--scheduler", "scheduler_address", type=str, default=None,
              help="Read chunks as tasks of the Dask scheduler at ADDRESS instead of local threads.")
def verify(store_url, quick, do_repair, workers, scheduler_address):
    """Check the store as it is on storage: every node's metadata, every chunk of the committed shards
    decoded and its values checked. Exits 1 listing the problems, one line each."""
    from annotator.store.places import normalize
    from annotator.store.verify import verify as check

    url = normalize(store_url)
    level = "quick" if quick else "full"
    if scheduler_address:
        from pipelines.cluster import connect, dask_map  # an unreachable address is a one-line error there

        with connect(scheduler_address) as client:
            report = check(url, level, workers, progress=True, parallel_map=dask_map(client))
    else:
        report = check(url, level, workers, progress=True)
    for p in report.problems:
        click.echo(f"problem: {p}", err=True)
    if not report.problems:
        click.echo(f"{store_url}: ok ({level})")
        return
    click.echo(f"{store_url}: {len(report.problems)} problem(s)", err=True)
    if do_repair:
        _repair(report)
    elif any(p.action not in ("", "rerun") for p in report.problems):
        click.echo(f"`annotate verify {store_url} --repair` reopens what a rerun can mend", err=True)
    sys.exit(1)


def _repair(report) -> None:
    from annotator.store.places import require_writable
    from annotator.store.repair import repair, rerun_command
    from pipelines.lock import StoreLock

    if report.layout is None:  # nothing readable to mend
        click.echo("no rerun can mend this store: see what the problem says to do", err=True)
        return
    require_writable(report.layout.url, "--repair: the store")
    with StoreLock(report.layout.url):
        result = repair(report)
    for line in result.done:
        click.echo(f"repaired: {line}", err=True)
    if result.reopened:
        click.echo(f"reopened {len(result.reopened)} shard(s): {', '.join(map(str, result.reopened))}", err=True)
    if result.reopened or any(p.action == "rerun" for p in report.problems):
        click.echo("now rerun the command that made the store; it re-annotates only the uncommitted shards:\n  "
                   + rerun_command(report.layout), err=True)
    if result.left:
        click.echo(f"{len(result.left)} problem(s) no rerun can mend: see what each line above says to do", err=True)


@cli.command()
@click.argument("store_a")
@click.argument("store_b")
@click.option("--worst", type=click.IntRange(min=0), default=20, show_default=True,
              help="Matched rows that differ to list, lowest mean channel IoU first (and rows of one store only).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary and every row (IoUs per channel and region, statuses) as one JSON object "
                   "instead of the text report.")
@click.option("--out", default=None, metavar="FILE.csv|FILE.json",
              help="Also write every row to FILE: .csv (one line per sample) or .json (as --json prints).")
def diff(store_a, store_b, worst, as_json, out):
    """Compare two stores of the same samples row by row, matched by sample_id and frame_index: IoU per
    label channel and region, status changes, rows in one store only. Exit 0 whatever differs."""
    from annotator.store.diff import diff_stores, table_format
    from annotator.store.diff_report import report
    from annotator.store.places import refuse_overlap, require_writable

    if out:
        table_format(out)
        for url, name in ((store_a, "store A"), (store_b, "store B")):
            refuse_overlap(out, url, name)
        require_writable(out, "--out", parent_must_exist=True)
    table = diff_stores(store_a, store_b, progress=sys.stderr.isatty())
    if out:
        table.write(out)
    if as_json:
        table.write_json(sys.stdout)
    else:
        click.echo(report(table, worst))
        if out:
            click.echo(f"\nwrote {out} ({len(table)} rows)")


@cli.command()
@click.argument("store_url")
@click.option("--out", required=True, help="The augmented store to write.")
@click.option("--gamma", type=float, default=0.5, show_default=True,
              help="Share of each batch that is augmented, in [0, 1].")
@click.option("--rho", type=int, default=1, show_default=True,
              help="Exchange steps (regions taken) per augmented sample, 0..5: eyes, brows, nose, mouth, skin.")
@click.option("--scheme", type=str, default="integrated", show_default=True,
              help="integrated (donor shape), overlay (covers the recipient's region), clipping (clipped to it).")
@click.option("--copies", type=int, default=1, show_default=True, help="Augmented copies of the store (1..1000).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same store).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out store.")
def augment(store_url, out, gamma, rho, scheme, copies, seed, overwrite):
    """MCREA (Fine-grained annotation, Algorithm 1): exchange aligned face regions between samples into a new store."""
    from annotator.augment.store import augment_store

    res = augment_store(store_url, out, gamma, rho, scheme, copies, seed, overwrite)
    click.echo(f"wrote {out}: {res['rows']} rows, {res['augmented']} augmented with {res['exchanges']} exchanges")


@cli.command()
@click.argument("store_url")
@click.option("--port", type=int, default=8765, show_default=True,
              help="TCP port to listen on: 1 .. 65535 (checked before the store is read).")
@click.option("--host", type=str, default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but this machine's loopback makes the page reachable by others.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="A host name browsers may use to reach the page, besides loopback and --host (repeatable; "
                   "required with --host 0.0.0.0 or ::). Other names are refused (DNS rebinding).")
@click.option("--allow-flags", is_flag=True, help="Let the page flag samples bad / good (writes the store's qa/ group).")
@click.option("--compare", "compare", type=str, default=None, metavar="B",
              help="A second store of the same dataset and crop size: the sample view shows its layers and the IoUs.")
@click.option("--audit", "audit", type=str, default=None, metavar="PATH",
              help="A `fas-train audit` table (audit.csv) of this store: its scores join the rows as columns.")
def serve(store_url, port, host, allowed_hosts, allow_flags, compare, audit):
    """Browse and audit a store in the browser: thumbnails, overlays, sample view, flags (docs/serve.md)."""
    from annotator.serve import serve as run_server

    run_server(store_url, host, port, allow_flags, allowed_hosts=allowed_hosts, compare=compare, audit=audit)


@cli.command()
@click.argument("store_url")
@click.option("--format", "fmt", required=True,
              help="cdcn, ssdg, ssan, flip-mcio, flip-wcs or folder (docs/exports.md).")
@click.option("--out", required=True, help="The export folder (a rerun with the same settings resumes).")
@click.option("--protocol", type=str, default="split", show_default=True,
              help="The groups to export: protocols/<name>, `split` (meta/split) or `all`.")
@click.option("--workers", type=int, default=None,
              help="Threads writing shards, at most 4 per core [the CPU count]. One export writes a folder "
                   "at a time (.export/lock.json).")
@click.option("--lists", type=str, default=None,
              help="flip-mcio, flip-wcs: a folder of FLIP's list files (a copy of its data/MCIO/txt or data/WCS/txt): "
                   "every listed name the store can produce is written at its listed path.")
@click.option("--size", type=int, default=None, help="flip-mcio, flip-wcs: the side of the written crops [224].")
def export(store_url, fmt, out, protocol, workers, lists, size):
    """Write a store as the folder layout another codebase reads (CDCN, SSDG, SSAN, FLIP, plain PNGs)."""
    from annotator.export import export_store

    res = export_store(store_url, fmt, out, protocol, workers, options={"lists": lists, "size": size})
    groups = ", ".join(f"{g} {n}" for g, n in res["groups"].items())
    resumed = f", {res['resumed']} of {res['shards']} shards already done" if res["resumed"] else ""
    rows = f"{res['rows']} rows ({groups})" if res["written_rows"] == res["rows"] else \
        f"{res['written_rows']} of {res['rows']} usable rows (the listed ones)"
    click.echo(f"wrote {out}: {res['images']} image files of {rows} as {fmt}{resumed}; see {out}/README.md")
    if res.get("unmatched"):
        click.echo(f"{res['unmatched']} listed name(s) the store cannot produce: {out}/unmatched.txt", err=True)
