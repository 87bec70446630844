"""The `annotate` program: flags in, library calls out; every user error is one line (click's
'Error: ...'). One module per group of commands: run.py, stores.py, datasets.py."""

from . import datasets, run, stores  # noqa: F401  (register their commands on the group)
from .group import cli


def main() -> None:
    cli(prog_name="annotate")
