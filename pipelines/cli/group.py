"""The `annotate` command group: one-line errors (annotator/console.py) and logging."""

from __future__ import annotations

import logging

import click

from annotator.console import OneLineErrors


@click.group(cls=OneLineErrors)
@click.version_option(package_name="fas-annotator")
def cli():
    """Fine-grained face anti-spoofing labels: annotate datasets into Zarr label stores."""


def setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
