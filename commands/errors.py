"""One-line errors for every command."""

from __future__ import annotations

import click

from annotator.errors import AnnotatorError, SettingError


class OneLineErrors(click.Group):
    """A click group that turns AnnotatorError into click's one-line 'Error: ...', naming a bad
    setting by its flag (settings and flags share their names, `_` written `-`)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SettingError as e:
            raise click.ClickException(e.as_flag()) from None
        except AnnotatorError as e:
            raise click.ClickException(str(e)) from None
