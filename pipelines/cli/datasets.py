"""`annotate datasets | check-dataset | protocols`: the dataset adapters, a dataset root, and a store's
protocol lists."""

from __future__ import annotations

import json
import sys

import click

from .group import cli


@cli.command()
@click.argument("store_url")
@click.option("--dataset", required=True, help="Adapter the store was made with.")
@click.option("--root", type=str, default=None, help="Dataset root [the one the store was made from].")
@click.option("--protocol-dir", type=str, default=None, help="Folder holding the protocol lists.")
@click.option("--on-conflict", type=click.Choice(["drop", "first"]), default=None,
              help="Ids in two groups of one protocol: drop, or first (train before dev before test) [the store's setting].")
def protocols(store_url, dataset, root, protocol_dir, on_conflict):
    """(Re)write a finished store's protocols and per-row list fields (split, subject, the adapter's
    extra columns) from the dataset's lists; decodes nothing."""
    from pipelines.protocols import rewrite_protocols

    click.echo(rewrite_protocols(store_url, dataset, root, protocol_dir, on_conflict).report())


@cli.command("check-dataset")
@click.option("--dataset", required=True, help="Adapter name (`annotate datasets` lists them).")
@click.option("--root", type=str, default=None, help="Dataset root directory.")
@click.option("--protocol-dir", type=str, default=None, help="Folder holding the protocol lists.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Header probes in flight [2 per core].")
def check_dataset(dataset, root, protocol_dir, as_json, workers):
    """Report files per split and type, list/disk mismatches, subjects across train and test,
    unreadable headers and unparsable names; exit 1 when any of those (not unused media) is found."""
    from annotator.datasets.check import check_dataset as check
    from annotator.datasets import DATASETS

    adapter = DATASETS.create(dataset, root=root, protocol_dir=protocol_dir, strict=False)
    report = check(adapter, workers=workers)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.text())
    if report.problems:
        sys.exit(1)


@cli.command()
def datasets():
    """List the dataset adapters and the layout each expects."""
    from annotator.datasets import DATASETS

    for name in DATASETS.names():
        click.echo(f"{name}\n    {DATASETS.get(name).description}\n")
