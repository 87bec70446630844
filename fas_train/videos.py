"""Whole-video sequences from label stores, for models with a video branch (ccdd --video).

A store keeps a video's frames together (docs/store.md), so a video's rows lie in one chunk or in
neighbouring ones. The stream walks a run of neighbouring chunks in order, reading each once, and
emits a video as soon as its last chunk is in; a chunk is dropped when no waiting video needs it,
so a worker holds a few chunks whatever the store's size. Every video of the selection comes out
once per epoch, as one sequence of T of its selected frames in frame order (meta/frame_index, then
row order): training draws T of them at random, evaluation takes T evenly spaced ones, and a video
with fewer than T frames repeats some (evenly spaced, each at least once).

Runs: chunks are joined into one run when a video spans both. When videos chain a whole store
together, training with several workers cuts the runs into 4 pieces per worker (cut places drawn
anew each epoch): a video crossing a cut comes from the piece holding its first row, with the
frames of that piece only (about one video per piece and epoch). Evaluation never cuts.

A batch is flattened to rows so that it travels like StoreStream's (shared-memory ring, uint8
layouts): image (B * T, S, S, 3), index / is_attack / domain / attack_code (B * T,), sequence
after sequence, frame after frame. Flips apply to whole sequences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import get_worker_info

from annotator.core.errors import AnnotatorError

from fas_train.data import StoreStream
from fas_train.selection import Selection

PIECES_PER_WORKER = 4


def video_rows(sel: Selection) -> list[np.ndarray]:
    """Positions in the selection of each video's rows, in frame order, videos in store order.
    Videos are told apart by (store, meta/video_id); a row without a video_id is a video of its own."""
    frame = sel.meta.get("frame_index")
    frame = np.asarray(frame, dtype=np.int64) if frame is not None and frame.dtype != object else None
    videos = []
    for p, off in zip(sel.parts, sel.offsets):
        pos = np.arange(off, off + len(p.rows))
        ids = sel.meta["video_id"][pos].astype(str)
        ids = np.where(ids == "", np.char.add("row:", pos.astype(str)), ids)
        _, inverse = np.unique(ids, return_inverse=True)
        order = np.lexsort((pos, frame[pos] if frame is not None else pos, inverse))
        bounds = np.nonzero(np.diff(inverse[order]))[0] + 1
        videos.extend(sorted((pos[o] for o in np.split(order, bounds) if len(o)), key=lambda v: int(v.min())))
    return videos


def pick_frames(n: int, frames: int, rng: np.random.Generator | None) -> np.ndarray:
    """Indices (frames,) into a video of n frames, ascending: T distinct ones drawn by rng, or T
    evenly spaced ones when rng is None or n < T."""
    if rng is not None and n >= frames:
        return np.sort(rng.choice(n, frames, replace=False))
    return np.linspace(0, n - 1, frames).round().astype(np.int64)


@dataclass
class Run:
    """Neighbouring chunks of one part read in order, and the videos they complete."""

    part: int
    chunks: np.ndarray  # chunk ids, ascending
    videos: list[int]  # video numbers, by first chunk


class VideoStream(StoreStream):
    """Batches of `sequences` whole-video sequences of `frames` frames each (see the module text).
    Use with fas_train.data.StoreLoader. shuffle: run order and the sequences (within a buffer of
    `buffer` sequences) are shuffled per epoch from (seed, epoch), and frames are drawn at random."""

    def __init__(self, selection: Selection, fields: tuple[str, ...], sequences: int, frames: int,
                 shuffle: bool = False, seed: int = 0, flip: bool = False, buffer: int = 64):
        if sequences < 1 or frames < 1:
            raise AnnotatorError(f"a video batch needs at least 1 sequence of at least 1 frame, got "
                                 f"{sequences} x {frames}")
        self.frames, self.sequences, self.buffer = frames, sequences, buffer
        self.videos = video_rows(selection)
        super().__init__(selection, fields, sequences * frames, shuffle=shuffle, seed=seed, flip=flip)
        self.group = frames  # flips per sequence
        self.video_of = np.empty(len(selection), np.int64)  # position -> video number
        for v, pos in enumerate(self.videos):
            self.video_of[pos] = v

    def __len__(self) -> int:
        return math.ceil(len(self.videos) / self.sequences)

    def _plan(self) -> list[Run]:
        """The runs: per part, its chunks with selected rows, split where no video spans the gap."""
        runs, bounds = [], np.asarray(self.sel.offsets + [len(self.sel)])
        self._span: list[tuple[int, int]] = []  # per video: (first, last) chunk id
        for k, p in enumerate(self.sel.parts):
            chunks = np.unique(p.rows // p.chunk)
            linked = np.zeros(len(chunks) + 1, np.int64)  # difference array of spans over the gaps
            first_of = []
            for v in range(len(self._span), len(self.videos)):
                pos = self.videos[v]
                if pos[0] >= bounds[k + 1]:
                    break
                c = p.rows[pos - bounds[k]] // p.chunk
                lo, hi = int(c.min()), int(c.max())
                self._span.append((lo, hi))
                i, j = np.searchsorted(chunks, [lo, hi])
                linked[i] += 1
                linked[j] -= 1
                first_of.append((i, v))
            cuts = np.nonzero(np.cumsum(linked)[:len(chunks) - 1] == 0)[0] + 1
            starts = np.concatenate([[0], cuts])
            for s, piece in zip(starts, np.split(chunks, cuts)):
                runs.append(Run(k, piece, []))
            for i, v in first_of:
                runs[len(runs) - len(starts) + int(np.searchsorted(starts, i, side="right") - 1)].videos.append(v)
        return runs

    def pieces(self, workers: int, rng: np.random.Generator) -> list[Run]:
        """The runs of one epoch: cut into about PIECES_PER_WORKER x workers pieces when training
        with several workers (at places drawn by rng), else as planned. A video goes to the piece
        holding its first chunk."""
        if not self.shuffle or workers < 2:
            return self._units
        total = sum(len(r.chunks) for r in self._units)
        length = max(1, math.ceil(total / (PIECES_PER_WORKER * workers)))
        out = []
        for r in self._units:
            if len(r.chunks) <= length:
                out.append(r)
                continue
            phase = int(rng.integers(length))
            cuts = [c for c in range(phase or length, len(r.chunks), length)]
            starts = np.asarray([0, *cuts])
            pieces = [Run(r.part, ch, []) for ch in np.split(r.chunks, cuts)]
            for v in r.videos:
                i = int(np.searchsorted(r.chunks, self._span[v][0]))
                pieces[int(np.searchsorted(starts, i, side="right") - 1)].videos.append(v)
            out.extend(pieces)
        return out

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        rng = np.random.default_rng([self.seed, self.epoch])
        runs = self.pieces(nw, rng)  # the same in every worker: rng has the same state in all of them
        order = rng.permutation(len(runs)) if self.shuffle else np.arange(len(runs))
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)) + wid)
        draw = rng if self.shuffle else None
        arrays: dict[int, dict] = {}
        blocks: list[dict[str, np.ndarray]] = []
        pending: list[np.ndarray] = []  # sequences waiting: (T, 3) of (block, row in block, position)
        alive: set[int] = set()  # blocks still holding their chunk
        for run in (runs[i] for i in order[wid::nw]):
            k, p, off = run.part, self.sel.parts[run.part], self.sel.offsets[run.part]
            ends: dict[int, list[int]] = {}  # chunk id -> the videos of this run that it completes
            for v in run.videos:
                ends.setdefault(min(self._span[v][1], int(run.chunks[-1])), []).append(v)
            # after[i]: the first chunk id still needed once chunk i is read (videos completed later)
            opened = np.full(len(run.chunks) + 1, np.iinfo(np.int64).max)
            for c, vids in ends.items():
                opened[np.searchsorted(run.chunks, c)] = min(self._span[v][0] for v in vids)
            after = np.minimum.accumulate(opened[::-1])[::-1]
            base = len(blocks)  # blocks of this run: base + i for run.chunks[i], in reading order
            for i, c in enumerate(run.chunks.tolist()):
                blocks.append(self._read(arrays, k, c, ())[0])
                alive.add(base + i)
                for v in ends.get(c, []):
                    rows = p.rows[self.videos[v] - off]
                    chunk = rows // p.chunk
                    inside = (chunk >= run.chunks[0]) & (chunk <= c)  # a cut video: this piece's frames
                    pick = np.flatnonzero(inside)[pick_frames(int(inside.sum()), self.frames, draw)]
                    block = base + np.searchsorted(run.chunks, chunk[pick])
                    pending.append(np.stack([block, rows[pick] - chunk[pick] * p.chunk, self.videos[v][pick]], 1))
                if len(pending) >= max(self.sequences, self.buffer):
                    pending = yield from self._emit(blocks, pending, rng, gen, info is not None, final=False)
                first = base + int(np.searchsorted(run.chunks, after[i + 1]))  # open videos need blocks from here
                live = {b for b in alive if first <= b <= base + i} | {int(b) for s in pending for b in s[:, 0]}
                for b in alive - live:
                    blocks[b] = {}  # free a chunk no waiting or open video needs
                alive &= live
        if pending:
            yield from self._emit(blocks, pending, rng, gen, info is not None, final=True)

    def _emit(self, blocks, pending, rng, gen, shared: bool, final: bool):
        """Batches of the waiting sequences (shuffled first when training): all of them when
        final, else as many whole batches as they fill. Returns the sequences left waiting."""
        if self.shuffle:
            pending = [pending[i] for i in rng.permutation(len(pending))]
        full = len(pending) if final else len(pending) // self.sequences * self.sequences
        if full:
            yield from self._batches(blocks, np.concatenate(pending[:full]), gen, shared)
        return pending[full:]
