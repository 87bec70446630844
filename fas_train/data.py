"""Training data from label stores: the chunk-reading batch stream over a Selection (selection.py
picks the rows), its shared-memory batch ring and its DataLoader.

A store is chunked by shard along the sample axis (docs/store.md), so the stream's unit of
work is one chunk: a DataLoader worker reads whole chunks of the arrays a model needs (one decode
per array and chunk), keeps the selected rows, shuffles them in a buffer of several chunks and
emits ready batches (DataLoader batch_size=None), in the store's uint8 layouts. Turning them into
float inputs and the photometric / crop augmentation happen on the training device (inputs.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from annotator.core.errors import AnnotatorError
from annotator.store import open_store
from annotator.store.schema import array_specs

from fas_train.selection import Selection

# Per-row columns every batch carries besides the arrays (they cross the worker boundary as they are).
SMALL = ("index", "is_attack", "domain", "attack_code", "row_weight")
# Per-row arrays a batch may carry: the store's (annotator/store/schema.py), pyramid levels by name.
FIELDS = tuple(name for name in array_specs(1 << 5) if not name.startswith("pyramid/"))


class StoreStream(IterableDataset):
    """Batches of a Selection, read chunk by chunk. Use with DataLoader(batch_size=None).

    Each batch is a dict of tensors in the store layouts: image (B, S, S, 3) uint8, label
    (B, 3, S, S) uint8, depth / region (B, S, S) uint8, landmarks (B, P, 3) float32 (P: the stores'
    landmark layout, 478 or 68),
    pyramid/<k> (B, 3, k, k) uint8 (only the `fields` asked for), plus index (B,) int64 (position
    in the Selection) and is_attack (B,) bool.

    shuffle: chunk order and rows (within a buffer of `buffer_chunks` chunks) are shuffled per epoch
    from (seed, epoch); call set_epoch(e) before each epoch. Without shuffle the order is the
    selection's order, so evaluation is deterministic. mcrea: kwargs of annotator.augment.mcrea
    (gamma, rho, scheme) applied to each batch in the worker; flip: random horizontal flips there.
    """

    def __init__(self, selection: Selection, fields: tuple[str, ...], batch_size: int, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False, buffer_chunks: int = 4, mcrea: dict | None = None,
                 flip: bool = False, balance: bool = False):
        super().__init__()
        bad = [f for f in fields if f not in FIELDS and not f.startswith("pyramid/")]
        if bad:
            raise AnnotatorError(f"unknown fields {bad}; known: {', '.join(FIELDS)}, pyramid/<k>")
        if batch_size < 1:
            raise AnnotatorError(f"batch size must be at least 1, got {batch_size}")
        self.sel, self.batch_size, self.shuffle, self.seed = selection, batch_size, shuffle, seed
        self.drop_last, self.buffer_chunks, self.mcrea, self.flip = drop_last, buffer_chunks, mcrea, flip
        self.balance = balance and self.batch_size >= 2
        need = set(fields) | (set(FIELDS) if mcrea else set())
        self.fields = tuple(f for f in FIELDS if f in need) + tuple(sorted(need - set(FIELDS)))
        # In shared memory: workers that persist across epochs (StoreLoader) see set_epoch().
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._units = self._plan()
        self._domain = selection.domain
        self._attack_code = selection.attack_code if selection.meta else np.full(len(selection), -1, np.int64)
        self._weight = selection.weights
        self.ring: BatchRing | None = None  # set by StoreLoader when batches travel through shared slots
        self.group = 1  # rows flipped together (a video stream's sequences)

    def field_specs(self) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
        """Per-row shape and dtype of each field; one-line error when the stores disagree."""
        specs: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
        for p in self.sel.parts:
            root = open_store(p.url)
            for f in self.fields:
                a = root[f]
                spec = (tuple(a.shape[1:]), torch.from_numpy(np.zeros(0, a.dtype)).dtype)
                if specs.setdefault(f, spec) != spec:
                    same = "--landmarker (one landmark layout)" if f == "landmarks" else "--size"
                    raise AnnotatorError(f"{f} has shape {spec[0]} in {p.url} but {specs[f][0]} in another store; "
                                         f"annotate all stores of one run with the same {same}")
        return specs

    def set_epoch(self, epoch: int) -> None:
        self._epoch[0] = epoch

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def __len__(self) -> int:
        n = len(self.sel)
        if self.balance:  # every row of the larger class once, each batch half of it
            attack = int(self.sel.meta["is_attack"].sum())
            if 0 < attack < n:
                return math.ceil(max(attack, n - attack) / (self.batch_size // 2))
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _plan(self) -> list[tuple[int, int, np.ndarray]]:
        """(part, chunk id, positions in the selection) for every chunk holding selected rows."""
        units = []
        for k, (p, off) in enumerate(zip(self.sel.parts, self.sel.offsets)):
            chunk_of = p.rows // p.chunk
            bounds = np.nonzero(np.diff(chunk_of))[0] + 1
            for pos in np.split(np.arange(len(p.rows)), bounds):
                if len(pos):
                    units.append((k, int(chunk_of[pos[0]]), pos + off))
        return units

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self._units)) if self.shuffle else np.arange(len(self._units))
        mine = [self._units[i] for i in order[wid::nw]]
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)) + wid)
        if self.balance:
            yield from self._balanced(mine, rng, gen, info is not None)
            return
        arrays: dict[int, dict] = {}
        blocks: list[dict[str, np.ndarray]] = []  # decoded chunks still holding rows to emit
        # rows waiting in the buffer: (block, row in block, position in the selection)
        pending = np.empty((0, 3), np.int64)
        for k, c, positions in mine:
            part = self.sel.parts[k]
            block, local = self._read(arrays, k, c, positions)
            blocks.append(block)
            rows = np.stack([np.full(len(local), len(blocks) - 1), local, positions], axis=1)
            pending = np.concatenate([pending, rows])
            if len(pending) >= max(self.batch_size, self.buffer_chunks * part.chunk):
                if self.shuffle:
                    pending = pending[rng.permutation(len(pending))]
                full = len(pending) // self.batch_size * self.batch_size
                yield from self._batches(blocks, pending[:full], gen, info is not None)
                pending = pending[full:]
                live = set(pending[:, 0].tolist())
                blocks = [b if i in live else {} for i, b in enumerate(blocks)]  # free emitted chunks
        if len(pending):
            if self.shuffle:
                pending = pending[rng.permutation(len(pending))]
            if self.drop_last:
                pending = pending[:len(pending) // self.batch_size * self.batch_size]
            yield from self._batches(blocks, pending, gen, info is not None)

    def _read(self, arrays: dict, k: int, c: int, positions) -> tuple[dict, np.ndarray]:
        """(the decoded chunk c of part k, whole: one decode; the rows of `positions` (selection
        positions, possibly none) in it). arrays: the per-part array handles, opened on first use."""
        part = self.sel.parts[k]
        if k not in arrays:
            root = open_store(part.url)
            arrays[k] = {f: root[f] for f in self.fields}
        start = c * part.chunk
        block = {f: a[start:start + part.chunk] for f, a in arrays[k].items()}
        return block, part.rows[np.asarray(positions, np.int64) - self.sel.offsets[k]] - start

    def _balanced(self, mine: list, rng: np.random.Generator, gen: torch.Generator, shared: bool):
        """Batches of half live, half spoof rows, chunks read whole as usual: rows wait in one pool
        per class until both can fill half a batch. Every row of this worker is emitted; when the
        smaller class runs out, its rows seen most recently are drawn again to fill the halves (a
        worker that holds one class only emits plain batches)."""
        half = self.batch_size // 2
        attack = self.sel.meta["is_attack"]
        arrays: dict[int, dict] = {}
        blocks: list[dict[str, np.ndarray]] = []
        pools = {False: np.empty((0, 3), np.int64), True: np.empty((0, 3), np.int64)}
        recent = {False: np.empty((0, 3), np.int64), True: np.empty((0, 3), np.int64)}  # for drawing again

        def take(cls: bool, n: int) -> np.ndarray:
            rows, pools[cls] = pools[cls][:n], pools[cls][n:]
            recent[cls] = np.concatenate([recent[cls], rows])[-half:]
            return rows

        def emit(rows: np.ndarray):
            used = set(rows[:, 0].tolist()) | {int(b) for r in recent.values() for b in r[:, 0]}
            yield from self._batches(blocks, rows, gen, shared)
            used |= {int(b) for p in pools.values() for b in p[:, 0]}
            for i in range(len(blocks)):  # free the chunks nothing refers to any more
                if i not in used:
                    blocks[i] = {}

        for k, c, positions in mine:
            block, local = self._read(arrays, k, c, positions)
            blocks.append(block)
            rows = np.stack([np.full(len(local), len(blocks) - 1), local, positions], axis=1)
            cls = attack[positions]
            for flag in (False, True):
                pools[flag] = np.concatenate([pools[flag], rows[cls == flag]])
            while len(pools[False]) >= half and len(pools[True]) >= half:
                both = np.concatenate([take(False, half), take(True, half)])
                yield from emit(both[rng.permutation(len(both))])
        while len(pools[False]) or len(pools[True]):  # the larger class's rest, the smaller drawn again
            big = len(pools[True]) > len(pools[False])
            if not len(pools[not big]) and not len(recent[not big]):  # this worker never saw the other class
                yield from emit(take(big, self.batch_size))
                continue
            halves = []
            for cls in (big, not big):
                got = take(cls, half)
                if len(got) < half:  # fill the half with this class's recent rows, drawn again
                    got = np.concatenate([got, recent[cls][rng.integers(len(recent[cls]), size=half - len(got))]])
                halves.append(got)
            both = np.concatenate(halves)
            yield from emit(both[rng.permutation(len(both))])

    def _batches(self, blocks: list[dict[str, np.ndarray]], rows: np.ndarray, gen: torch.Generator, shared: bool):
        """Batches of `rows` ((block, row, position) triples), gathered row by row straight into
        the output: a slot of the shared ring inside a worker (StoreLoader), else fresh tensors."""
        wid = get_worker_info().id if shared else 0
        for s in range(0, len(rows), self.batch_size):
            take = rows[s:s + self.batch_size]
            n = len(take)
            slot = self.ring.next_slot(wid) if shared and self.ring is not None else None
            batch = {}
            for f in self.fields:
                first = blocks[take[0, 0]][f]
                if slot is not None and not self.mcrea:
                    out = self.ring.buffers[f][slot, :n]
                else:
                    out = torch.empty((n, *first.shape[1:]), dtype=torch.from_numpy(first[:0]).dtype)
                dst = out.numpy()
                for j, (bi, ri) in enumerate(take[:, :2].tolist()):
                    dst[j] = blocks[bi][f][ri]
                batch[f] = out
            idx = take[:, 2]
            batch["index"] = torch.from_numpy(idx.copy())
            batch["is_attack"] = torch.from_numpy(self.sel.meta["is_attack"][idx])
            batch["domain"] = torch.from_numpy(self._domain[idx])
            batch["attack_code"] = torch.from_numpy(self._attack_code[idx])
            if self.mcrea:
                from annotator.augment.mcrea import mcrea

                # the gathered rows are the donors; the result goes straight into the slot (one copy)
                into = {f: self.ring.buffers[f][slot, :n] for f in self.fields} if slot is not None else None
                batch, _ = mcrea(batch, generator=gen, out=into, **self.mcrea)
                batch.pop("exchanged", None)
            batch["row_weight"] = torch.from_numpy(self._weight[idx])
            if self.flip:
                which = torch.rand(math.ceil(n / self.group), generator=gen) < 0.5
                batch = flip_batch(batch, which.repeat_interleave(self.group)[:n])
            if slot is not None:  # only the slot number and the small columns cross the process boundary
                for f in self.fields:
                    if batch[f].data_ptr() != self.ring.buffers[f][slot].data_ptr():
                        self.ring.buffers[f][slot, :n].copy_(batch[f])
                batch = {"slot": torch.tensor([slot, n]), **{k: batch[k] for k in SMALL}}
            yield batch


class BatchRing:
    """Shared-memory batch slots, allocated once before the workers start: a worker writes each
    batch into its next slot and sends only the slot number, so no per-batch shared memory is
    created (on this VM that cost ~0.5 ms per 256x256 row in page faults, more than decoding).

    Each worker cycles through `per_worker` slots. DataLoader keeps at most prefetch x workers
    batches requested ahead, so with per_worker = prefetch x workers + 2 a slot is rewritten only
    after the consumer drew two more batches: a batch stays valid until then (to_inputs copies it
    to the device first thing)."""

    def __init__(self, specs: dict[str, tuple[tuple[int, ...], torch.dtype]], batch: int, workers: int,
                 prefetch: int):
        self.per_worker = prefetch * workers + 2
        self.buffers = {f: torch.empty((workers * self.per_worker, batch, *shape), dtype=dtype).share_memory_()
                        for f, (shape, dtype) in specs.items()}
        self._count = 0

    def next_slot(self, worker: int) -> int:
        slot = worker * self.per_worker + self._count % self.per_worker
        self._count += 1
        return slot

    def take(self, small: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        slot, n = small["slot"].tolist()
        return {**{f: b[slot, :n] for f, b in self.buffers.items()},
                **{k: small[k] for k in SMALL}}


class StoreLoader:
    """A torch DataLoader over a StoreStream (batch_size=None) whose workers hand batches over
    through a BatchRing. Iterating yields the stream's batch dicts; len() is the batch count."""

    def __init__(self, stream: StoreStream, workers: int = 2, prefetch: int = 2):
        self.stream = stream
        if workers:
            stream.ring = BatchRing(stream.field_specs(), stream.batch_size, workers, prefetch)
        # Workers persist across epochs (the stream's epoch is in shared memory): starting them and
        # opening the stores again every epoch would cost seconds per epoch.
        self.loader = DataLoader(stream, batch_size=None, num_workers=workers,
                                 prefetch_factor=prefetch if workers else None,
                                 worker_init_fn=worker_init if workers else None, persistent_workers=workers > 0)

    def __len__(self) -> int:
        return len(self.stream)

    def __iter__(self):
        ring = self.stream.ring
        for batch in self.loader:
            yield ring.take(batch) if "slot" in batch else batch


def worker_init(_: int = 0) -> None:
    """DataLoader worker set-up: keep freed chunk buffers in the heap (glibc would mmap and unmap
    every multi-MB decode buffer, paying fresh page faults on each chunk: ~15 % of read time)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 64 << 20)
    libc.mallopt(m_trim_threshold, 256 << 20)


def flip_batch(batch: dict[str, torch.Tensor], which: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mirror the samples where `which` (B,) bool is set: images and maps left-right, landmarks'
    x -> S - x (pixel centres at x + 0.5; indices are not swapped, so a left-eye point stays a
    left-eye index on what is now the right side)."""
    if not bool(which.any()):
        return batch
    out = dict(batch)
    for f, v in batch.items():
        if f == "image":
            out[f] = torch.where(which[:, None, None, None], v.flip(2), v)
        elif f in ("label",) or f.startswith("pyramid/"):
            out[f] = torch.where(which[:, None, None, None], v.flip(-1), v)
        elif f in ("depth", "region"):
            out[f] = torch.where(which[:, None, None], v.flip(-1), v)
        elif f == "landmarks":
            size = batch["image"].shape[2] if "image" in batch else batch["label"].shape[-1]
            x = torch.where(which[:, None], size - v[..., 0], v[..., 0])
            out[f] = torch.cat([x[..., None], v[..., 1:]], dim=-1)
    return out
