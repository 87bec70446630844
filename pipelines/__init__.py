"""Orchestration on Dask (enumerate -> shards -> tasks -> commit) and the `annotate` program (cli/).
The only package that imports dask."""
