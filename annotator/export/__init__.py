"""`annotate export`: a label store written as the folder layout another codebase reads
(docs/exports.md). Formats by name: `EXPORTERS.names()`."""

from . import cdcn, flip, folder, ssan, ssdg  # noqa: F401  (registers the formats)
from .base import EXPORTERS, Exporter, Row
from .run import export_store

__all__ = ["EXPORTERS", "Exporter", "Row", "export_store"]
