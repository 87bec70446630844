"""Dataset adapters by name. Each turns a dataset root into SampleRefs without decoding media."""

from . import casia_fasd, celeba_spoof, folder, msu_mfsd, oulu_npu, replay_attack, sample, siw_m, wmca  # noqa: F401  (register adapters)
from .base import DATASETS, DatasetAdapter

__all__ = ["DATASETS", "DatasetAdapter"]
