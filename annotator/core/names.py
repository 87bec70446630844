"""File names as text a store can hold. POSIX names are bytes; one that is not UTF-8 reaches Python
with lone surrogates (os.fsdecode's surrogateescape), which no UTF-8 writer accepts. Such a name is
stored with each undecodable byte as the four characters `\\xNN` (docs/store.md), and `on_disk`
maps a stored name back to the name the file system holds."""

from __future__ import annotations

import os
import re

_ESCAPED = re.compile(r"\\x([0-9a-fA-F]{2})")


def storable(text: str) -> str:
    """text with each surrogate-escaped byte written as \\xNN (unchanged when it is valid UTF-8)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def needs_escape(text: str) -> bool:
    return storable(text) != text


def on_disk(stored: str) -> str:
    """The file-system name (surrogate-escaped str, as os functions take it) of a stored name."""
    stored = str(stored)
    if "\\x" not in stored:
        return stored
    raw = _ESCAPED.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), stored)
    return os.fsdecode(os.fsencode(raw))
