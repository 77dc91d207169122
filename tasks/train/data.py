"""Training batches as pure functions of (step, rank): exact resume needs no data-loader state.

Packed data: the global batch of step `s` is `global_batch_size` sequence slots. Slot k of the run
(k = s * global_batch_size + i) draws its source from a seeded generator of (seed, s) with the source
weights, and takes that source's next sequence in a seeded permutation (cycled by epoch). One source
with weight 1 is plain shuffled sequential reading. Worker `rank` takes micro-batch `m` as slots
[(m * world + rank) * micro, ...).

SFT data: tokenized examples (`input_ids`, `labels` with -100 on the prompt) in a seeded permutation per
epoch, padded on the right per micro-batch.

With `attention="document"`, a 4D block-diagonal causal mask keeps tokens inside their document
(EOS-delimited), positions restart per document, and the label after each EOS is ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow.parquet as pq
import torch

from tasks.tokenize.packing import PackedTokens

IGNORE = -100


def permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


@dataclass
class PackedMix:
    """Weighted mixture of packed token folders; `batch(step)` -> input ids (global_batch, seq_len)."""

    sources: dict[str, float]
    global_batch_size: int
    seed: int
    _perms: dict = field(default_factory=dict)

    @cached_property
    def datasets(self) -> list[PackedTokens]:
        return [PackedTokens(path) for path in self.sources]

    @cached_property
    def weights(self) -> np.ndarray:
        w = np.array(list(self.sources.values()), dtype=np.float64)
        return w / w.sum()

    @cached_property
    def seq_len(self) -> int:
        return self.datasets[0].meta["seq_len"]

    def source_counts_before(self, step: int) -> np.ndarray:
        """Slots each source served in steps [0, step): replays the per-step draws (cheap, exact)."""
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

    def batch(self, step: int, counts_before: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(input ids of `step`, per-source counts after it), given the counts before it."""
        counts = counts_before.copy()
        rows = []
        for src in self.draw_sources(step):
            n = len(self.datasets[src])
            epoch, pos = divmod(int(counts[src]), n)
            rows.append((src, int(self._permutation(int(src), epoch)[pos])))
            counts[src] += 1
        out = np.stack([self.datasets[src].take(np.array([i]))[0] for src, i in rows])
        return out, counts

    def _permutation(self, src: int, epoch: int) -> np.ndarray:
        key = (src, epoch)
        if key not in self._perms:
            self._perms = {key: permutation(len(self.datasets[src]), self.seed + src, epoch), **{
                k: v for k, v in self._perms.items() if k[0] != src}}
        return self._perms[key]


def causal_lm_batch(ids: np.ndarray, *, attention: str, eos_id: int) -> dict[str, torch.Tensor]:
    """Inputs for a causal LM on packed sequences (HF shifts labels internally)."""
    input_ids = torch.from_numpy(ids)
    labels = input_ids.clone()
    if attention == "causal":
        return {"input_ids": input_ids, "labels": labels}
    is_eos = input_ids == eos_id
    labels[:, 1:][is_eos[:, :-1]] = IGNORE
    doc = torch.cumsum(torch.nn.functional.pad(is_eos[:, :-1].long(), (1, 0)), dim=1)  # document index per token
    first = torch.searchsorted(doc, doc, right=False)  # index of each token's document start
    position_ids = torch.arange(ids.shape[1]).expand_as(doc) - first
    same_doc = doc[:, :, None] == doc[:, None, :]
    causal = torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool).tril()
    mask = (same_doc & causal)[:, None]
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids, "attention_mask": mask}


@dataclass
class SftExamples:
    """Tokenized SFT examples; `batch(step)` -> the example indices of that step's global batch."""

    path: str
    global_batch_size: int
    epochs: int
    seed: int

    @cached_property
    def rows(self) -> dict[str, list]:
        return pq.read_table(self.path).to_pydict()

    def __len__(self) -> int:
        return len(self.rows["input_ids"])

    @cached_property
    def seq_len(self) -> int:
        """Mean example length (for the attention FLOPs of MFU)."""
        return int(np.mean([len(x) for x in self.rows["input_ids"]]))

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self) / self.global_batch_size)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def batch(self, step: int) -> list[int]:
        epoch, within = divmod(step, self.steps_per_epoch)
        perm = permutation(len(self), self.seed, epoch)
        start = within * self.global_batch_size
        return [int(perm[(start + i) % len(self)]) for i in range(self.global_batch_size)]

    def collate(self, indices: list[int], pad_id: int) -> dict[str, torch.Tensor]:
        seqs = [self.rows["input_ids"][i] for i in indices]
        labs = [self.rows["labels"][i] for i in indices]
        width = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        labels = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
        attention_mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, (s, lab) in enumerate(zip(seqs, labs)):
            input_ids[row, : len(s)] = torch.tensor(s)
            labels[row, : len(lab)] = torch.tensor(lab)
            attention_mask[row, : len(s)] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def micro_slices(global_batch_size: int, micro_batch_size: int, world_size: int, rank: int) -> list[slice]:
    """The slots of the global batch that `rank` processes, one slice per micro-batch."""
    per_pass = micro_batch_size * world_size
    return [slice(m * per_pass + rank * micro_batch_size, m * per_pass + (rank + 1) * micro_batch_size)
            for m in range(global_batch_size // per_pass)]
