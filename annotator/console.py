"""What the command-line programs `annotate` (pipelines/cli/) and `fas-train` (fas_train/cli.py)
share: one-line errors, and a quiet terminal.

A quiet terminal: the native libraries under MediaPipe (absl, glog, TensorFlow Lite) write their
log lines straight to file descriptor 2, from every worker process, into the progress bar. Python's
logging cannot reach them, so the process's descriptor 2 is routed through a pipe whose reader drops
those lines and passes everything else on at once. Worker processes started afterwards inherit the
pipe, so one filter covers a local cluster. `-vv` leaves descriptor 2 alone.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

import click

from annotator.core.errors import AnnotatorError, SettingError


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
        except click.UsageError as e:  # click's own checks (a flag's type, a missing flag): no usage block
            where = e.ctx.command_path if e.ctx is not None else ctx.command_path
            error = OneLineUsageError(f"{e.format_message().rstrip('.')}; see `{where} --help`")
            raise error from None


class OneLineUsageError(click.UsageError):
    """A usage error shown as its one line (exit status 2, as click's), without the usage block."""

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", file=file or sys.stderr)

# A whole third-party line: glog/absl "W0000 00:00:1796164397.77 23719 file.cc:114] ...", or one of
# two fixed TFLite/absl notes. They may follow a progress bar's text on the same line.
NOISE = re.compile(rb"(?:[IWEF]\d{4} [\d:. ]+\d+ [\w./-]+:\d+\] |INFO: Created TensorFlow Lite"
                   rb"|WARNING: All log messages before absl::InitializeLog)[^\n]*\n")
# The start of such a line whose newline has not arrived yet: held back until it does.
PARTIAL = re.compile(rb"(?:[IWEF]\d{4} |INFO: |WARNING: All )[^\n\r]*$")
_installed: dict = {}


def clean(pending: bytes) -> tuple[bytes, bytes]:
    """(what to write now, what to hold) of the bytes read so far."""
    out = NOISE.sub(b"", pending)
    held = PARTIAL.search(out)
    if held and len(out) - held.start() < 4096:
        return out[:held.start()], out[held.start():]
    return out, b""


def _pump(read_fd: int, out_fd: int) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        now, pending = clean(pending + chunk)
        if now:
            os.write(out_fd, now)
    if pending:
        os.write(out_fd, pending)


def filter_native_stderr() -> None:
    """Route descriptor 2 of this process (and of the processes it starts) through the filter."""
    if _installed:
        return
    os.environ.setdefault("GLOG_minloglevel", "2")  # glog's own switch, for libraries that honour it
    sys.stderr.flush()
    original = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_pump, args=(read_fd, original), name="stderr-filter", daemon=True)
    thread.start()
    _installed.update(original=original, thread=thread)
    atexit.register(restore_stderr)


def restore_stderr() -> None:
    """Put descriptor 2 back and let the filter drain what is left (workers may still hold the pipe)."""
    if not _installed:
        return
    sys.stderr.flush()
    os.dup2(_installed["original"], 2)  # closes this process's write end of the pipe
    _installed["thread"].join(timeout=2.0)
    _installed.clear()
