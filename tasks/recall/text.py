"""Text features of the recall loop: normalisation, BPE tokenisation, and the seed heuristics.

Pure functions only. Normalisation lower-cases, applies NFKC and collapses whitespace while keeping
code punctuation (it is what tells code-related pages apart). Before fastText the normalised text is
split by a small byte-level BPE trained on each round's seeds with HF `tokenizers` (spec §5: BPE
first, so the vocabulary stays small and non-space-separated scripts work); fastText then sees the
BPE pieces joined by spaces. The heuristics label round-0 seeds: the share of code-looking lines,
and the Appendix C.2 code-related file-name rule for repository text files.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

CODE_FILENAME_WORDS = ("readme", "notes", "todo", "description", "cmakelists")
"""Appendix C.2 / [R-FILT]: a file name containing one of these is code-related text."""

TEXT_EXTENSIONS = frozenset({".md", ".markdown", ".rst", ".txt", ".text", ".adoc", ".asciidoc", ".org", ".rdoc", ".textile"})
"""Extensions of repository text files (the ingest stage leaves doc_type null)."""

TEXT_FILENAMES = frozenset({"readme", "notes", "todo", "changelog", "changes", "authors", "contributing", "history", "news"})
"""Extension-less file names that are text."""

_WS = re.compile(r"\s+")
_CODE_LINE = re.compile(
    r"""^\s*(```|~~~|>>>|\$ |\#include|import\s|from\s+\S+\s+import|def\s|class\s|return\b|if\s*\(|for\s*\(|while\s*\(|
    function\s|const\s|let\s|var\s|public\s|private\s|static\s|\#!|@\w+|pip\s+install|npm\s|git\s|sudo\s|\}|\{)"""
    r"|[;{}]\s*$|\w+\(.*\)\s*:?\s*$|^\s{4,}\S|^\t+\S|=\s*\w+\(|->|=>|::",
    re.X,
)


def normalize(text: str, max_chars: int = 4000) -> str:
    """NFKC, lower case, whitespace collapsed to single spaces, cut to `max_chars`."""
    text = unicodedata.normalize("NFKC", text[: max_chars * 2])
    return _WS.sub(" ", text.lower()).strip()[:max_chars]


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


def bpe_line(tok: Tokenizer, normalized: str) -> str:
    """The fastText input line: BPE pieces joined by spaces (never containing a newline)."""
    return " ".join(tok.encode(normalized).tokens) if normalized else ""


def bpe_lines(tok: Tokenizer, normalized: list[str]) -> list[str]:
    """Batch version of `bpe_line`."""
    encodings = tok.encode_batch(normalized)
    return [" ".join(e.tokens) for e in encodings]


def load_bpe(path: str | Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))
