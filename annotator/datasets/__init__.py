"""Dataset adapters by name. Each turns a dataset root into SampleRefs without decoding media."""

from .base import DATASETS, Adapter
from . import folder, sample  # noqa: F401  (register adapters)

__all__ = ["DATASETS", "Adapter"]
