"""Segmenter `sam`: Segment Anything prompted with face landmarks (docs/papers.md: Fine-grained annotation).

checkpoint.py  validation and loading of official checkpoints
prompts.py     the mapping F from landmarks to point prompts, per region and attack instrument
select.py      choice among SAM's multimask outputs by agreement with the geometry prior; fallback
attention.py   fused attention (SDPA) keeping SAM's decomposed relative-position term
segmenter.py   the batched, stateful wrapper
registration.py  its registration as "sam": run-time settings, the checkpoint checked before any work
"""
