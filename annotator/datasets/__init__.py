"""Dataset adapters by name. Each turns a dataset root into SampleRefs without decoding media."""

from .base import DATASETS, DatasetAdapter
from . import casia_fasd, folder, msu_mfsd, oulu_npu, replay_attack, sample, siw_m, wmca  # noqa: F401  (register adapters)

__all__ = ["DATASETS", "DatasetAdapter"]
