"""Orchestration on Dask: enumerate -> shards -> tasks -> commit. The only package that imports dask."""
