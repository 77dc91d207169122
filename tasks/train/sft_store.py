"""Tokenized SFT examples stored flat, so each rank reads only the examples of its own micro-batches.

    <folder>/ids.bin          every example's token ids end to end (int32), memory-mapped by readers
    <folder>/offsets.npy      int64, example i is ids[offsets[i]:offsets[i+1]]
    <folder>/prompt_lens.npy  int32, the leading prompt tokens of each example (labels -100 there)

`write_store` writes into a temporary folder renamed into place last (a killed writer leaves nothing a reader
could take for complete).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

IDS, OFFSETS, PROMPT_LENS = "ids.bin", "offsets.npy", "prompt_lens.npy"


def prompt_length(labels: list[int], ignore: int = -100) -> int:
    """Leading positions whose label is `ignore` (the prompt of an `encode_example` pair)."""
    n = 0
    while n < len(labels) and labels[n] == ignore:
        n += 1
    return n


def write_store(folder: Path, examples: list[tuple[list[int], list[int]]]) -> Path:
    """Write (input_ids, labels) pairs whose labels are the ids with the prompt set to -100."""
    for row, (ids, labels) in enumerate(examples):
        n = prompt_length(labels)
        if len(ids) != len(labels) or list(labels[n:]) != list(ids[n:]):
            raise ValueError(f"example {row}: labels must be the ids with a -100 prompt prefix")
    folder = Path(folder)
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    lengths = np.array([len(ids) for ids, _ in examples], dtype=np.int64)
    flat = np.fromiter((t for ids, _ in examples for t in ids), dtype=np.int32, count=int(lengths.sum()))
    flat.tofile(tmp / IDS)
    np.save(tmp / OFFSETS, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    np.save(tmp / PROMPT_LENS, np.array([prompt_length(lab) for _, lab in examples], dtype=np.int32))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


@dataclass(frozen=True)
class SftStore:
    folder: str | Path

    @cached_property
    def offsets(self) -> np.ndarray:
        return np.load(Path(self.folder) / OFFSETS)

    @cached_property
    def prompt_lens(self) -> np.ndarray:
        return np.load(Path(self.folder) / PROMPT_LENS)

    @cached_property
    def ids(self) -> np.ndarray:
        if self.offsets[-1] == 0:
            return np.zeros(0, dtype=np.int32)
        return np.memmap(Path(self.folder) / IDS, dtype=np.int32, mode="r", shape=(int(self.offsets[-1]),))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def example(self, i: int) -> tuple[np.ndarray, int]:
        """(ids of example i, its prompt length)."""
        return np.asarray(self.ids[self.offsets[i]:self.offsets[i + 1]]), int(self.prompt_lens[i])
