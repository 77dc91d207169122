"""Training batches as pure functions of (step, rank), read per rank and prefetched: exact resume needs no
data-loader state beyond the step (and, for a weighted mix, the per-source counts kept in the checkpoint).

Packed data: the global batch of step `s` is `global_batch_size` sequence slots. Slot k of the run
(k = s * global_batch_size + i) draws its source from a seeded generator of (seed, s) with the source
weights, and takes that source's next sequence in a seeded permutation (cycled by epoch). One source
with weight 1 is plain shuffled sequential reading. Worker `rank` takes micro-batch `m` as slots
[(m * world + rank) * micro, ...). Every rank computes the slot -> (source, sequence) map of the whole
global batch (integers only) and reads only its own sequences, one vectorised read per source.

A source is a `TokenSource`: `len()`, `seq_len`, `take(indices)`. A tokenize output folder is one shard
(`packing.PackedTokens`: the per-slice token files its `meta.json` lists, read as one stream of ids cut into
sequences, which may span files; or the one-file layout); `TokenShards` makes a list of such folders one
source with global indices.

SFT data: tokenized examples stored flat (`sft_store.py`: ids, offsets, prompt lengths; memory-mapped), in a
seeded permutation per epoch; a rank reads only its examples of the step.

Micro-batches: `attention="causal"` gives (micro, seq_len) rows with plain causal attention across documents.
`attention="document"` and SFT give one packed row per micro-batch (`attention.packed_inputs`): documents or
examples end to end, positions restarting per document, their boundaries as `cu_seq_lens`; no mask tensor
and no padding. `Prefetcher` builds the next steps' micro-batches in a background thread.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import numpy as np
import torch

from tasks.tokenize.packing import PackedTokens
from tasks.train.attention import IGNORE, document_starts, packed_from_lists, packed_inputs


def permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


class TokenSource(Protocol):
    """What the packed reader needs of a source: a number of fixed-length sequences readable by index."""

    seq_len: int

    def __len__(self) -> int: ...

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Sequences at `indices` as int64 (len(indices), seq_len), in the order given."""
        ...


class TokenShards:
    """Shards of packed sequences (each with `len()`, `take`, `meta["seq_len"]`: a tokenize folder, or one slice's
    token file) as one `TokenSource`: global index i is shard j's sequence i - start_j."""

    def __init__(self, shards: Sequence) -> None:
        if not shards:
            raise ValueError("TokenShards needs at least one shard")
        lengths = {s.meta["seq_len"] for s in shards}
        if len(lengths) != 1:
            raise ValueError(f"shards have different seq_len {sorted(lengths)}; re-tokenize them with one tokenize.seq_len")
        self.shards = list(shards)
        self.seq_len = lengths.pop()
        self.starts = np.cumsum([0] + [len(s) for s in self.shards])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def take(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), self.seq_len), dtype=np.int64)
        shard_of = np.searchsorted(self.starts, indices, side="right") - 1
        for j in np.unique(shard_of):
            rows = np.nonzero(shard_of == j)[0]
            local = indices[rows] - self.starts[j]
            order = np.argsort(local, kind="stable")  # ascending offsets: one forward pass over the file
            out[rows[order]] = self.shards[j].take(local[order])
        return out


def open_tokens(folder: str) -> TokenShards:
    """A packed source from a tokenize output folder (its token files, as indexed by its `meta.json`)."""
    return TokenShards([PackedTokens(folder)])


@dataclass
class PackedMix:
    """Weighted mixture of packed token sources; `rank_batch(step, ...)` -> this rank's sequences of the step."""

    sources: dict[str, float]
    global_batch_size: int
    seed: int
    open_source: Callable[[str], TokenSource] = open_tokens
    _perms: dict = field(default_factory=dict)

    @cached_property
    def datasets(self) -> list[TokenSource]:
        return [self.open_source(path) for path in self.sources]

    @cached_property
    def weights(self) -> np.ndarray:
        w = np.array(list(self.sources.values()), dtype=np.float64)
        return w / w.sum()

    @cached_property
    def seq_len(self) -> int:
        return self.datasets[0].seq_len

    def source_counts_before(self, step: int) -> np.ndarray:
        """Slots each source served in steps [0, step): replays the per-step draws (exact; a checkpoint stores them)."""
        counts = np.zeros(len(self.datasets), dtype=np.int64)
        if len(self.datasets) == 1:
            counts[0] = step * self.global_batch_size
            return counts
        for s in range(step):
            counts += np.bincount(self.draw_sources(s), minlength=len(self.datasets))
        return counts

    def draw_sources(self, step: int) -> np.ndarray:
        if len(self.datasets) == 1:
            return np.zeros(self.global_batch_size, dtype=np.int64)
        return np.random.default_rng([self.seed, 7, step]).choice(len(self.datasets), size=self.global_batch_size, p=self.weights)

    def slots(self, step: int, counts_before: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(source, sequence index) of every slot of `step`'s global batch, and the per-source counts after it."""
        sources = self.draw_sources(step)
        counts = np.asarray(counts_before, dtype=np.int64).copy()
        indices = np.empty(len(sources), dtype=np.int64)
        for src in np.unique(sources):
            where = np.nonzero(sources == src)[0]
            n = len(self.datasets[src])
            positions = counts[src] + np.arange(len(where))
            for epoch in np.unique(positions // n):
                in_epoch = positions // n == epoch
                indices[where[in_epoch]] = self._permutation(int(src), int(epoch))[positions[in_epoch] % n]
            counts[src] += len(where)
        return sources, indices, counts

    def rank_batch(self, step: int, counts_before: np.ndarray, slots: list[slice]) -> tuple[list[np.ndarray], np.ndarray]:
        """This rank's sequences of `step`, one (micro, seq_len) array per slice of slots, read per source in one
        pass; and the per-source counts after the step."""
        sources, indices, counts = self.slots(step, counts_before)
        mine = np.concatenate([np.arange(len(sources))[s] for s in slots])
        rows = np.empty((len(mine), self.seq_len), dtype=np.int64)
        for src in np.unique(sources[mine]):
            at = np.nonzero(sources[mine] == src)[0]
            rows[at] = self.datasets[src].take(indices[mine[at]])
        bounds = np.cumsum([0] + [s.stop - s.start for s in slots])
        return [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:])], counts

    def batch(self, step: int, counts_before: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The whole global batch of `step` (one rank reading everything: the single-process reference)."""
        (rows,), counts = self.rank_batch(step, counts_before, [slice(0, self.global_batch_size)])
        return rows, counts

    def _permutation(self, src: int, epoch: int) -> np.ndarray:
        key = (src, epoch)
        if key not in self._perms:
            self._perms = {key: permutation(len(self.datasets[src]), self.seed + src, epoch), **{
                k: v for k, v in self._perms.items() if k[0] != src}}
        return self._perms[key]


def causal_lm_batch(ids: np.ndarray, *, attention: str, eos_id: int) -> dict[str, torch.Tensor | int]:
    """Inputs for a causal LM on packed sequences (HF shifts labels internally): (rows, seq_len) for plain causal
    attention; one packed row with document boundaries for `document` attention."""
    input_ids = torch.from_numpy(np.ascontiguousarray(ids))
    if attention == "causal":
        return {"input_ids": input_ids, "labels": input_ids.clone()}
    return packed_inputs(input_ids, input_ids, document_starts(input_ids, eos_id))


@dataclass
class SftExamples:
    """Tokenized SFT examples (a `sft_store` folder); `batch(step)` -> the example indices of that step's global
    batch, `collate(indices)` -> one packed row of those examples (labels -100 on the prompts)."""

    path: str
    global_batch_size: int
    epochs: int
    seed: int

    @cached_property
    def store(self):
        from tasks.train.sft_store import SftStore

        return SftStore(self.path)

    def __len__(self) -> int:
        return len(self.store)

    @cached_property
    def seq_len(self) -> int:
        """Mean example length (for the attention FLOPs of MFU)."""
        return int(np.mean(np.diff(self.store.offsets)))

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self) / self.global_batch_size)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def batch(self, step: int) -> list[int]:
        epoch, within = divmod(step, self.steps_per_epoch)
        perm = self._permutation(epoch)
        start = within * self.global_batch_size
        return [int(perm[(start + i) % len(self)]) for i in range(self.global_batch_size)]

    def _permutation(self, epoch: int) -> np.ndarray:
        """The epoch's example order (the last epoch's kept: steps come in order)."""
        cached = self.__dict__.get("_perm")
        if cached is None or cached[0] != epoch:
            self.__dict__["_perm"] = cached = (epoch, permutation(len(self), self.seed, epoch))
        return cached[1]

    def collate(self, indices: list[int]) -> dict[str, torch.Tensor | int]:
        ids, labels = [], []
        for i in indices:
            seq, prompt_len = self.store.example(i)
            seq = torch.from_numpy(seq.astype(np.int64))
            lab = seq.clone()
            lab[:prompt_len] = IGNORE
            ids.append(seq)
            labels.append(lab)
        return packed_from_lists(ids, labels)


def micro_slices(global_batch_size: int, micro_batch_size: int, world_size: int, rank: int) -> list[slice]:
    """The slots of the global batch that `rank` processes, one slice per micro-batch."""
    per_pass = micro_batch_size * world_size
    return [slice(m * per_pass + rank * micro_batch_size, m * per_pass + (rank + 1) * micro_batch_size)
            for m in range(global_batch_size // per_pass)]


class Prefetcher:
    """Runs `make(step, state) -> (batch, state)` for steps start, start+1, ... in a background thread, at most
    `depth` steps ahead of the consumer; `next()` returns (step, batch, state after it) in order. An error in
    the thread is raised by `next()`. `close()` stops the thread."""

    def __init__(self, make: Callable, start_step: int, end_step: int, state, depth: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(make, start_step, end_step, state), daemon=True,
                                        name="train-prefetch")
        self._thread.start()

    def _run(self, make, step: int, end: int, state) -> None:
        try:
            while step < end and not self._stop.is_set():
                batch, state = make(step, state)
                self._put((step, batch, state))
                step += 1
        except BaseException as error:  # handed to the consumer
            self._put(error)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self):
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
