"""One-line errors for every command."""

from __future__ import annotations

import click

from annotator.errors import AnnotatorError


class OneLineErrors(click.Group):
    """A click group that turns AnnotatorError into click's one-line 'Error: ...'."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AnnotatorError as e:
            raise click.ClickException(str(e)) from None
