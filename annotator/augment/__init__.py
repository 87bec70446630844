"""MCREA, the Multi-Channel Region Exchange Augmentation of Fine-grained annotation (docs/papers.md; Algorithm 1, Figure 4).

mcrea.py   the batch transform in torch (CPU or GPU tensors), used on the fly by trainers
store.py   `annotate augment`: the same transform over a label store, written as a new store
"""

from .mcrea import EXCHANGE_REGIONS, SCHEMES, Exchange, mcrea

__all__ = ["EXCHANGE_REGIONS", "SCHEMES", "Exchange", "mcrea"]
