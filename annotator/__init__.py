"""Per-frame library of the FAS annotator: numpy in, numpy out. Never imports dask."""

__version__ = "0.1.0"
