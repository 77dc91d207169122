"""The fastText code-related classifier over BPE pieces: train on labelled seeds, score documents.

`train` writes the fastText training file (`__label__code` / `__label__other` + BPE pieces), trains
single-threaded (deterministic for a seed) and saves `model.bin` next to the BPE `tokenizer.json`.
`score_batch` is the pure batch function the runner maps on Ray: it loads the pair once per worker
process and returns `id` and `score` (probability of `code`) for every row of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa

from tasks.recall.text import bpe_lines, load_bpe, normalize, train_bpe

CODE, OTHER = "__label__code", "__label__other"


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    vocab_size: int
    """BPE vocabulary size."""
    epoch: int
    lr: float
    word_ngrams: int
    dim: int
    bucket: int
    seed: int
    max_chars: int
    """Characters of a document used."""


def train(texts: list[str], labels: list[int], folder: Path, settings: TrainSettings) -> tuple[Path, Path]:
    """Train BPE + fastText on labelled texts (1 = code-related); return (model path, tokenizer path)."""
    import fasttext

    folder.mkdir(parents=True, exist_ok=True)
    normalized = [normalize(t, settings.max_chars) for t in texts]
    tok = train_bpe(normalized, settings.vocab_size)
    tok_path = folder / "tokenizer.json"
    tok.save(str(tok_path))
    train_file = folder / "train.txt"
    with train_file.open("w", encoding="utf-8") as f:
        for label, line in zip(labels, bpe_lines(tok, normalized)):
            f.write(f"{CODE if label else OTHER} {line}\n")
    model = fasttext.train_supervised(
        str(train_file), epoch=settings.epoch, lr=settings.lr, wordNgrams=settings.word_ngrams, dim=settings.dim,
        bucket=settings.bucket, minCount=1, loss="softmax", thread=1, seed=settings.seed, verbose=0,
    )
    model_path = folder / "model.bin"
    model.save_model(str(model_path))
    return model_path, tok_path


@lru_cache(maxsize=4)
def _load(model_path: str, tok_path: str):
    import fasttext

    return fasttext.load_model(model_path), load_bpe(tok_path)


def score_texts(texts: list[str | None], model_path: str, tok_path: str, max_chars: int) -> np.ndarray:
    """Probability of `code` for each text (0.0 for empty or missing text)."""
    model, tok = _load(str(model_path), str(tok_path))
    normalized = [normalize(t or "", max_chars) for t in texts]
    lines = bpe_lines(tok, normalized)
    scores = np.zeros(len(texts), dtype=np.float64)
    todo = [i for i, line in enumerate(lines) if line]
    if todo:
        labels, probs = model.predict([lines[i] for i in todo], k=2)
        for i, labs, ps in zip(todo, labels, probs):
            scores[i] = float(dict(zip(labs, ps)).get(CODE, 0.0))
    return np.clip(scores, 0.0, 1.0)


def score_batch(batch: pa.Table, model_path: str, tok_path: str, max_chars: int) -> pa.Table:
    """Runner function: `id` and `score` of every row of a batch with a `text` column."""
    scores = score_texts(batch["text"].to_pylist(), model_path, tok_path, max_chars)
    return pa.table({"id": batch["id"], "score": pa.array(scores, pa.float64())})


def precision_recall(labels: list[int], scores: list[float] | np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall and F1 of `score >= threshold` against binary labels."""
    predicted = np.asarray(scores) >= threshold
    truth = np.asarray(labels, dtype=bool)
    tp = int(np.sum(predicted & truth))
    fp = int(np.sum(predicted & ~truth))
    fn = int(np.sum(~predicted & truth))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "num_docs": len(truth)}
