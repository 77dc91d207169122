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
import pandas as pd

from tasks.clean.comments import python_comment_text, raw_lines, split_code_comments

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


# nltk `wordpunct_tokenize` (the released tokenizer for every language but zh/ja): `\w+|[^\w\s]+`.
_WORD = re.compile(r"\w+|[^\w\s]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# zh substitute for jieba (not installed): one token per CJK character, word runs, and one token per symbol
# character (jieba yields the characters of a non-Han block one by one).
_ZH_WORD = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W\u3400-\u9fff\uf900-\ufaff]+|[^\w\s]")
PRECISION = 8
"""Released scores are `round(score, PRECISION)` (RedPajama `core/constants.py`: PRECISION = 8)."""


def _normalize_table() -> dict[int, str]:
    """`utils/text_utils.py::normalize_text` steps 1, 2 and 4 of the released `QSCodeDocument` normaliser as one
    `str.translate` table: control characters removed (or made spaces), full-width punctuation made half-width,
    then every ASCII punctuation character replaced by a space (utils/constants.py: CONTROL_TO_NORM,
    FULL_PUNCT_TO_HALF)."""
    control = {chr(c): "" for c in [*range(0x00, 0x08), *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x202C]}
    control.update({"\u2009": " ", "\u200b": " "})
    full = {chr(ord(h) + 0xFEE0): h for h in string.punctuation}  # half_to_full_width(string.punctuation)
    full.update({"。": ".", "、": ",", "《": '"', "》": '"', "【": "[", "】": "]", "「": "'", "」": "'",
                 "“": '"', "”": '"', "￥": "¥", "‘": "'", "’": "'"})
    table = {ord(c): r for c, r in control.items()}
    table.update({ord(f): " " if h in string.punctuation else h for f, h in full.items()})
    table.update({ord(c): " " for c in string.punctuation})
    return table


_NORMALIZE = _normalize_table()
_NORMALIZE_ASCII = bytes(
    b if chr(b) not in string.punctuation else 0x20 for b in range(256)
), bytes(b for b in range(128) if _NORMALIZE.get(b) == "")


def normalize(text: str) -> str:
    """The released normalised text (per line; lines never merge): controls removed, punctuation -> space,
    lower-cased, NFKC last (so NFKC output such as "…" -> "..." stays as punctuation)."""
    if text.isascii():
        table, delete = _NORMALIZE_ASCII
        return text.encode("ascii").translate(table, delete).decode("ascii").lower()
    return unicodedata.normalize("NFKC", text.translate(_NORMALIZE).lower())


_ASCII_NON_WORD_NON_SPACE = ("\x08", "\x1b", "\x7f")
"""The ASCII characters the normaliser keeps that are neither `\\w` nor whitespace (backspace, escape, delete)."""


def wordpunct_normalized(text: str, normalized: str) -> list[str]:
    """`_WORD.findall(normalized)`, where `normalized = normalize(text)`. The normalised text of an ASCII text
    without those three characters holds only `[a-z0-9]` and whitespace (every punctuation character became a
    space), so its tokens are its whitespace-separated runs: `str.split()` (the same whitespace as the regex's
    `\\s`), several times faster. (Not so for non-ASCII text: NFKC turns "…" into "...", a token.)"""
    if text.isascii() and not any(c in normalized for c in _ASCII_NON_WORD_NON_SPACE):
        return normalized.split()
    return _WORD.findall(normalized)


def split_lines(text: str) -> list[str]:
    """RedPajama `split_paragraphs` (`[^\\n]*\\n|[^\\n]+$`) without the newlines: a final newline ends the last
    line rather than starting an empty one, and the empty text has no line."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


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
        return normalize(self.text)

    @cached_property
    def words(self) -> list[str]:
        if self.natural_lang == "zh":
            return _ZH_WORD.findall(self.normalized)
        return wordpunct_normalized(self.text, self.normalized)

    @cached_property
    def lines(self) -> list[str]:
        """Raw lines without their newline (RedPajama `split_paragraphs`, see `split_lines`)."""
        return split_lines(self.text)

    @cached_property
    def line_lengths(self) -> list[int]:
        """Released line lengths: `split_paragraphs` keeps each line's newline, so every line but an unterminated
        last one counts one character more."""
        lengths = [len(line) + 1 for line in self.lines]
        if lengths and not self.text.endswith("\n"):
            lengths[-1] -= 1
        return lengths

    @cached_property
    def code_and_comments(self) -> tuple[str, str]:
        """The released `code_raw_content` / `comment_raw_content` (tasks/clean/comments.py)."""
        return split_code_comments(self.text, self.lang)

    @property
    def code_content(self) -> str:
        return self.code_and_comments[0]

    @cached_property
    def code_lines(self) -> list[str]:
        """The released `code_normalized_lines`: non-blank lines of the code, each with its newline."""
        return [line for line in raw_lines(self.code_content) if line.strip()]

    @cached_property
    def comment_lines(self) -> list[str]:
        """The released `comment_normalized_lines`: non-blank lines of the comments."""
        return [line for line in raw_lines(self.code_and_comments[1]) if line.strip()]

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
    """num / den rounded as the released scores are (None when den is 0)."""
    return round(num / den, PRECISION) if den else None


def ngram_codes(doc: Doc, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n-gram id per position, occurrences per id), ids numbered in order of first occurrence (a hash-table
    factorisation: linear, where sorting the keys is not)."""
    cache = doc.__dict__.setdefault("_ngram_codes", {})
    if n not in cache:
        codes, _ = pd.factorize(doc.ngram_keys(n), sort=False)
        cache[n] = codes, np.bincount(codes)
    return cache[n]


def frac_chars_top_ngram(doc: Doc, n: int) -> float | None:
    ids, lengths = doc.word_ids
    total = int(lengths.sum())
    if not total or len(ids) < n:
        return 0.0
    codes, counts = ngram_codes(doc, n)
    best = counts.max()
    if best <= 1:  # RedPajama: no n-gram repeats, so none is "most common"
        return 0.0
    # of the most frequent n-grams, the one that occurs first (ids follow first occurrence: the smallest id)
    start = int(np.argmax(codes == np.argmax(counts)))
    return round(float(best * lengths[start : start + n].sum() / total), PRECISION)


def frac_chars_dupe_ngram(doc: Doc, n: int) -> float | None:
    ids, lengths = doc.word_ids
    total = int(lengths.sum())
    if not total or len(ids) < n:
        return 0.0
    codes, counts = ngram_codes(doc, n)
    dup = (counts[codes] > 1).astype(np.int64)
    covered = np.convolve(dup, np.ones(n, dtype=np.int64))[: len(lengths)] > 0
    return round(float(lengths[covered].sum() / total), PRECISION)


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
    """quality_signals/code.py: code lines with whitespace removed; lines seen more than once count, except "},"
    and one-character lines; None for a text without lines."""
    if not doc.lines:
        return None
    squashed = [_WHITESPACE.sub("", line) for line in doc.code_lines]
    counts = Counter(squashed)
    dupes = sum(n for s, n in counts.items() if n != 1 and s != "}," and len(s) != 1)
    return _ratio(dupes, len(squashed))


_WHITESPACE = re.compile(r"\s+")


@signal("qsc_code_size_file_byte")
def size_file_byte(doc: Doc) -> float:
    return float(doc.size_bytes if doc.size_bytes is not None else len(doc.text.encode("utf-8", "replace")))


@signal("qsc_code_num_lines")
def num_lines(doc: Doc) -> float:
    return float(len(doc.lines))


# Line lengths include the newline (quality_signals/code.py: `len(text_slice.text)` of `split_paragraphs` slices);
# no line gives 0, not None.
@signal("qsc_code_num_chars_line_max")
def num_chars_line_max(doc: Doc) -> float:
    return float(max(doc.line_lengths, default=0))


@signal("qsc_code_num_chars_line_mean")
def num_chars_line_mean(doc: Doc) -> float | None:
    return _ratio(sum(doc.line_lengths), len(doc.lines)) or 0.0


# Released values with no visible character: alphabet 0.0, digits 1.0, whitespace (empty text) 1.0.
@signal("qsc_code_frac_chars_alphabet")
def code_frac_chars_alphabet(doc: Doc) -> float | None:
    non_ws, alpha, _, _ = _stats(doc)
    return _ratio(alpha, non_ws) if non_ws else 0.0


def _stats(doc: Doc) -> tuple[int, int, int, int]:
    stats = doc.__dict__.get("_char_stats")
    if stats is None:
        stats = doc.__dict__["_char_stats"] = _char_fractions(doc.text)
    return stats


@signal("qsc_code_frac_chars_digital")
def code_frac_chars_digital(doc: Doc) -> float | None:
    non_ws, _, digits, _ = _stats(doc)
    return _ratio(digits, non_ws) if non_ws else 1.0


@signal("qsc_code_frac_chars_whitespace")
@signal("qsc_doc_frac_chars_whitespace")
def frac_chars_whitespace(doc: Doc) -> float | None:
    return _ratio(_stats(doc)[3], len(doc.text)) if doc.text else 1.0


@signal("qsc_code_frac_chars_comments")
def frac_chars_comments(doc: Doc) -> float | None:
    """Comment characters over all characters: Python counts the released `get_text_python` text (docstrings and
    `#`-stripped comments), every other language the comment tokens of the code/comment split."""
    if doc.lang == "python":
        from tasks.clean.signals_lang import _python_tree

        return _ratio(len(python_comment_text(doc.text, _python_tree(doc))), len(doc.text))
    return _ratio(len(doc.code_and_comments[1]), len(doc.text))


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


# String literals as the released code finds them (quality_signals/code.py): a regex over the comment-free text,
# no escapes; `frac_lines_long_string` lets '...' and "..." span lines, the two others keep them on one line.
_STRINGS_MULTILINE = re.compile(r"\'\'\'(.*?)\'\'\'|\"\"\"(.*?)\"\"\"|\'(.*?)\'|\"(.*?)\"", re.DOTALL)
_STRINGS = re.compile(r"\'\'\'(.*?)\'\'\'|\"\"\"(.*?)\"\"\"|\'([^\n]*?)\'|\"([^\n]*?)\"", re.DOTALL)
_URL_WORD = re.compile(r".*https?://\S+.*")


def _string_bodies(pattern: re.Pattern, text: str) -> list[str]:
    return [g for groups in pattern.findall(text) for g in groups if g]


def _more_words_than(line: str, n: int) -> bool:
    """len(tokenize(line)) > n; wordpunct gives at least one token per whitespace-separated chunk."""
    if len(line) <= n:
        return False
    return len(line.split()) > n or len(_WORD.findall(line)) > n


@signal("qsc_code_frac_lines_long_string")
def frac_lines_long_string(doc: Doc) -> float | None:
    bodies = _string_bodies(_STRINGS_MULTILINE, doc.code_content)
    long_lines = sum(1 for s in bodies for line in s.split("\n") if _more_words_than(line, 20))
    return _ratio(long_lines, len(doc.code_lines))


@signal("qsc_code_frac_chars_string_length")
def frac_chars_string_length(doc: Doc) -> float | None:
    return _ratio(sum(map(len, _string_bodies(_STRINGS, doc.code_content))), len(doc.code_content))


@signal("qsc_code_frac_chars_long_word_length")
def frac_chars_long_word_length(doc: Doc) -> float | None:
    words = (w for s in _string_bodies(_STRINGS, doc.code_content) for w in s.split())
    long_chars = sum(len(w) for w in words if len(w) > 20 and not _URL_WORD.match(w))
    return _ratio(long_chars, len(doc.code_content))


_CONCAT = re.compile(r"""\s*=\s*["'].+?["']\s*\+\s*["'].+?["'].*""")


@signal("qsc_code_frac_lines_string_concat")
def frac_lines_string_concat(doc: Doc) -> float | None:
    return _ratio(sum(1 for line in doc.code_lines if _CONCAT.search(line)), len(doc.code_lines))


# quality_signals/code.py `QSC_Code_Cate_Encoded_Data`: base64, hexadecimal and unicode-escape runs.
_BASE64 = re.compile(r"[a-zA-Z0-9+/\n=]{64,}")
_HEX_UNICODE = [re.compile(r"(?:\b(?:0x|\\x)?[0-9a-fA-F]{2}(?:,|\b\s*)){8,}"), re.compile(r"(?:\\u[0-9a-fA-F]{4}){8,}")]


# Without a 64-character run of base64 characters the base64 pattern never matches (a run test anchored at
# run starts is linear; the pattern itself retries the 64-run at every position).
_BASE64_RUN = re.compile(r"(?<![a-zA-Z0-9+/\n=])[a-zA-Z0-9+/\n=]{64}")


@signal("qsc_code_cate_encoded_data")
def cate_encoded_data(doc: Doc) -> float:
    """quality_signals/code.py: each of the three patterns is matched on its own and their matched characters
    are summed (a span two patterns match counts twice)."""
    patterns = [_BASE64] if _BASE64_RUN.search(doc.text) else []
    patterns.append(_HEX_UNICODE[0])
    if "\\u" in doc.text:  # every unicode-escape match starts with a backslash-u
        patterns.append(_HEX_UNICODE[1])
    matched = 0
    for pattern in patterns:
        for m in pattern.finditer(doc.text):
            size = m.end() - m.start()
            if size > 1024:
                return 1.0
            matched += size
    return float(matched > 0.5 * len(doc.text))


_HEX_WORD = re.compile(r"\b0[xX][0-9a-fA-F]+\b")


@signal("qsc_code_frac_chars_hex_words")
def code_frac_chars_hex_words(doc: Doc) -> float | None:
    return _ratio(sum(len(m) for m in _HEX_WORD.findall(doc.code_content)), len(doc.code_content))


_PROMPT = re.compile(r"your code here|fixme|todo", re.I)


@signal("qsc_code_frac_lines_prompt_comments")
def frac_lines_prompt_comments(doc: Doc) -> float | None:
    hits = sum(1 for line in doc.comment_lines if _PROMPT.search(line))
    den = len(doc.comment_lines) if doc.options.fix_prompt_comments_denominator else len(doc.lines)
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
    return round(-sum(c / total * math.log(c / total) for c in counts.values()), PRECISION)


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


# quality_signals/doc.py `QSC_Doc_Frac_Lines_End_With_Readmore` and utils/constants.py `BULLETS`; both divide by
# every raw line, blank ones included.
_READMORE = ("...", "…", "全文", "详情", "详细", "更多", "المزيد", "تفاصيل", "اقرأ المزيد", "もっと", "詳細", "もっと読む")
_BULLETS = tuple(chr(c) for c in (
    0x2022, 0x2023, 0x2043, 0x204C, 0x204D, 0x2219, *range(0x25A0, 0x25B0), 0x25CB, 0x25CF, 0x25E6, 0x25C6, 0x25C7,
    0x25C8, 0x25C9, 0x25CA, 0x25D0, 0x25D1, 0x25D2, 0x25D3, 0x25D4, 0x25D5, 0x25D6, 0x25D8, 0x25D9, 0x25E2, 0x25E3,
    0x25E4, 0x25E5, 0x25EF, 0x2611, 0x2612, 0x2B1B, 0x2B1C, 0x2B24, 0x2B1E, 0x2B1F, 0x29BE))


@signal("qsc_doc_frac_lines_end_with_readmore")
def frac_lines_end_with_readmore(doc: Doc) -> float | None:
    hits = sum(1 for line in doc.lines if line.rstrip().rstrip("]】)>》").endswith(_READMORE))
    return _ratio(hits, len(doc.lines))


@signal("qsc_doc_frac_lines_start_with_bullet")
def frac_lines_start_with_bullet(doc: Doc) -> float | None:
    return _ratio(sum(1 for line in doc.lines if line.lstrip().startswith(_BULLETS)), len(doc.lines))


def _raw_words(doc: Doc) -> list[str]:
    """The released `raw_words`: the tokenizer on the raw (not normalised) text (wordpunct; zh: the jieba substitute)."""
    if "_raw_words" not in doc.__dict__:
        doc.__dict__["_raw_words"] = (_ZH_WORD if doc.natural_lang == "zh" else _WORD).findall(doc.text)
    return doc.__dict__["_raw_words"]


@signal("qsc_doc_frac_words_all_caps")
def frac_words_all_caps(doc: Doc) -> float | None:
    """RedPajama `RPS_Doc_Frac_All_Caps_Words`: `str.isupper` words over all raw tokens (punctuation tokens too)."""
    words = _raw_words(doc)
    return _ratio(sum(map(str.isupper, words)), len(words))


@signal("qsc_doc_frac_words_full_bracket")
def frac_words_full_bracket(doc: Doc) -> float | None:
    """quality_signals/doc.py: tokens that are exactly "【" or "】", over all raw tokens."""
    words = _raw_words(doc)
    return _ratio(sum(1 for w in words if w in ("【", "】")), len(words))


# quality_signals/doc.py `QSC_Doc_Num_Sentences`, on the raw text.
_SENTENCE = re.compile(r"\b[^.!?。！？؟]+[.!?。！？؟]*")


@signal("qsc_doc_num_sentences")
def num_sentences(doc: Doc) -> float | None:
    """The released rule is `x == 1`: a text with no sentence (no word character) never fires, so 0 is None
    here (the configured bounds `[2, null]` would fire on it)."""
    return float(len(_SENTENCE.findall(doc.text))) or None


@signal("qsc_doc_num_lines")
def doc_num_lines(doc: Doc) -> float:
    return float(len(doc.lines))


@signal("qsc_doc_frac_chars_hex_words")
def doc_frac_chars_hex_words(doc: Doc) -> float | None:
    return _ratio(sum(len(m) for m in _HEX_WORD.findall(doc.text)), len(doc.text))


# quality_signals/doc.py `QSC_Doc_Frac_Chars_Url_Html_Tag`: "(http...)" link targets and "<...>" tags, matched
# separately and summed.
_LINK = re.compile(r"\(https?://\S+\)")
_TAG = re.compile(r"<.*?>")


@signal("qsc_doc_frac_chars_hyperlink_html_tag")
def frac_chars_hyperlink_html_tag(doc: Doc) -> float | None:
    count = sum(map(len, _LINK.findall(doc.text))) + sum(map(len, _TAG.findall(doc.text)))
    return _ratio(count, len(doc.text))


@signal("qsc_doc_frac_chars_alphabet")
def doc_frac_chars_alphabet(doc: Doc) -> float | None:
    non_ws, alpha, _, _ = _stats(doc)
    if not non_ws:
        return 0.0  # released: checked before the language
    if doc.natural_lang != "en" and not doc.options.fix_alphabet_non_en:
        return None  # released quirk: only computed for English
    return _ratio(alpha, non_ws)


@signal("qsc_doc_frac_chars_digital")
def doc_frac_chars_digital(doc: Doc) -> float | None:
    non_ws, _, digits, _ = _stats(doc)
    return _ratio(digits, non_ws) if non_ws else 1.0


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
    non_space = sum(map(len, sample.split()))  # str.split() splits on exactly the str.isspace() characters
    return "zh" if non_space and len(_CJK.findall(sample)) / non_space >= 0.3 else "en"
