"""Fast code / comment splitters that give the Pygments answer for the languages most files are in.

The released filter splits code from comments with Pygments (`tasks/clean/comments.py`), which lexes at
0.1-0.4 MB/s; these splitters find the same comment tokens with one compiled regex per language and a few
lines of Python, on the text exactly as Pygments preprocesses it (BOM dropped, `\\r\\n` and `\\r` made `\\n`,
leading and trailing newlines stripped, one final newline). Each one follows the Pygments lexer's rules
that decide what is a comment: string and character literals (a comment marker inside them is not one),
the comment tokens and the newline they include (C-family `//` comments end with their newline, so the code
line after one is joined to the code before it), and states that change the rules (C preprocessor lines,
`#if 0` blocks). They are checked token for token against Pygments on the agreement corpus
(`tests/clean/test_fastlex.py` on literals; `benchmarks/clean_agreement.py --check-splitters` on the corpus).
A language without a splitter here runs Pygments.
"""

from __future__ import annotations

import re
from collections.abc import Callable


def pygments_input(text: str) -> str:
    """`Lexer._preprocess_lexer_input` with the default options (stripnl, ensurenl, no tab expansion)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    return text if text.endswith("\n") else text + "\n"


def _split(text: str, spans: list[tuple[int, int]]) -> tuple[str, str]:
    code, comments, last = [], [], 0
    for start, end in spans:
        code.append(text[last:start])
        comments.append(text[start:end])
        last = end
    code.append(text[last:])
    return "".join(code), "".join(comments)


# ---- C and C++ (pygments.lexers.c_cpp.CFamilyLexer / CppLexer) ----

_C_WS1 = r"[ \t\n\r\f\v]*(?:/\*.*?\*/[ \t\n\r\f\v]*)?"
_C_TOKENS = re.compile(
    r"""(?P<if0>^(?:""" + _C_WS1 + r""")\#if\s+0)"""
    r"""|(?P<macro>^(?P<macro_ws>""" + _C_WS1 + r""")\#)"""
    r"""|(?P<line>//(?:.|(?<=\\)\n)*\n)"""
    r"""|(?P<block>/(?:\\\n)?\*(?:[^*]|\*(?!(?:\\\n)?/))*\*(?:\\\n)?/|/(?:\\\n)?\*[\w\W]*)"""
    r"""|(?P<raw>(?:u8|[LuU])?R"(?P<delim>[^(\s\\]{0,16})\((?:.|\n)*?\)(?P=delim)")"""
    r"""|(?P<string>"(?:[^"\\\n]|\\[\s\S])*"?)"""
    r"""|(?P<char>'(?:\\.|\\[0-7]{1,3}|\\x[a-fA-F0-9]{1,2}|[^\\'\n])')"""
    r"""|(?P<word>\d(?:'?[\w.])*|[A-Za-z_$][\w$]*)""",
    re.MULTILINE,
)
_C_IF0_LINE = re.compile(r"^\s*#(?:(?P<push>if)|(?P<pop>el(?:se|if)|endif))?", re.MULTILINE)
_C_MACRO_INCLUDE = re.compile(
    r"(" + _C_WS1 + r")(include)(" + _C_WS1 + r")(\"[^\"]+\"|<[^>]+>)([^\S\n]*)(?:(?P<block>[^/\n]*/[*][\s\S]*?[*]/)|(?P<rest>[^\n]*))")
_C_MACRO_BODY = re.compile(r"[^/\n]+|(?P<block>/[*][\s\S]*?[*]/)|(?P<line>//.*?\n)|/|(?P<nl>\n)")


def _c_if0_end(text: str, pos: int) -> int:
    """End of an `#if 0` block (Pygments state `if0`: nested `#if` push, `#else`/`#elif`/`#endif` pop)."""
    depth = 1
    pos = text.find("\n", pos)
    while depth and pos != -1 and pos + 1 < len(text):
        start = pos + 1
        end = text.find("\n", start)
        end = len(text) if end == -1 else end
        m = _C_IF0_LINE.match(text, start, end)
        if m and m.group("push"):
            depth += 1
        elif m and m.group("pop"):
            depth -= 1
        pos = end
    return len(text) if pos == -1 else pos + 1


def _c_macro(text: str, pos: int, spans: list[tuple[int, int]]) -> int:
    """Comments of one preprocessor line (Pygments state `macro`); returns where normal lexing resumes."""
    inc = _C_MACRO_INCLUDE.match(text, pos)
    if inc:
        if inc.group("block") is not None:
            spans.append(inc.span("block"))
        elif inc.group("rest"):
            spans.append(inc.span("rest"))
        pos = inc.end()
    while pos < len(text):
        m = _C_MACRO_BODY.match(text, pos)
        if m.group("block") is not None:
            spans.append(m.span())
        elif m.group("line") is not None:
            spans.append(m.span())
            return m.end()
        elif m.group("nl") is not None and (pos == 0 or text[pos - 1] != "\\"):
            return m.end()
        pos = m.end()
    return pos


def split_c(text: str) -> tuple[str, str]:
    text = pygments_input(text)
    spans: list[tuple[int, int]] = []
    pos = 0
    while True:
        m = _C_TOKENS.search(text, pos)
        if m is None:
            break
        kind = m.lastgroup if m.lastgroup not in ("macro_ws", "delim") else ("macro" if m.group("macro") else "raw")
        if kind == "if0":
            _ws_comments(m.group("if0"), m.start(), spans)
            pos = _c_if0_end(text, m.end())
        elif kind == "macro":
            _ws_comments(m.group("macro_ws"), m.start(), spans)
            pos = _c_macro(text, m.end(), spans)
        else:
            if kind in ("line", "block"):
                spans.append(m.span())
            pos = m.end()
    return _split(text, spans)


_WS1_COMMENT = re.compile(r"/\*.*?\*/")


def _ws_comments(ws: str, offset: int, spans: list[tuple[int, int]]) -> None:
    """A `/* */` comment in the whitespace before `#` (lexed `using(this)`: a Comment.Multiline)."""
    for m in _WS1_COMMENT.finditer(ws):
        spans.append((offset + m.start(), offset + m.end()))


FAST_SPLITTERS: dict[str, Callable[[str], tuple[str, str]]] = {
    "c": split_c,
    "cpp": split_c,
}
