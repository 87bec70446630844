"""Adapter `sample`: the tiny dataset shipped in the package, annotator/datasets/sample_data/ (folder layout)."""

from __future__ import annotations

import os
from pathlib import Path

from annotator.core.errors import AnnotatorError

from .base import DATASETS
from .folder import FolderAdapter


def sample_root() -> Path:
    """The shipped sample_data/ beside this module (in a checkout and in an installed wheel), or
    $ANNOTATOR_SAMPLE_DATA."""
    env = os.environ.get("ANNOTATOR_SAMPLE_DATA")
    return Path(env) if env else Path(__file__).resolve().parent / "sample_data"


@DATASETS.register("sample")
class SampleAdapter(FolderAdapter):
    name = "sample"
    description = (
        "The bundled sample_data/: a real public-domain face (scikit-image's astronaut) with synthetic "
        "print, replay and partial-eye attacks and a short video, in the `folder` layout. Needs no --root."
    )

    dataset = "sample"

    def __init__(self, root: str | None = None, frames_per_video: int = 10, protocol_dir: str | None = None,
                 strict: bool = True):
        root = root or str(sample_root())
        if not Path(root).is_dir():
            raise AnnotatorError(f"bundled sample data not found at {root}; reinstall fas-annotator or set ANNOTATOR_SAMPLE_DATA to a folder of that layout")
        super().__init__(root, frames_per_video, protocol_dir, strict)
