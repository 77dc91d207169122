"""The fastText code-related classifier over BPE pieces: train on labelled seeds, score documents.

`train` writes the fastText training file (`__label__code` / `__label__other` + BPE pieces), trains
single-threaded (deterministic for a seed) and saves `model.bin` next to the BPE `tokenizer.json`.
`score_batch` is the pure batch function the runner maps on Ray: it loads the pair once per worker
process and returns `id` and `score` (probability of `code`) for every row of the batch. Scoring does
not go through fastText's text interface: `BpeEncoder.text_ids` gives the token ids of the raw texts
(normalised, cached per word, exactly the tokenizer's), and `FastTextScorer` evaluates the trained
fastText model on a whole batch of them in numba, numpy without it (same probabilities, see its docstring), 5x faster than
lines + `model.predict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa

from tasks.recall.text import BpeEncoder, load_bpe, normalize, train_bpe

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
        for label, line in zip(labels, BpeEncoder(tok).lines(normalized)):
            f.write(f"{CODE if label else OTHER} {line}\n")
    model = fasttext.train_supervised(
        str(train_file), epoch=settings.epoch, lr=settings.lr, wordNgrams=settings.word_ngrams, dim=settings.dim,
        bucket=settings.bucket, minCount=1, loss="softmax", thread=1, seed=settings.seed, verbose=0,
    )
    model_path = folder / "model.bin"
    model.save_model(str(model_path))
    return model_path, tok_path


EOS = "</s>"
"""fastText's end-of-line word, read after the last word of every line."""
NGRAM_MULTIPLIER = 116049371
"""fastText's word n-gram hash step: h = h * 116049371 + hash(next word) (`Dictionary::addWordNgrams`)."""


def fasttext_hash(word: str) -> int:
    """fastText's `Dictionary::hash` (FNV-1a over the UTF-8 bytes read as signed chars), as the signed int32
    that `getLine` keeps for word n-grams."""
    h = 2166136261
    for byte in word.encode("utf-8"):
        h = ((h ^ (byte | 0xFFFFFF00 if byte >= 0x80 else byte)) * 16777619) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


@dataclass(frozen=True, kw_only=True)
class FastTextScorer:
    """A trained supervised fastText model evaluated in numpy on whole batches of BPE token ids.

    fastText predicts softmax(B · mean(A[rows])), where `rows` are the input rows of a line's words and of
    its word n-gram buckets. With two labels that is p(code) = sigmoid(mean(A[rows] · (b_code - b_other))),
    and the dot product can move inside the mean: each input row is reduced once, at load, to its
    `margin` A[row] · (b_code - b_other), and a document then costs one number per word and per n-gram
    (instead of a `dim`-vector), for all documents of a batch at once. Rows are found as fastText's
    `Dictionary::getLine` does: the line's words, then `</s>`; an unknown word adds no row but its hash
    still enters the n-grams; n-gram row = num_words + (n-gram hash mod bucket). (fastText would read a
    word starting with `__label__` as a label; no byte-level BPE token can, letters and `_` never share
    a pre-tokenizer piece.) The probabilities equal `model.predict`'s to 1e-5 (fastText
    reports p + 1e-5), checked by tests/recall/test_text.py.
    """

    word_rows: np.ndarray
    """Input row of every BPE token id, and of `</s>` (last entry); -1 for a word fastText never saw."""
    word_hashes: np.ndarray
    """fastText hash of every BPE token id and of `</s>`, sign-extended to 64 bits (uint64)."""
    margins: np.ndarray
    """A[row] · (b_code - b_other) for every input row, plus a final 0.0 (the row -1 of unknown words)."""
    constant: float | None
    """p(code) of every document when the model has one label only (1.0 code, 0.0 other), else None."""
    num_words: int
    bucket: int
    word_ngrams: int

    @classmethod
    def compile(cls, model, tokens: list[str]) -> FastTextScorer:
        """From a loaded fastText model and the BPE vocabulary (token string of every id)."""
        args = model.f.getArgs()
        if model.is_quantized() or args.maxn > 0 or args.loss.name != "softmax":
            raise ValueError("FastTextScorer needs a non-quantized softmax model without character n-grams")
        if any(token.startswith(args.label) for token in tokens):  # impossible for byte-level BPE pieces
            raise ValueError(f"a BPE token starts with the fastText label prefix {args.label!r}")
        labels = model.get_labels()
        if set(labels) - {CODE, OTHER}:
            raise ValueError(f"FastTextScorer expects the labels {CODE} and {OTHER}, got {labels}")
        output = model.get_output_matrix()
        if len(labels) == 2:
            direction = output[labels.index(CODE)] - output[labels.index(OTHER)]
            margins, constant = np.append(model.get_input_matrix() @ direction, np.float32(0.0)), None
        else:
            margins, constant = np.zeros(1, np.float32), float(labels == [CODE])
        words = [*tokens, EOS]
        return cls(
            word_rows=np.array([model.get_word_id(w) for w in words], dtype=np.int32),
            word_hashes=np.array([fasttext_hash(w) for w in words], dtype=np.int64).view(np.uint64),
            margins=margins, constant=constant,
            num_words=len(model.get_words()), bucket=args.bucket, word_ngrams=args.wordNgrams,
        )

    def code_probability(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """p(code) of each text from its token ids (`BpeEncoder.batch_ids`); 0.0 for a text without any."""
        if self.constant is not None:
            return np.where(lengths > 0, self.constant, 0.0)
        mean_margin = self.mean_margins_numpy if _MEAN_MARGINS is None else self.mean_margins
        return np.where(lengths > 0, 1.0 / (1.0 + np.exp(-mean_margin(ids, lengths))), 0.0)

    def mean_margins(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Mean margin of each text's rows, in one numba pass over the tokens (no temporaries)."""
        return _MEAN_MARGINS(ids, lengths, self.word_rows, self.word_hashes, self.margins, self.num_words,
                             self.bucket, self.word_ngrams, len(self.word_rows) - 1)

    def mean_margins_numpy(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The same in numpy array passes (the reference the tests compare the kernel with; the fallback)."""
        seq = np.insert(ids, np.cumsum(lengths), len(self.word_rows) - 1)  # each text's ids, then </s>
        sizes = lengths + 1
        ends = np.cumsum(sizes)
        starts = ends - sizes
        rows = self.word_rows[seq]
        totals = self.margins[rows]  # row -1 (a word fastText never saw) has margin 0
        counts = np.add.reduceat(rows >= 0, starts, dtype=np.int64)
        ngram_margins = self.margins[self.num_words:-1]
        hashes = acc = self.word_hashes[seq]
        for n in range(1, self.word_ngrams):
            acc = acc[:-1] * np.uint64(NGRAM_MULTIPLIER) + hashes[n:]
            margins = ngram_margins[acc % np.uint64(self.bucket)]
            crossing = (ends[:, None] - 1 - np.arange(n)).ravel()  # n-grams running into the next text
            margins[crossing[(crossing >= 0) & (crossing < len(margins))]] = 0.0
            totals[:-n] += margins
            counts += np.maximum(sizes - n, 0)
        return np.add.reduceat(totals, starts, dtype=np.float64) / np.maximum(counts, 1)


def _mean_margins_kernel():
    """`FastTextScorer.mean_margins_numpy` as a numba kernel (None without numba)."""
    try:
        import numba
    except ImportError:
        return None
    multiplier = np.uint64(NGRAM_MULTIPLIER)

    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def mean_margins(ids, lengths, word_rows, word_hashes, margins, num_words, bucket, word_ngrams, eos):
        out = np.zeros(lengths.size)
        ubucket = np.uint64(bucket)
        start = 0
        for t in range(lengths.size):
            size = lengths[t] + 1  # the text's ids, then </s>
            total, count = 0.0, 0
            for i in range(size):
                token = ids[start + i] if i < size - 1 else eos
                row = word_rows[token]
                if row >= 0:
                    total += margins[row]
                    count += 1
                acc = word_hashes[token]
                for m in range(1, min(word_ngrams, size - i)):
                    nxt = ids[start + i + m] if i + m < size - 1 else eos
                    acc = acc * multiplier + word_hashes[nxt]
                    total += margins[num_words + np.int64(acc % ubucket)]
                    count += 1
            out[t] = total / max(count, 1)
            start += size - 1
        return out

    return mean_margins


_MEAN_MARGINS = _mean_margins_kernel()


@lru_cache(maxsize=4)
def load(model_path: str, tok_path: str) -> tuple[FastTextScorer, BpeEncoder]:
    """The scorer and the BPE encoder of a trained pair, once per process."""
    import fasttext

    encoder = BpeEncoder(load_bpe(tok_path))
    return FastTextScorer.compile(fasttext.load_model(model_path), encoder.tokens), encoder


def score_texts(texts: list[str | None], model_path: str, tok_path: str, max_chars: int) -> np.ndarray:
    """Probability of `code` for each text (0.0 for empty or missing text)."""
    scorer, encoder = load(str(model_path), str(tok_path))
    ids, lengths = encoder.text_ids(texts, max_chars)
    return np.clip(scorer.code_probability(ids, lengths), 0.0, 1.0)


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
