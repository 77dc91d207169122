"""Every active rule of every clean config, on literal inputs built around its threshold.

For each config of params.yaml's `clean` section (others, data, shell, sql, html, the seven code
languages, and text en/zh) and each enabled threshold of each rule, a family of documents is built
whose only moving part is that rule's signal: a valid file of the config's language (a `Lang`),
plus `k` lines (or characters, words, spaces) that push the signal towards the threshold. The
smallest `k` at which the rule fires is found by bisection, so document `k - 1` just passes and
document `k` just fails. Both are then run through the whole rule set of the config
(`rules.evaluate`, all rules, no p=0.8 draws): the passing one must pass every rule, the failing one
must fail exactly this rule, plus the rules that are implied by it (a duplicated 7-gram span is a
duplicated 6-gram span too) or that cannot be separated from it by construction (`ALSO_FAILS`,
each with its reason). Rules whose released implementation can never fire get a test that says so.
Routing is checked for every entry of the filename map.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tasks.clean.config import CleanConfig
from tasks.clean.routing import DATA_DIR, doc_type, program_lang, route, rule_config
from tasks.clean.rules import evaluate, fires
from tasks.clean.signals import SIGNALS, Doc, Options

CFG = dataclasses.replace(CleanConfig(), drop_probability={}, evaluate_all_rules=True)
"""The shipped rules, every rule evaluated, no random draws (the p=0.8 rules always fire)."""

CONFIGS = ["others", "data", "shell", "sql", "html", "go", "python", "c", "cpp", "csharp", "java", "javascript", "en", "zh"]


# ---- words: pseudo-words that contain no keyword any rule looks for (pass, import, print, todo, hex...) ----

_CONSONANTS, _VOWELS = "klmnrstvz", "aeiou"
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]


def _word_stream():
    for a, b in itertools.product(_SYLLABLES, repeat=2):
        if a != b:
            yield a + b
    for a, b, c in itertools.product(_SYLLABLES, repeat=3):
        yield a + b + c


class Words:
    """Fresh distinct words, deterministic: `Words().take(n)`; `long=True`: six-letter words."""

    def __init__(self, long: bool = False) -> None:
        self._it = _word_stream()
        if long:
            self._it = itertools.islice(self._it, 2000, None)

    def take(self, n: int) -> list[str]:
        return [next(self._it) for _ in range(n)]


_HANZI = [chr(c) for c in range(0x4E00, 0x4E00 + 3000) if chr(c).isalpha()]


def hanzi(key: str, n: int = 2) -> str:
    """`n` CJK characters fixed by `key` (so a repeated line repeats them too)."""
    h = zlib.crc32(key.encode())
    return "".join(_HANZI[(h + 7919 * i) % len(_HANZI)] for i in range(n))


# ---- languages: how a config writes a statement, a comment, a string and a file ----

@dataclass(frozen=True)
class Lang:
    config: str
    path: str
    lang: str
    stmt: Callable[[list[str]], str]
    """A statement (or text line) made of the given words, in this order, contiguous."""
    comment: Callable[[str], str]
    string: Callable[[str, str], str]
    """A statement assigning a string literal to a name."""
    natural_lang: str = "en"
    wrap: Callable[[list[str]], str] = lambda lines: "\n".join(lines) + "\n"
    block: Callable[[str], str] | None = None
    """A multi-line comment or text block holding raw lines (for encoded data)."""
    extra_base: tuple[str, ...] = ()
    """Lines every file of the language carries (a declaration some rules need)."""


def _call(ws: list[str], end: str = "") -> str:
    if len(ws) == 1:
        return f"{ws[0]}(){end}"
    return f"{ws[0]} = {ws[1]}({', '.join(ws[2:])}){end}"


def _sentence(ws: list[str]) -> str:
    text = " ".join(ws)
    return text[:1].upper() + text[1:] + "."


def _zh_sentence(ws: list[str]) -> str:
    return hanzi(ws[0]) + " " + " ".join(ws) + "。"


def _line(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


LANGS = {
    "python": Lang("python", "a.py", "python", _call, lambda t: f"# {t}", lambda n, s: f'{n} = "{s}"',
                   block=lambda body: f'"""\n{body}\n"""'),
    "c": Lang("c", "a.c", "c", lambda ws: _call(ws, ";"), lambda t: f"// {t}", lambda n, s: f'{n} = "{s}";',
              block=lambda body: f"/*\n{body}\n*/"),
    "cpp": Lang("cpp", "a.cpp", "cpp", lambda ws: _call(ws, ";"), lambda t: f"// {t}", lambda n, s: f'{n} = "{s}";',
                block=lambda body: f"/*\n{body}\n*/"),
    "csharp": Lang("csharp", "A.cs", "csharp", lambda ws: _call(ws, ";"), lambda t: f"// {t}", lambda n, s: f'{n} = "{s}";',
                   block=lambda body: f"/*\n{body}\n*/"),
    "java": Lang("java", "A.java", "java", lambda ws: _call(ws, ";"), lambda t: f"// {t}", lambda n, s: f'{n} = "{s}";',
                 block=lambda body: f"/*\n{body}\n*/", extra_base=("String zolu = mazi;",)),
    "go": Lang("go", "a.go", "go", _call, lambda t: f"// {t}", lambda n, s: f'{n} = "{s}"',
               block=lambda body: f"/*\n{body}\n*/"),
    "javascript": Lang("javascript", "a.js", "javascript", lambda ws: _call(ws, ";"), lambda t: f"// {t}",
                       lambda n, s: f'{n} = "{s}";', block=lambda body: f"/*\n{body}\n*/",
                       extra_base=("var zolu = mazi;",)),
    "shell": Lang("shell", "a.sh", "shell", lambda ws: " ".join(ws), lambda t: f"# {t}", lambda n, s: f'{n}="{s}"',
                  block=lambda body: body),
    "sql": Lang("sql", "a.sql", "sql", lambda ws: "SELECT " + ", ".join(ws) + ";", lambda t: f"-- {t}",
                lambda n, s: f"SELECT '{s}' AS {n};", block=lambda body: f"/*\n{body}\n*/"),
    "data": Lang("data", "a.yaml", "yaml", lambda ws: f"{ws[0]}: {' '.join(ws[1:])}".rstrip(), lambda t: f"# {t}",
                 lambda n, s: f'{n}: "{s}"', block=lambda body: body),
    "others": Lang("others", "a.rb", "ruby", _call, lambda t: f"# {t}", lambda n, s: f'{n} = "{s}"',
                   block=lambda body: body),
    "html": Lang("html", "a.html", "html", lambda ws: " ".join(ws), lambda t: f"<!-- {t} -->",
                 lambda n, s: f'<p title="{s}">{n}</p>', block=lambda body: f"<p>\n{body}\n</p>",
                 wrap=lambda lines: "<html>\n<body>\n" + "\n".join(lines) + "\n</body>\n</html>\n"),
    "en": Lang("en", "README.md", "markdown", _sentence, _line, lambda n, s: _sentence([n, s]),
               block=lambda body: body),
    "zh": Lang("zh", "README.md", "markdown", _zh_sentence, lambda t: hanzi(t) + t + "。", lambda n, s: _zh_sentence([n, s]),
               natural_lang="zh", block=lambda body: body),
}


def base_lines(lang: Lang, words: Words, n: int = 16, per_line: int = 4) -> list[str]:
    """`n` statements of fresh words: a file that passes every rule of its config."""
    return [*lang.extra_base, *(lang.stmt(words.take(per_line)) for _ in range(n))]


def make_doc(lang: Lang, text: str, **kw) -> Doc:
    return Doc(text=text, path=kw.pop("path", lang.path), lang=lang.lang, natural_lang=lang.natural_lang, **kw)


def failed_rules(lang: Lang, doc: Doc, cfg: CleanConfig = CFG) -> list[str]:
    return evaluate(doc, "doc", cfg.rules_for(lang.config), cfg).failed


def text_of_length(words: Words, length: int) -> str:
    """Fresh words joined by spaces, exactly `length` characters (the last word cut)."""
    out = ""
    while len(out) < length:
        out = f"{out} {words.take(1)[0]}" if out else words.take(1)[0]
    out = out[:length]
    return out if not out.endswith(" ") else out[:-1] + "z"


# ---- families: document k of a rule, whose signal moves towards firing as k grows ----

Family = Callable[[Lang, int], tuple[str, dict]]


def lines_family(extra: Callable[[Lang, Words, int], list[str]], n_base: int = 16, per_line: int = 4,
                 tail: bool = True) -> Family:
    """The base file plus `extra(lang, words, k)` lines (after the base, or before it)."""

    def build(lang: Lang, k: int) -> tuple[str, dict]:
        words = Words()
        base = base_lines(lang, words, n_base, per_line)
        added = extra(lang, words, k)
        return lang.wrap(base + added if tail else added + base), {}

    return build


def repeat(line: Callable[[Lang, Words, int], str]) -> Callable[[Lang, Words, int], list[str]]:
    return lambda lang, words, k: [line(lang, words, i) for i in range(k)]


def carrier(lang: Lang, ws: list[str]) -> str:
    """A line holding exactly these words in this order (SQL's statement adds a keyword: a comment there)."""
    return lang.comment(" ".join(ws)) if lang.config == "sql" else lang.stmt(ws)


def ngram_lines(n: int) -> Callable[[Lang, Words, int], list[str]]:
    """Lines carrying one fixed n-gram after a fresh word (top n-gram signals)."""
    fixed = ["zova", "ruki", "sane", "mote"][:n]
    return repeat(lambda lang, words, i: carrier(lang, words.take(1) + fixed))


def dupe_span_family(n: int) -> Family:
    """The base file, then k n-word spans of six-letter words, two per line, each span written twice: in
    order in a first half and in reverse order in a second half, every span after a one-letter separator
    that differs between the halves. Every word of a span is in a duplicated n-gram; no (n+1)-gram repeats."""

    def build(lang: Lang, k: int) -> tuple[str, dict]:
        words, long = Words(), Words(long=True)
        spans = [long.take(n) for _ in range(k)]
        halves = []
        for order, seps in ((spans, "abcdefghijklm"), (spans[::-1], "nopqrstuvwxyz")):
            lines = []
            for i in range(0, len(order), 2):
                ws = [seps[i % 13], *order[i]] + ([seps[(i + 1) % 13], *order[i + 1]] if i + 1 < len(order) else [])
                lines.append(carrier(lang, ws))
            halves += lines
        return lang.wrap(base_lines(lang, words, n=24) + halves), {}

    return build


def dupe_lines(per_line: int) -> Callable[[Lang, Words, int], list[str]]:
    """k distinct lines, then the same lines in reverse order (duplicated lines, no duplicated 5-grams)."""

    def extra(lang: Lang, words: Words, k: int) -> list[str]:
        lines = [lang.stmt(words.take(per_line)) for _ in range(k)]
        return lines + lines[::-1]

    return extra


def num_words_family(lang: Lang, k: int) -> tuple[str, dict]:
    """12 lines sharing 60 - k words round-robin (each line keeps at least one)."""
    words = Words().take(60 - k)
    rows = [words[i::12] for i in range(12)]
    return lang.wrap([*lang.extra_base, *(lang.stmt(r) for r in rows if r)]), {}


def num_lines_family(lang: Lang, k: int) -> tuple[str, dict]:
    """14 - k lines of 8 words each (the file's line count includes the final empty line)."""
    words = Words()
    body = [lang.stmt(words.take(8)) for _ in range(14 - k)]
    return lang.wrap([*lang.extra_base, *body]).rstrip("\n"), {}


def mean_word_length_family(longer: bool) -> Family:
    """16 lines of 6 words; the first k words become 20 letters long (longer) or one letter (shorter)."""

    def build(lang: Lang, k: int) -> tuple[str, dict]:
        words = Words()
        lines = []
        for i in range(16):
            ws = words.take(6)
            for j in range(6):
                if 6 * i + j < k:
                    ws[j] = (ws[j] * 5)[:20] if longer else "abcdefghijklmnopqrstuvwxyz"[(6 * i + j) % 26]
            lines.append(lang.stmt(ws))
        return lang.wrap([*lang.extra_base, *lines]), {}

    return build


def entropy_family(lang: Lang, k: int) -> tuple[str, dict]:
    """Sentences drawn from a vocabulary of 40 - k words, in a fixed shuffled order."""
    vocab = Words().take(max(2, 40 - k))
    import random

    rng = random.Random(0)
    lines = [lang.stmt([rng.choice(vocab) for _ in range(8)]) for _ in range(16)]
    return lang.wrap(lines), {}


def line_length_family(lang: Lang, k: int) -> tuple[str, dict]:
    """One comment line of k characters of fresh words."""
    words = Words()
    return lang.wrap(base_lines(lang, words) + [lang.comment(text_of_length(words, k))]), {}


def line_mean_up_family(lang: Lang, k: int) -> tuple[str, dict]:
    """16 statements; word j of the 16 * 30 extra words goes to line j mod 16 while j < k."""
    words = Words()
    rows = [words.take(4) for _ in range(16)]
    extra = words.take(k)
    for j, w in enumerate(extra):
        rows[j % 16].append(w)
    return lang.wrap([*lang.extra_base, *(lang.stmt(r) for r in rows)]), {}


def line_mean_down_family(lang: Lang, k: int) -> tuple[str, dict]:
    words = Words()
    return lang.wrap(base_lines(lang, words, n=12, per_line=3) + [""] * k), {}


def whitespace_family(lang: Lang, k: int) -> tuple[str, dict]:
    words = Words()
    lines = base_lines(lang, words)
    for j in range(k):
        lines[j % len(lines)] += " "
    return lang.wrap(lines), {}


def marker_family(marker: str, limit: int) -> Family:
    """A comment holding `marker`, after a comment of filler; as k grows the marker moves within `limit` chars."""

    def build(lang: Lang, k: int) -> tuple[str, dict]:
        words = Words()
        filler = lang.comment(text_of_length(words, max(1, limit - k)))
        return lang.wrap([filler, lang.comment(marker)] + base_lines(lang, words)), {}

    return build


def encoded_family(lang: Lang, k: int) -> tuple[str, dict]:
    """A run of base64 characters (short words joined by '+', over lines) of about 1000 + k characters."""
    words = Words()
    base = base_lines(lang, words, n=110, per_line=4)
    run, length = [], 0
    while length < 1000 + k:
        w = words.take(1)[0]
        run.append(w)
        length += len(w) + 1
    body = "+".join(run)[: 1000 + k]
    body = body.rstrip("+")
    lines = [body[i : i + 100] for i in range(0, len(body), 100)]
    return lang.wrap(base + [lang.block("\n".join(lines))]), {}


def size_family(lang: Lang, k: int) -> tuple[str, dict]:
    words = Words()
    return lang.wrap(base_lines(lang, words)), {"size_bytes": 2_999_990 + k}


def hex_line(lang: Lang, words: Words, i: int) -> str:
    digits = "".join("abcdef"[(i // 6**j) % 6] for j in range(8))
    return lang.stmt(["0x" + digits])


def long_word(words: Words) -> str:
    return "_".join(words.take(5))


PROMPT_BASE = 200
PROMPT_BLOCK = {"python": '"""\n{}\n"""', "others": "=begin\n{}\n=end",
                **dict.fromkeys(["c", "cpp", "csharp", "java", "go", "javascript", "sql"], "/*\n{}\n*/")}
"""Block comments holding one TODO per line. The released code counts lines of the concatenated comment tokens, and
the Pygments line-comment tokens of Python (`#`), Ruby, Go, Java, C# and JavaScript stop before the newline, so
k line comments join into one comment line; a block comment keeps its lines."""


def prompt_comment_lines(lang: Lang, words: Words, k: int) -> list[str]:
    todos = [f"TODO {words.take(1)[0]}" for _ in range(k)]
    if not k or lang.config not in PROMPT_BLOCK:
        return [lang.comment(t) for t in todos]
    return [PROMPT_BLOCK[lang.config].format("\n".join(todos))]


GENERAL_FAMILIES: dict[str, tuple[Family, str]] = {
    # rule suffix -> (family, "max" | "min": the bound the family crosses)
    "frac_chars_replacement_symbols": (lines_family(lambda lang, w, k: [lang.comment("kalo " + "\ufffd" * k)] if k else []), "max"),
    "num_words": (num_words_family, "min"),
    "mean_word_length_max": (mean_word_length_family(longer=True), "max"),
    "mean_word_length_min": (mean_word_length_family(longer=False), "min"),
    "frac_chars_top_2grams": (lines_family(ngram_lines(2)), "max"),
    "frac_chars_top_3grams": (lines_family(ngram_lines(3)), "max"),
    "frac_chars_top_4grams": (lines_family(ngram_lines(4)), "max"),
    **{f"frac_chars_dupe_{n}grams": (dupe_span_family(n), "max") for n in range(5, 11)},
    "frac_lines_dupe_lines": (lines_family(dupe_lines(2), n_base=12), "max"),
    "size_file_byte": (size_family, "max"),
    "num_lines_min": (num_lines_family, "min"),
    "num_chars_line_max": (line_length_family, "max"),
    "num_chars_line_mean_max": (line_mean_up_family, "max"),
    "num_chars_line_mean_min": (line_mean_down_family, "min"),
    "frac_chars_alphabet": (lines_family(repeat(lambda lang, w, i: lang.comment("=" * (30 + i)))), "min"),
    "frac_chars_digital": (lines_family(repeat(lambda lang, w, i: lang.comment(f"{12345678 + i} {87654321 - i}"))), "max"),
    "frac_chars_whitespace": (whitespace_family, "max"),
    "frac_chars_comments": (lines_family(repeat(lambda lang, w, i: lang.comment(" ".join(w.take(6))))), "max"),
    "cate_xml_start": (marker_family('<?xml version="1.0"?>', 100), "max"),
    "cate_autogen": (marker_family("autogenerated", 200), "max"),
    "frac_lines_long_string": (lines_family(repeat(lambda lang, w, i: lang.string(w.take(1)[0], " ".join(w.take(21)))),
                                            n_base=40, per_line=7), "max"),
    "frac_chars_string_length": (lines_family(repeat(lambda lang, w, i: lang.string(w.take(1)[0], " ".join(w.take(12))))), "max"),
    "frac_chars_long_word_length": (lines_family(repeat(lambda lang, w, i: lang.string(w.take(1)[0], long_word(w)))), "max"),
    "cate_encoded_data": (encoded_family, "max"),
    "frac_chars_hex_words": (lines_family(repeat(lambda lang, w, i: hex_line(lang, w, i))), "max"),
    "frac_lines_prompt_comments": (lines_family(lambda lang, w, k: prompt_comment_lines(lang, w, k), n_base=PROMPT_BASE), "max"),
}

ASSERT_LINE = {"python": "assert {w}", "c": "assert({w});", "cpp": "assert({w});", "csharp": "Debug.Assert({w});",
               "java": "assert {w};", "javascript": "console.assert({w});", "sql": "SELECT assert, {w};",
               "others": "assert {w}"}

GENERAL_FAMILIES.update({
    "frac_lines_assert": (lines_family(repeat(lambda lang, w, i: ASSERT_LINE[lang.config].format(w=w.take(1)[0])), per_line=12), "max"),
    "num_chars_max": (lines_family(repeat(lambda lang, w, i: lang.stmt(w.take(3)))), "max"),
    "frac_words_unique": (lines_family(lambda lang, w, k: (lambda pool, rng: [lang.stmt(rng.sample(pool, 4)) for _ in range(k)])(
        Words(long=True).take(20), __import__("random").Random(0))), "min"),
    "num_lines_max": (lambda lang, k: ("\n".join(f"{a}{b}{c}{d}" for a, b, c, d in itertools.islice(
        itertools.product(_SYLLABLES, repeat=4), 99_990 + k)), {}), "max"),
    "num_chars_min": (lambda lang, k: (lang.wrap([lang.stmt(Words().take(max(1, 12 - k)))]), {}), "min"),
})


def code_block(head: Callable[[Words], str], body: Callable[[Words], str], tail: str = "}"):
    """k blocks of `head`, one `body` line and `tail` (no tail line when empty)."""

    def extra(lang: Lang, words: Words, k: int) -> list[str]:
        out = []
        for _ in range(k):
            out += [head(words), body(words)] + ([tail] if tail else [])
        return out

    return extra


def _w(words: Words) -> str:
    return words.take(1)[0]


SPECIFIC_FAMILIES: dict[str, tuple[Family, str]] = {
    # python
    "codepython_frac_lines_func_ratio": (lines_family(code_block(lambda w: f"def {_w(w)}({_w(w)}):", lambda w: f"    {_w(w)} = {_w(w)}", "")), "max"),
    "codepython_frac_lines_pass": (lines_family(repeat(lambda lang, w, i: "pass"), n_base=40), "max"),
    "codepython_frac_lines_import": (lines_family(repeat(lambda lang, w, i: f"import {_w(w)}")), "max"),
    "codepython_frac_lines_simplefunc": (lines_family(repeat(lambda lang, w, i: f"def {_w(w)}(): return {_w(w)}"), n_base=40), "max"),
    "codepython_score_lines_no_logic": (lines_family(lambda lang, w, k: [f"class {_w(w).capitalize()}:"] + [f"    {_w(w)} = {_w(w)}" for _ in range(k)] if k else []), "max"),
    "codepython_frac_lines_print": (lines_family(repeat(lambda lang, w, i: f"print({_w(w)})"), per_line=12), "max"),
    # C and C++
    **{f"code{c}_frac_lines_func_ratio": (lines_family(code_block(lambda w: f"int {_w(w)}(int {_w(w)}) {{", lambda w: f"    {_w(w)}({_w(w)});")), "max") for c in ("c", "cpp")},
    **{f"code{c}_nums_lines_main": (lines_family(code_block(lambda w: "int main(void) {", lambda w: f"    {_w(w)}({_w(w)});")), "max") for c in ("c", "cpp")},
    **{f"code{c}_score_lines_no_logic": (lines_family(repeat(lambda lang, w, i: f"int {_w(w)};")), "max") for c in ("c", "cpp")},
    **{f"code{c}_frac_lines_preprocessor_directives": (lines_family(repeat(lambda lang, w, i: f"#define {_w(w)} {_w(w)}")), "max") for c in ("c", "cpp")},
    **{f"code{c}_frac_lines_print": (lines_family(repeat(lambda lang, w, i: f"printf({_w(w)});")), "max") for c in ("c", "cpp")},
    # C#
    "codecsharp_frac_lines_func_ratio": (lines_family(code_block(lambda w: f"public void {_w(w)}() {{", lambda w: f"    {_w(w)}({_w(w)});")), "max"),
    "codecsharp_score_lines_no_logic": (lines_family(repeat(lambda lang, w, i: f"int {_w(w)};")), "max"),
    "codecsharp_frac_lines_print": (lines_family(repeat(lambda lang, w, i: f"Console.WriteLine({_w(w)});"), per_line=12), "max"),
    # Java
    "codejava_frac_lines_func_ratio": (lines_family(code_block(lambda w: f"public void {_w(w)}() {{", lambda w: f"    {_w(w)}({_w(w)});")), "max"),
    "codejava_score_lines_no_logic": (lines_family(repeat(lambda lang, w, i: f"int {_w(w)};")), "max"),
    "codejava_frac_lines_print": (lines_family(repeat(lambda lang, w, i: f"System.out.println({_w(w)});"), per_line=20), "max"),
    # Go
    "codego_frac_lines_func_ratio": (lines_family(code_block(lambda w: f"func {_w(w)}() {{", lambda w: f"    {_w(w)}({_w(w)})")), "max"),
    "codego_score_lines_no_logic": (lines_family(repeat(lambda lang, w, i: f"var {_w(w)} {_w(w)}")), "max"),  # released find_simple_variables
    "codego_frac_lines_print": (lines_family(repeat(lambda lang, w, i: f"fmt.Println({_w(w)})"), per_line=12), "max"),
    # JavaScript
    "codejavascript_frac_lines_func_ratio": (lines_family(code_block(lambda w: f"function {_w(w)}() {{", lambda w: f"    {_w(w)}({_w(w)});")), "max"),
    "codejavascript_score_lines_no_logic": (lines_family(repeat(lambda lang, w, i: f"var {_w(w)} = {_w(w)};")), "max"),  # simple: Identifier init
    "codejavascript_frac_lines_print": (lines_family(repeat(lambda lang, w, i: f"console.log({_w(w)});"), per_line=12), "max"),
    # HTML
    "codehtml_frac_words_text": (lines_family(repeat(lambda lang, w, i: lang.comment(" ".join(w.take(8)))), n_base=6), "min"),
    "codehtml_num_chars_text": (lambda lang, k: (lambda w: (lang.wrap([lang.comment(" ".join(w.take(2))) for _ in range(8)]
                                                                      + [f"<p>{text_of_length(w, 120 - k)}</p>"]), {}))(Words()), "min"),
}

TEXT_FAMILIES: dict[str, tuple[Family, str]] = {
    "frac_chars_replacement_symbols": GENERAL_FAMILIES["frac_chars_replacement_symbols"],
    "entropy_unigram": (entropy_family, "min"),
    "frac_chars_top_2grams": GENERAL_FAMILIES["frac_chars_top_2grams"],
    "frac_chars_top_3grams": GENERAL_FAMILIES["frac_chars_top_3grams"],
    "frac_chars_top_4grams": GENERAL_FAMILIES["frac_chars_top_4grams"],
    **{f"frac_chars_dupe_{n}grams": GENERAL_FAMILIES[f"frac_chars_dupe_{n}grams"] for n in range(5, 11)},
    "frac_chars_dupe_lines": (lines_family(lambda lang, w, k: (lambda ls: ls + ls[::-1])([lang.stmt(w.take(10)) for _ in range(k)]), n_base=24, per_line=8), "max"),
    "frac_lines_dupe_lines": (lines_family(dupe_lines(1), n_base=10, per_line=12), "max"),
    # released BULLETS (utils/constants.py) are symbols such as "•"; "-" and "*" list items are not bullets
    "frac_lines_start_with_bullet": (lines_family(lambda lang, w, k: [f"\u2022 {lang.stmt(w.take(4))}" for _ in range(k)], n_base=4), "max"),
    "num_chars_min": GENERAL_FAMILIES["num_chars_min"],
    "num_lines_min": (num_lines_family, "min"),
    "num_words": (num_words_family, "min"),
    "frac_chars_hex_words": GENERAL_FAMILIES["frac_chars_hex_words"],
    "frac_chars_hyperlink_html_tag": (lines_family(repeat(lambda lang, w, i: f"[{_w(w)}](http://{_w(w)}.org/{_w(w)})")), "max"),
    "frac_chars_alphabet": GENERAL_FAMILIES["frac_chars_alphabet"],
    "frac_chars_digital": GENERAL_FAMILIES["frac_chars_digital"],
    "frac_chars_whitespace": (whitespace_family, "max"),
    "frac_lines_end_with_readmore": (lines_family(repeat(lambda lang, w, i: " ".join(w.take(6)).capitalize() + " ..."), n_base=20), "max"),
    "frac_words_all_caps": (lines_family(repeat(lambda lang, w, i: lang.stmt([x.upper() for x in w.take(4)]))), "max"),
    "frac_words_full_bracket": (lines_family(repeat(lambda lang, w, i: f"【{_w(w)}】{lang.stmt(w.take(1))}")), "max"),
    "mean_word_length_max": GENERAL_FAMILIES["mean_word_length_max"],
    "mean_word_length_min": GENERAL_FAMILIES["mean_word_length_min"],
    "num_sentences": (lambda lang, k: (lambda w: (lang.wrap([" ".join(w.take(6)) + ("." if i >= 9 + k else "") for i in range(12)]), {}))(Words()), "min"),
}


def _pairs_python_ast(lang):
    lines = base_lines(lang, Words())
    return lang.wrap(lines), lang.wrap(lines[:-1] + [lines[-1][:-1]]), {}, {}  # drops the closing parenthesis


def _pairs_js_ast(lang):
    lines = base_lines(lang, Words())
    return lang.wrap(lines), lang.wrap(lines[:-1] + [lines[-1][:-2] + ";"]), {}, {}


def _pairs_html_ast(lang):
    """The same characters as text (passes) and as an unknown marked section `<![zova[`, which makes
    html.parser raise (fails): the only way found to make it reject a document."""
    lines = base_lines(lang, Words())
    return lang.wrap(lines + ["<p>![zova[x]]</p>"]), lang.wrap(lines + ["<![zova[x]]>"]), {}, {}


def _pairs_var_zero(assign: str):
    """Calls only, plus one assignment (passes) or not (fails)."""

    def build(lang):
        words = Words()
        calls = [lang.stmt(words.take(1)) for _ in range(16)]
        calls = [c.replace("()", f"({w})") for c, w in zip(calls, words.take(16))]
        return lang.wrap(calls + [assign.format(w=words.take(1)[0])]), lang.wrap(calls + [lang.stmt(words.take(1))]), {}, {}

    return build


def _pairs_go_testfile(lang):
    text = lang.wrap(base_lines(lang, Words()))
    return text, text, {"path": "kalo_tests.go"}, {"path": "kalo_test.go"}


PAIRS = {
    "qsc_codepython_cate_ast": _pairs_python_ast,
    "qsc_codejavascript_cate_ast": _pairs_js_ast,
    "qsc_codehtml_cate_ast": _pairs_html_ast,
    "qsc_codepython_cate_var_zero": _pairs_var_zero("{w} = 1"),
    "qsc_codejavascript_cate_var_zero": _pairs_var_zero("var {w};"),
    "qsc_codejava_cate_var_zero": _pairs_var_zero("String {w};"),
    "qsc_codego_cate_testfile": _pairs_go_testfile,
}
"""Boolean rules: (passing text, failing text, doc kwargs of each) built directly."""

NEVER_FIRES = {
    "qsc_codecsharp_cate_var_zero": "released bug: compares a list to 0 (spec 3.3), fires only with fix_var_zero",
    "qsc_codego_cate_var_zero": "released bug: compares a list to 0 (spec 3.3), fires only with fix_var_zero",
    ("zh", "qsc_doc_frac_chars_alphabet"): "released quirk: None unless lang == en (spec 3.3), fires only with fix_alphabet_non_en",
}


def family_for(config: str, rule: str, side: str) -> tuple[Family, str] | None:
    if rule.startswith("qsc_doc_"):
        table, suffix = TEXT_FAMILIES, rule[len("qsc_doc_"):]
    elif rule.startswith("qsc_code_"):
        table, suffix = GENERAL_FAMILIES, rule[len("qsc_code_"):]
    else:
        table, suffix = SPECIFIC_FAMILIES, rule[len("qsc_"):]
    found = table.get(f"{suffix}_{side}") or table.get(suffix)
    return found if found is not None and found[1] == side else None


def cases():
    for config in CONFIGS:
        for rule, bounds in CleanConfig().rules_for(config).items():
            if bounds is None:
                continue
            for side, bound in (("min", bounds[0]), ("max", bounds[1])):
                if bound is not None:
                    yield pytest.param(config, rule, side, id=f"{config}-{rule.removeprefix('qsc_')}-{side}")


def side_bounds(bounds, side):
    return (bounds[0], None) if side == "min" else (None, bounds[1])


def signal_of(rule: str, lang: Lang, text: str, kw: dict) -> float | None:
    return SIGNALS[rule](make_doc(lang, text, **kw))


def threshold_pair(family: Family, lang: Lang, rule: str, bounds) -> tuple[tuple[str, dict], tuple[str, dict], int]:
    """(document k - 1, document k, k) for the smallest k at which `rule` fires."""
    fire = lambda k: fires(signal_of(rule, lang, *family(lang, k)), bounds)
    assert not fire(0), f"{rule}: the family's first document already fires ({signal_of(rule, lang, *family(lang, 0))})"
    hi = 1
    while not fire(hi):
        hi *= 2
        assert hi <= 1 << 13, f"{rule}: the family never fires"
    lo = hi // 2  # fire(lo) is False (or lo == 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fire(mid) else (mid, hi)
    return family(lang, hi - 1), family(lang, hi), hi


def implied(config: str, rule: str, side: str) -> set[str]:
    """Rules that necessarily fire with `rule`: shorter duplicated n-grams with a threshold no higher."""
    m = re.fullmatch(r"(qsc_(?:code|doc))_frac_chars_dupe_(\d+)grams", rule)
    if not m:
        return set()
    rules = CleanConfig().rules_for(config)
    mine = rules[rule][1]
    return {f"{m[1]}_frac_chars_dupe_{n}grams" for n in range(5, int(m[2]))
            if rules.get(f"{m[1]}_frac_chars_dupe_{n}grams") and rules[f"{m[1]}_frac_chars_dupe_{n}grams"][1] <= mine}


ALSO_FAILS: dict[tuple[str, str], tuple[set[str], str]] = {}
"""(config or "*", rule-side) -> (rules that fail with it by construction, why)."""

SIGNAL_ONLY: dict[str, str] = {
    "qsc_code_num_chars-min": "fewer than 50 characters cannot hold 30 words on 10 lines: num_words and num_lines fire too",
    "qsc_doc_num_chars-min": "fewer than 50 characters cannot hold 50 words on 10 lines: num_words and num_lines fire too",
    "qsc_code_num_lines-max": "a 100,000-line file: only its own signal is evaluated, to keep the test fast",
}
"""rule-side -> why the pair is checked on its own signal only."""

SIGNAL_ONLY_IN: dict[tuple[str, str], str] = {
    ("sql", "qsc_code_frac_chars_dupe_5grams-max"): "SQL carries its n-grams in `--` comments (a SELECT line adds a "
    "keyword); Pygments' SQL comment token takes the newline too, so comments pass 80% of the characters before the "
    "duplicated 5-gram share passes its 80%",
}
"""(config, rule-side) -> why the pair is checked on its own signal only in that config."""


@pytest.mark.parametrize("config, rule, side", list(cases()))
def test_rule_just_passes_and_just_fails(config, rule, side):
    lang = LANGS[config]
    bounds = side_bounds(CleanConfig().rules_for(config)[rule], side)
    key = f"{rule}-{side}"
    why_never = NEVER_FIRES.get(rule) or NEVER_FIRES.get((config, rule))
    if why_never:
        pytest.skip(why_never)  # test_rules_that_never_fire checks these
    if rule in PAIRS:
        passing_text, failing_text, pass_kw, fail_kw = PAIRS[rule](lang)
        passing, failing = (passing_text, pass_kw), (failing_text, fail_kw)
    else:
        found = family_for(config, rule, side)
        assert found is not None, f"no document family for {rule} ({side})"
        passing, failing, _ = threshold_pair(found[0], lang, rule, bounds)
    assert not fires(signal_of(rule, lang, *passing), bounds)
    assert fires(signal_of(rule, lang, *failing), bounds)
    if key in SIGNAL_ONLY or (config, key) in SIGNAL_ONLY_IN:
        return
    assert failed_rules(lang, make_doc(lang, passing[0], **passing[1])) == [], "the passing document passes every rule"
    also = ALSO_FAILS.get((config, key), ALSO_FAILS.get(("*", key), (set(), "")))[0]
    expected = {rule} | implied(config, rule, side) | also
    assert set(failed_rules(lang, make_doc(lang, failing[0], **failing[1]))) == expected


@pytest.mark.parametrize("config", CONFIGS)
def test_base_file_of_every_config_passes_every_rule(config):
    lang = LANGS[config]
    assert failed_rules(lang, make_doc(lang, lang.wrap(base_lines(lang, Words())))) == []


@pytest.mark.parametrize("config, rule, option", [
    ("csharp", "qsc_codecsharp_cate_var_zero", "fix_var_zero"),
    ("go", "qsc_codego_cate_var_zero", "fix_var_zero"),
    ("zh", "qsc_doc_frac_chars_alphabet", "fix_alphabet_non_en"),
])
def test_rules_that_never_fire_as_released(config, rule, option):
    """Active in the released config but dead (spec 3.3 quirks): the document that should fail passes,
    and fails once the quirk's fix is switched on."""
    lang = LANGS[config]
    words = Words()
    if rule.endswith("var_zero"):
        text = lang.wrap([lang.stmt(words.take(1)).replace("()", f"({w})") for w in words.take(16)])  # calls only
    else:
        text = lang.wrap(base_lines(lang, words) + [lang.comment("=" * 60) for _ in range(12)])  # mostly punctuation
    bounds = CleanConfig().rules_for(config)[rule]
    assert rule in NEVER_FIRES or (config, rule) in NEVER_FIRES
    assert not fires(SIGNALS[rule](make_doc(lang, text)), bounds)
    fixed = make_doc(lang, text, options=Options(**{option: True}))
    assert fires(SIGNALS[rule](fixed), bounds)


def test_top_ngram_of_a_file_without_repeated_ngrams_is_zero():
    """RedPajama's signal is 0.0 when the most common n-gram occurs once (count <= 1), so a short file of
    unique words passes the top-n-gram rules; one repeat makes it count."""
    words = Words().take(24)
    for n in (2, 3, 4):
        assert SIGNALS[f"qsc_code_frac_chars_top_{n}grams"](Doc(text=" ".join(words))) == 0.0
    repeated = " ".join(words + words[:4])
    assert SIGNALS["qsc_code_frac_chars_top_4grams"](Doc(text=repeated)) > 0.0


FILENAMES = json.loads((DATA_DIR / "filename_to_program.json").read_text())["map"]
TYPES = json.loads((DATA_DIR / "program_to_type.json").read_text())


def expected_type(lang: str) -> str:
    if lang in TYPES["excluded"]:
        return "excluded"
    return "data" if lang in TYPES["data"] else "text" if lang in TYPES["text"] else "code"


@pytest.mark.parametrize("name", sorted(FILENAMES))
def test_every_special_filename_routes_to_its_language(name):
    lang = FILENAMES[name]
    for path in (name, f"repo/sub/dir/{name}", f"repo\\win\\{name}"):
        assert route(path) == (lang, expected_type(lang)), path
    kind = expected_type(lang)
    if kind in ("code", "data"):
        expected_config = lang if lang in ("cpp", "csharp", "c", "go", "html", "java", "javascript", "python", "shell", "sql") else kind.replace("code", "others")
        assert rule_config(lang, kind, "en") == expected_config
    elif kind == "text":
        assert (rule_config(lang, kind, "en"), rule_config(lang, kind, "zh")) == ("en", "zh")


def test_filename_map_wins_over_the_extension():
    assert FILENAMES["CMakeLists.txt"] == "cmake" and program_lang("CMakeLists.txt") == "cmake"
    assert program_lang("notes.txt") == "text" and program_lang("build/CMakeLists.txt") == "cmake"
    assert doc_type(program_lang("Makefile")) == "code" and program_lang("Makefile.txt") == "text"
