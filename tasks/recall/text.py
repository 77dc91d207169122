"""Text features of the recall loop: normalisation, BPE tokenisation, and the seed heuristics.

Pure functions and one cached encoder. Normalisation lower-cases, applies NFKC and collapses
whitespace while keeping code punctuation (it is what tells code-related pages apart). Before
fastText the normalised text is split by a small byte-level BPE trained on each round's seeds with
HF `tokenizers` (spec §5: BPE first, so the vocabulary stays small and non-space-separated scripts
work); fastText then sees the BPE pieces joined by spaces. The heuristics label round-0 seeds: the
share of code-looking lines, and the Appendix C.2 code-related file-name rule for repository text files.

`BpeEncoder` gives exactly the tokenizer's ids and `" ".join(tokenizer.encode(text).tokens)`, 5x (cold:
caches holding only the vocabulary) to 20x (warm) faster than `encode_batch` on one core: the tokenizer's
ByteLevel pre-tokenizer (an Oniguruma regex) was 90% of the scoring time. Normalised text is
single-space separated, and the byte-level regex never lets a piece cross a space (a space only ever
starts a piece), so a text's tokens are the concatenation of its space-separated words' tokens, each
word with its leading space. Words are therefore encoded once and cached (as int32 token ids, which
`classify.FastTextScorer` consumes without building the line); a word not yet seen is split with the
same regex (stdlib `re` for ASCII, `regex` otherwise) and its pieces go through the tokenizer's own BPE
model. tests/recall/test_text.py checks the identity on the shipped corpora and on awkward Unicode.

`BpeEncoder.text_ids` does the same from raw texts, 3x (warm) to 4x (cold) faster than `normalized_words`
+ `batch_ids`: the numba kernels of `tasks.recall.bpe_kernels` (a word/piece hash table, the ASCII
pre-tokenizer split and the BPE merge) encode ASCII text, and what they cannot goes through the Python
path above (tests/recall/test_fast_encoder.py checks it equals `normalized_words` + `batch_ids`).
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from collections.abc import Iterable
from itertools import islice
from pathlib import Path, PurePosixPath

import numpy as np
import regex
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from tasks.recall.bpe_kernels import PIECE, SPACED, WordTable, bpe_tables, byte_chars, encode_words, gather_ids, room

CODE_FILENAME_WORDS = ("readme", "notes", "todo", "description", "cmakelists")
"""Appendix C.2 / [R-FILT]: a file name containing one of these is code-related text."""

TEXT_EXTENSIONS = frozenset({".md", ".markdown", ".rst", ".txt", ".text", ".adoc", ".asciidoc", ".org", ".rdoc", ".textile"})
"""Extensions of repository text files (the ingest stage leaves doc_type null)."""

TEXT_FILENAMES = frozenset({"readme", "notes", "todo", "changelog", "changes", "authors", "contributing", "history", "news"})
"""Extension-less file names that are text."""

_CODE_LINE = re.compile(
    r"""^\s*(```|~~~|>>>|\$ |\#include|import\s|from\s+\S+\s+import|def\s|class\s|return\b|if\s*\(|for\s*\(|while\s*\(|
    function\s|const\s|let\s|var\s|public\s|private\s|static\s|\#!|@\w+|pip\s+install|npm\s|git\s|sudo\s|\}|\{)"""
    r"|[;{}]\s*$|\w+\(.*\)\s*:?\s*$|^\s{4,}\S|^\t+\S|=\s*\w+\(|->|=>|::",
    re.X,
)


def normalize(text: str, max_chars: int = 4000) -> str:
    """NFKC, lower case, whitespace collapsed to single spaces, cut to `max_chars`."""
    text = text[: max_chars * 2]
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.lower().split())[:max_chars]


def normalized_words(text: str, max_chars: int = 4000) -> list[str]:
    """`normalize(text, max_chars).split(" ")` ([] for blank text) without joining and splitting again."""
    text = text[: max_chars * 2]
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    lowered = text.lower()
    if len(lowered) <= max_chars:  # the joined words are never longer than `lowered`: no cut
        return lowered.split()
    cut = " ".join(lowered.split())[:max_chars]
    return cut.split(" ") if cut else []


def code_line_share(text: str) -> float:
    """Share of non-empty lines that look like code (fences, prompts, statements, braces, indentation)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return 0.0
    return sum(1 for ln in lines if _CODE_LINE.search(ln)) / len(lines)


def is_text_file(path: str | None) -> bool:
    """True for repository text files (by extension, or by a text-like extension-less name)."""
    if not path:
        return False
    name = PurePosixPath(path).name.lower()
    suffix = PurePosixPath(name).suffix
    return suffix in TEXT_EXTENSIONS or (suffix == "" and name in TEXT_FILENAMES)


def code_related_filename(path: str | None) -> bool:
    """Appendix C.2 heuristic: readme, notes, todo, description, cmakelists, or `requirement` in the name."""
    if not path:
        return False
    name = PurePosixPath(path).name.lower()
    return any(word in name for word in CODE_FILENAME_WORDS) or "requirement" in name


def train_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE over normalised texts (HF `tokenizers`), deterministic for given texts."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


_PIECES = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
"""The tokenizers ByteLevel pre-tokenizer regex (GPT-2's)."""
_ASCII_PIECES = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[a-zA-Z]+| ?[0-9]+| ?[^ \t\n\v\f\ra-zA-Z0-9]+"""
                           r"""|[ \t\n\v\f\r]+(?![^ \t\n\v\f\r])|[ \t\n\v\f\r]+""")
"""The same regex for ASCII-only strings, with the stdlib `re` (twice as fast on short strings)."""

_BYTE_TABLE = str.maketrans(byte_chars())
_CHAR_BYTES = {char: byte for byte, char in byte_chars().items()}


class _PieceIds(dict):
    """Pre-tokenizer piece -> its token ids (int32 bytes), computed by the tokenizer's BPE model when missing."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def __missing__(self, piece: str) -> bytes:
        chars = piece.encode("utf-8").decode("latin-1").translate(_BYTE_TABLE)
        value = self[piece] = array("i", [token.id for token in self.model.tokenize(chars)]).tobytes()
        return value


class _WordIds(dict):
    """Word -> token ids (int32 bytes) of `prefix + word`, pre-tokenized and looked up piece by piece when missing."""

    def __init__(self, pieces: _PieceIds, prefix: str) -> None:
        super().__init__()
        self.pieces, self.prefix = pieces, prefix

    def __missing__(self, word: str) -> bytes:
        text = self.prefix + word
        if text.isascii():
            found = _ASCII_PIECES.findall(text)
        else:
            found = _PIECES.findall(unicodedata.normalize("NFKC", text))
        value = self[word] = b"".join(map(self.pieces.__getitem__, found))
        return value


class BpeEncoder:
    """Token ids (and fastText lines) of a trained byte-level BPE tokenizer, cached per space-separated word.

    For normalised text `t` (see the module docstring): `ids(t)` is `tok.encode(t).ids` as native int32
    bytes and `line(t) == " ".join(tok.encode(t).tokens)`. The caches start with the vocabulary's own
    words and pieces (a constant of the tokenizer, about 20 ms per load) and are emptied back to them
    when they outgrow `max_cached_words`."""

    def __init__(self, tok: Tokenizer, max_cached_words: int = 200_000) -> None:
        self.tokens = [token for token, _ in sorted(tok.get_vocab().items(), key=lambda item: item[1])]
        """Token string of every id."""
        self.max_cached_words = max_cached_words
        self._pieces = _PieceIds(tok.model)
        self._first = _WordIds(self._pieces, "")
        self._spaced = _WordIds(self._pieces, " ")
        self._bpe = bpe_tables(tok)
        """`bpe_kernels.encode_words`' BPE arguments (byte ids, merges, vocabulary size, use_bpe); None
        without numba."""
        self._table: WordTable | None = None
        self.clear()

    def word_ids(self, words: list[str]) -> bytes:
        """Token ids of `" ".join(words)` for the words of `normalized_words`, as native int32 bytes."""
        if not words:
            return b""
        return self._first[words[0]] + b"".join(map(self._spaced.__getitem__, islice(words, 1, None)))

    def ids(self, normalized: str) -> bytes:
        """Token ids of one normalised text, as native int32 bytes."""
        if normalized[:1] == " " or "  " in normalized:
            return _WordIds(self._pieces, "")[normalized]  # not `normalize` output: no word split
        return self.word_ids(normalized.split(" ") if normalized else [])

    def batch_ids(self, texts: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(token ids of all texts one after the other, number of ids of each text) for texts given as
        `normalized_words`."""
        self._make_room()
        parts = [self.word_ids(words) for words in texts]
        lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)) // 4
        return np.frombuffer(b"".join(parts), dtype=np.int32), lengths

    def text_ids(self, texts: list[str | None], max_chars: int) -> tuple[np.ndarray, np.ndarray]:
        """`batch_ids([normalized_words(t or "", max_chars) for t in texts])`, from the raw texts in numba.

        All texts go through one buffer: an ASCII text as its raw bytes (lower-cased, split and cut in
        `bpe_kernels.encode_words`), any other as the UTF-8 of its `normalized_words` joined by spaces.
        Words are looked up in a `bpe_kernels.WordTable`; a new ASCII word is pre-tokenized (`_ASCII_PIECES`)
        and split by the tokenizer's BPE merges in numba (`bpe_kernels._bpe_piece`, the `tokenizers`
        algorithm), a new non-ASCII word goes through the Python path (`_WordIds`) and is then stored in
        the table too."""
        if self._table is None or max_chars < 1:
            return self.batch_ids([normalized_words(t or "", max_chars) for t in texts])
        self._make_room()
        cut = 2 * max_chars
        parts, modes = [], np.zeros(len(texts), np.uint8)
        for k, text in enumerate(texts):
            text = (text or "")[:cut]
            if text.isascii():
                parts.append(text.encode("ascii"))
            else:
                modes[k] = 1
                parts.append(" ".join(normalized_words(text, max_chars)).encode("utf-8"))
        starts = np.zeros(len(parts) + 1, np.int64)
        np.cumsum(np.fromiter(map(len, parts), np.int64, len(parts)), out=starts[1:])
        buf = np.frombuffer(b"".join(parts), np.uint8)
        table = self._table
        word_entries = np.empty((buf.size + len(parts)) // 2 + len(parts) + 1, np.int64)
        word_counts = np.zeros(len(parts), np.int64)
        table.state[3:] = 0
        t, stuck = 0, -1
        while t < len(parts):
            t = encode_words(buf, starts, modes, max_chars, t, word_entries, word_counts, table.state, table.pending,
                              *table.arrays(), *self._bpe)
            if table.state[4]:
                self._resolve_pending()
            if t < len(parts):
                if t == stuck:  # cannot happen: `reserve` makes the room `encode_words` checks for
                    raise RuntimeError(f"no room in the word table for text {t}")
                table.reserve(*room(int(starts[t + 1] - starts[t])))
                stuck = t
        return gather_ids(word_entries[: table.state[3]], word_counts, table.e_vstart, table.e_vlen, table.vals)

    def _resolve_pending(self) -> None:
        """Token ids of the table's pending words (not ASCII, or not for the numba BPE) by the Python path."""
        table = self._table
        entries = table.pending[: table.state[4]].tolist()
        table.state[4] = 0
        words, kinds, ids = [], [], []
        try:
            for e in entries:
                start, kind = int(table.e_kstart[e]), int(table.e_kind[e])
                word = table.keys[start: start + int(table.e_klen[e])].tobytes()
                words.append(word)
                kinds.append(kind)
                ids.append((self._spaced if kind == SPACED else self._first)[word.decode("utf-8")])
        except BaseException:
            self.clear()  # no word may stay without its ids
            raise
        table.put(words, kinds, ids)

    def line(self, normalized: str) -> str:
        """The fastText line of one normalised text: its tokens joined by spaces (never a newline)."""
        return " ".join(map(self.tokens.__getitem__, array("i", self.ids(normalized))))

    def lines(self, normalized: list[str]) -> list[str]:
        self._make_room()
        return [self.line(t) for t in normalized]

    def _make_room(self) -> None:
        """Empty the caches when they grew by more than `max_cached_words` (checked before each batch)."""
        grown = len(self._spaced) + len(self._pieces) - self._num_vocabulary_entries
        if self._table is not None:
            grown += len(self._table) - self._table_vocabulary_entries
        if grown > self.max_cached_words:
            self.clear()

    def clear(self) -> None:
        """Empty the caches (the word dicts, the numba word table and the BPE model's own piece cache) but
        for the vocabulary's own pieces and words."""
        for cache in (self._pieces, self._first, self._spaced):
            cache.clear()
        for token in self.tokens:
            try:
                piece = bytes(map(_CHAR_BYTES.__getitem__, token)).decode("utf-8")
            except (KeyError, UnicodeDecodeError):
                continue
            self._pieces[piece]
            if piece[:1] == " " and len(piece.split()) == 1:
                self._spaced[piece[1:]]
        self._num_vocabulary_entries = len(self._spaced) + len(self._pieces)
        if self._bpe is not None:
            self._table = WordTable()
            pieces, words = list(self._pieces), list(self._spaced)
            self._table.put([k.encode("utf-8") for k in pieces + words], [PIECE] * len(pieces) + [SPACED] * len(words),
                            [self._pieces[k] for k in pieces] + [self._spaced[k] for k in words])
            self._table_vocabulary_entries = len(self._table)
        clear_model_cache = getattr(self._pieces.model, "_clear_cache", None)
        if clear_model_cache is not None:  # the BPE model's own cache of pieces (`tokenizers` >= 0.20)
            clear_model_cache()


def bpe_lines(tok: Tokenizer, normalized: list[str]) -> list[str]:
    """The fastText lines of normalised texts with `tokenizers` itself (the reference `BpeEncoder` matches)."""
    return [" ".join(e.tokens) for e in tok.encode_batch(normalized)]


def load_bpe(path: str | Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))
