"""Companion trainer: reads label stores, trains and evaluates FAS models; the `fas-train` program (cli.py)."""

MAX_BATCH = 4096  # rows per step: the loader holds a few batches in shared memory at once
