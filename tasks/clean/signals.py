"""Quality signals of the released RefineCode filter (`opc_data_filtering/quality_signals`), re-implemented.

`Doc` holds one file and caches what several signals share (normalized words, lines, the
comment-free code, string literals, word n-gram statistics). Each signal is a small function
`Doc -> float | None` registered under its released name (`qsc_code_*`, `qsc_doc_*`,
`qsc_code<lang>_*`); booleans are returned as 0.0/1.0 and `None` means "not computable" (it never
fires). N-gram signals follow RedPajama-V2 and are vectorised with numpy (word ids hashed into
64-bit n-gram keys).
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from tasks.clean.syntax import Scan, scan

Signal = Callable[["Doc"], float | None]
SIGNALS: dict[str, Signal] = {}


def signal(name: str):
    def register(fn: Signal) -> Signal:
        SIGNALS[name] = fn
        return fn

    return register


@dataclass(frozen=True)
class Options:
    """Quirk switches (see CleanConfig) that change how a signal is computed."""

    fix_substring_matching: bool = False
    fix_var_zero: bool = False
    fix_prompt_comments_denominator: bool = False
    fix_alphabet_non_en: bool = False


_WORD = re.compile(r"[^\W_]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_ZH_WORD = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W_\u3400-\u9fff\uf900-\ufaff]+")


@dataclass
class Doc:
    text: str
    path: str = ""
    lang: str = "others"
    """Program language (routing)."""
    natural_lang: str = "en"
    size_bytes: int | None = None
    options: Options = field(default_factory=Options)

    @cached_property
    def normalized(self) -> str:
        return unicodedata.normalize("NFKC", self.text).lower()

    @cached_property
    def words(self) -> list[str]:
        pattern = _ZH_WORD if self.natural_lang == "zh" else _WORD
        return pattern.findall(self.normalized)

    @cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @cached_property
    def scan(self) -> Scan:
        return scan(self.text, self.lang)

    @cached_property
    def code_lines(self) -> list[str]:
        return [line for line in self.scan.code_only.split("\n") if line.strip()]

    @cached_property
    def word_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """(word id per position, word length per position) for n-gram statistics."""
        words = self.words
        vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}  # ids in order of first occurrence
        ids = np.fromiter(map(vocab.__getitem__, words), dtype=np.uint64, count=len(words))
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        return ids, lengths

    def ngram_keys(self, n: int) -> np.ndarray:
        """64-bit keys of the word n-grams (a polynomial hash of the word ids), built from the (n-1)-gram keys."""
        cache = self.__dict__.setdefault("_ngram_keys", {})
        if n not in cache:
            ids, _ = self.word_ids
            m = len(ids) - n + 1
            if m <= 0:
                cache[n] = np.empty(0, dtype=np.uint64)
            else:
                shorter = self.ngram_keys(n - 1)[:m] if n > 1 else np.zeros(m, dtype=np.uint64)
                with np.errstate(over="ignore"):
                    cache[n] = shorter * np.uint64(1_000_003) + ids[n - 1 : n - 1 + m] + np.uint64(1)
        return cache[n]

    def count_lines(self, needle: str, lines: list[str] | None = None) -> int:
        lines = self.code_lines if lines is None else lines
        if self.options.fix_substring_matching:
            pattern = re.compile(rf"\b{re.escape(needle)}\b")
            return sum(1 for line in lines if pattern.search(line))
        return sum(1 for line in lines if needle in line)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def frac_chars_top_ngram(doc: Doc, n: int) -> float | None:
    ids, lengths = doc.word_ids
    total = int(lengths.sum())
    keys = doc.ngram_keys(n)
    if not total or not len(keys):
        return 0.0
    uniq, first, counts = np.unique(keys, return_index=True, return_counts=True)
    best = counts.max()
    if best <= 1:  # RedPajama: no n-gram repeats, so none is "most common"
        return 0.0
    start = int(first[counts == best].min())
    return float(best * lengths[start : start + n].sum() / total)


def frac_chars_dupe_ngram(doc: Doc, n: int) -> float | None:
    ids, lengths = doc.word_ids
    total = int(lengths.sum())
    keys = doc.ngram_keys(n)
    if not total or not len(keys):
        return 0.0
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    dup = (counts[inverse] > 1).astype(np.int64)
    covered = np.convolve(dup, np.ones(n, dtype=np.int64))[: len(lengths)] > 0
    return float(lengths[covered].sum() / total)


def _register_ngram_signals(prefix: str) -> None:
    for n in (2, 3, 4):
        signal(f"{prefix}_frac_chars_top_{n}grams")(lambda doc, n=n: frac_chars_top_ngram(doc, n))
    for n in range(5, 11):
        signal(f"{prefix}_frac_chars_dupe_{n}grams")(lambda doc, n=n: frac_chars_dupe_ngram(doc, n))


_register_ngram_signals("qsc_code")
_register_ngram_signals("qsc_doc")


_ASCII_LETTERS = string.ascii_letters.encode()
_ASCII_DIGITS = string.digits.encode()


def _char_fractions(text: str) -> tuple[int, int, int, int]:
    """(non-whitespace chars, alphabetic, digits, whitespace). For ASCII text, `str.isalpha`/`isdigit`
    are exactly the ASCII letters/digits, counted by deleting them from the bytes (C speed)."""
    whitespace = len(text) - sum(map(len, text.split()))
    if text.isascii():
        data = text.encode("ascii")
        alpha = len(data) - len(data.translate(None, _ASCII_LETTERS))
        digits = len(data) - len(data.translate(None, _ASCII_DIGITS))
    else:
        alpha = sum(map(str.isalpha, text))
        digits = sum(map(str.isdigit, text))
    return len(text) - whitespace, alpha, digits, whitespace


# ---- general code signals (quality_signals/code.py) ----

@signal("qsc_code_frac_chars_replacement_symbols")
@signal("qsc_doc_frac_chars_replacement_symbols")
def frac_chars_replacement_symbols(doc: Doc) -> float | None:
    return _ratio(doc.text.count("\ufffd"), len(doc.text))


@signal("qsc_code_num_words")
@signal("qsc_doc_num_words")
def num_words(doc: Doc) -> float:
    return float(len(doc.words))


@signal("qsc_code_num_chars")
@signal("qsc_doc_num_chars")
def num_chars(doc: Doc) -> float:
    return float(len(doc.text))


@signal("qsc_code_mean_word_length")
@signal("qsc_doc_mean_word_length")
def mean_word_length(doc: Doc) -> float | None:
    return _ratio(sum(map(len, doc.words)), len(doc.words))


@signal("qsc_code_frac_words_unique")
@signal("qsc_doc_frac_words_unique")
def frac_words_unique(doc: Doc) -> float | None:
    return _ratio(len(set(doc.words)), len(doc.words))


@signal("qsc_code_frac_lines_dupe_lines")
def code_frac_lines_dupe_lines(doc: Doc) -> float | None:
    squashed = ["".join(line.split()) for line in doc.code_lines]
    counts = Counter(squashed)
    dupes = sum(1 for s in squashed if counts[s] > 1 and len(s) > 1 and s != "},")
    return _ratio(dupes, len(squashed))


@signal("qsc_code_size_file_byte")
def size_file_byte(doc: Doc) -> float:
    return float(doc.size_bytes if doc.size_bytes is not None else len(doc.text.encode("utf-8", "replace")))


@signal("qsc_code_num_lines")
def num_lines(doc: Doc) -> float:
    return float(len(doc.lines))


@signal("qsc_code_num_chars_line_max")
def num_chars_line_max(doc: Doc) -> float:
    return float(max(map(len, doc.lines)))


@signal("qsc_code_num_chars_line_mean")
def num_chars_line_mean(doc: Doc) -> float | None:
    return _ratio(sum(map(len, doc.lines)), len(doc.lines))


@signal("qsc_code_frac_chars_alphabet")
def code_frac_chars_alphabet(doc: Doc) -> float | None:
    non_ws, alpha, _, _ = _stats(doc)
    return _ratio(alpha, non_ws)


def _stats(doc: Doc) -> tuple[int, int, int, int]:
    stats = doc.__dict__.get("_char_stats")
    if stats is None:
        stats = doc.__dict__["_char_stats"] = _char_fractions(doc.text)
    return stats


@signal("qsc_code_frac_chars_digital")
def code_frac_chars_digital(doc: Doc) -> float | None:
    non_ws, _, digits, _ = _stats(doc)
    return _ratio(digits, non_ws)


@signal("qsc_code_frac_chars_whitespace")
@signal("qsc_doc_frac_chars_whitespace")
def frac_chars_whitespace(doc: Doc) -> float | None:
    return _ratio(_stats(doc)[3], len(doc.text))


@signal("qsc_code_frac_chars_comments")
def frac_chars_comments(doc: Doc) -> float | None:
    return _ratio(doc.scan.comment_chars, len(doc.text))


@signal("qsc_code_cate_xml_start")
def cate_xml_start(doc: Doc) -> float:
    return float("<?xml version=" in doc.text[:100])


_AUTOGEN = re.compile(
    r"auto-generated|autogenerated|automatically generated|generated automatically|this file is generated|generate|autogen|do not edit",
    re.I,
)


@signal("qsc_code_cate_autogen")
def cate_autogen(doc: Doc) -> float:
    return float(bool(_AUTOGEN.search(doc.text[:200])))


@signal("qsc_code_frac_lines_long_string")
def frac_lines_long_string(doc: Doc) -> float | None:
    long_lines = sum(1 for s in doc.scan.strings for line in s.split("\n") if len(line.split()) > 20)
    return _ratio(long_lines, len(doc.code_lines))


@signal("qsc_code_frac_chars_string_length")
def frac_chars_string_length(doc: Doc) -> float | None:
    return _ratio(sum(map(len, doc.scan.strings)), len(doc.scan.code_only))


@signal("qsc_code_frac_chars_long_word_length")
def frac_chars_long_word_length(doc: Doc) -> float | None:
    long_chars = sum(
        len(w) for s in doc.scan.strings for w in s.split() if len(w) > 20 and not w.startswith(("http://", "https://", "www."))
    )
    return _ratio(long_chars, len(doc.scan.code_only))


_CONCAT = re.compile(r"=\s*([\"']).*?\1\s*\+\s*[\"']")


@signal("qsc_code_frac_lines_string_concat")
def frac_lines_string_concat(doc: Doc) -> float | None:
    return _ratio(sum(1 for line in doc.code_lines if _CONCAT.search(line)), len(doc.code_lines))


_ENCODED = re.compile(r"[a-zA-Z0-9+/\n=]{64,}|(?:\b(?:0x|\\x)?[0-9a-fA-F]{2}(?:,|\b\s*)){8,}|(?:\\u[0-9a-fA-F]{4}){8,}")


# Without a 64-character run of base64 characters the first alternative never matches, and the
# other two give the same matches alone (a run test anchored at run starts is linear; the full
# pattern retries the 64-run at every position).
_BASE64_RUN = re.compile(r"(?<![a-zA-Z0-9+/\n=])[a-zA-Z0-9+/\n=]{64}")
_ENCODED_NO_BASE64 = re.compile(_ENCODED.pattern.split("|", 1)[1])


@signal("qsc_code_cate_encoded_data")
def cate_encoded_data(doc: Doc) -> float:
    matched = 0
    pattern = _ENCODED if _BASE64_RUN.search(doc.text) else _ENCODED_NO_BASE64
    for m in pattern.finditer(doc.text):
        size = m.end() - m.start()
        if size > 1024:
            return 1.0
        matched += size
    return float(matched > 0.5 * len(doc.text))


_HEX_WORD = re.compile(r"\b0[xX][0-9a-fA-F]+\b")


@signal("qsc_code_frac_chars_hex_words")
def code_frac_chars_hex_words(doc: Doc) -> float | None:
    return _ratio(sum(len(m) for m in _HEX_WORD.findall(doc.scan.code_only)), len(doc.scan.code_only))


_PROMPT = re.compile(r"your code here|fixme|todo", re.I)


@signal("qsc_code_frac_lines_prompt_comments")
def frac_lines_prompt_comments(doc: Doc) -> float | None:
    comment_lines = [line for c in doc.scan.comments for line in c.split("\n")]
    hits = sum(1 for line in comment_lines if _PROMPT.search(line))
    den = len(comment_lines) if doc.options.fix_prompt_comments_denominator else len(doc.lines)
    return _ratio(hits, den)


@signal("qsc_code_frac_lines_assert")
def frac_lines_assert(doc: Doc) -> float | None:
    return _ratio(sum(1 for line in doc.code_lines if "assert" in line.lower()), len(doc.code_lines))


# ---- natural-language signals (quality_signals/doc.py) ----

@signal("qsc_doc_entropy_unigram")
def entropy_unigram(doc: Doc) -> float | None:
    counts = Counter(doc.words)
    total = sum(counts.values())
    if not total:
        return None
    return -sum(c / total * math.log(c / total) for c in counts.values())


def _doc_lines(doc: Doc) -> list[str]:
    return [line.strip() for line in doc.lines if line.strip()]


@signal("qsc_doc_frac_chars_dupe_lines")
def doc_frac_chars_dupe_lines(doc: Doc) -> float | None:
    lines = _doc_lines(doc)
    counts = Counter(lines)
    return _ratio(sum(len(line) for line in lines if counts[line] > 1), sum(map(len, lines)))


@signal("qsc_doc_frac_lines_dupe_lines")
def doc_frac_lines_dupe_lines(doc: Doc) -> float | None:
    lines = _doc_lines(doc)
    counts = Counter(lines)
    return _ratio(sum(1 for line in lines if counts[line] > 1), len(lines))


_READMORE = ("...", "…", "更多", "阅读全文", "read more")


@signal("qsc_doc_frac_lines_end_with_readmore")
def frac_lines_end_with_readmore(doc: Doc) -> float | None:
    lines = _doc_lines(doc)
    return _ratio(sum(1 for line in lines if line.lower().endswith(_READMORE)), len(lines))


_BULLETS = ("\u2022", "\u2023", "\u25b6", "\u25c0", "\u25e6", "\u25a0", "\u25a1", "\u25aa", "\u25ab", "\u2013", "\u25cf", "-", "*")


@signal("qsc_doc_frac_lines_start_with_bullet")
def frac_lines_start_with_bullet(doc: Doc) -> float | None:
    lines = _doc_lines(doc)
    return _ratio(sum(1 for line in lines if line.startswith(_BULLETS)), len(lines))


_RAW_WORD = re.compile(r"\w+|[^\w\s]+")


@signal("qsc_doc_frac_words_all_caps")
def frac_words_all_caps(doc: Doc) -> float | None:
    words = [w for w in _RAW_WORD.findall(doc.text) if any(c.isalpha() for c in w)]
    return _ratio(sum(1 for w in words if w.isupper()), len(words))


@signal("qsc_doc_frac_words_full_bracket")
def frac_words_full_bracket(doc: Doc) -> float | None:
    words = _RAW_WORD.findall(doc.text)
    return _ratio(sum(1 for w in words if "【" in w or "】" in w), len(words))


_SENTENCE_END = re.compile(r"[.!?。！？]+(?:\s|$)")


@signal("qsc_doc_num_sentences")
def num_sentences(doc: Doc) -> float:
    return float(len(_SENTENCE_END.findall(doc.text.strip())) or (1 if doc.text.strip() else 0))


@signal("qsc_doc_num_lines")
def doc_num_lines(doc: Doc) -> float:
    return float(len(doc.lines))


@signal("qsc_doc_frac_chars_hex_words")
def doc_frac_chars_hex_words(doc: Doc) -> float | None:
    return _ratio(sum(len(m) for m in _HEX_WORD.findall(doc.text)), len(doc.text))


_LINK_OR_TAG = re.compile(r"\[[^\]\n]*\]\([^)\n]*\)|<[^<>\n]+>")


@signal("qsc_doc_frac_chars_hyperlink_html_tag")
def frac_chars_hyperlink_html_tag(doc: Doc) -> float | None:
    return _ratio(sum(len(m) for m in _LINK_OR_TAG.findall(doc.text)), len(doc.text))


@signal("qsc_doc_frac_chars_alphabet")
def doc_frac_chars_alphabet(doc: Doc) -> float | None:
    if doc.natural_lang != "en" and not doc.options.fix_alphabet_non_en:
        return None  # released quirk: only computed for English
    non_ws, alpha, _, _ = _stats(doc)
    return _ratio(alpha, non_ws)


@signal("qsc_doc_frac_chars_digital")
def doc_frac_chars_digital(doc: Doc) -> float | None:
    non_ws, _, digits, _ = _stats(doc)
    return _ratio(digits, non_ws)


@signal("qsc_doc_frac_chars_curly_bracket")
def frac_chars_curly_bracket(doc: Doc) -> float | None:
    return _ratio(doc.text.count("{") + doc.text.count("}"), len(doc.text))


_CODE_RELATED_NAMES = ("readme", "notes", "todo", "description", "cmakelists")


@signal("qsc_doc_cate_code_related_file_name")
def cate_code_related_file_name(doc: Doc) -> float:
    name = doc.path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    stem = name.rsplit(".", 1)[0]
    return float(stem in _CODE_RELATED_NAMES or "requirement" in name or name == "read.me")


def natural_language(text: str) -> str:
    """en or zh. Substitute for the released fastText `lang_predictor.bin` (not shipped): a text whose
    non-space characters are at least 30% CJK ideographs is zh, anything else is en."""
    sample = text[:20000]
    non_space = sum(1 for c in sample if not c.isspace())
    return "zh" if non_space and len(_CJK.findall(sample)) / non_space >= 0.3 else "en"
