"""Fast code / comment splitters that give the Pygments answer for the languages most files are in.

The released filter splits code from comments with Pygments (`tasks/clean/comments.py`), which lexes at
0.1-0.4 MB/s; these splitters find the same comment tokens with one compiled regex per language and a few
lines of Python, on the text exactly as Pygments preprocesses it (BOM dropped, `\\r\\n` and `\\r` made `\\n`,
leading and trailing newlines stripped, one final newline). Each one follows the Pygments lexer's rules
that decide what is a comment: string and character literals (a comment marker inside them is not one),
the comment tokens and the newline they include (C-family `//` comments end with their newline, so the code
line after one is joined to the code before it), and states that change the rules (C preprocessor lines,
`#if 0` blocks). Where Pygments changed a comment rule after 2.18 (the released environment's version) the
splitter follows 2.18: the rest of an `#include` line is one comment token. They are checked token for token against Pygments on the agreement corpus
(`tests/clean/test_fastlex.py` on literals; `benchmarks/clean_agreement.py --check-splitters` on the corpus).
A language without a splitter here runs Pygments.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache


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

_C_WS1 = r"\s*(?:/\*.*?\*/\s*)?"
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
# Pygments 2.18 (the released environment): after `#include "file"` or `<file>` the rest of the line, spaces
# included, is one Comment.Single token (2.19 split off the spaces and a following block comment).
_C_MACRO_INCLUDE = re.compile(r"(" + _C_WS1 + r")(include)(" + _C_WS1 + r")(?:\"[^\"]+\"|<[^>]+>)(?P<rest>[^\n]*)")
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
        if inc.group("rest"):
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


# ---- Python (pygments.lexers.python.PythonLexer) ----
# A triple-quoted string that starts a line (after whitespace, with an r/u/b prefix at most) is `String.Doc`, found
# without escape handling; `#` to the end of the line is a comment. Other strings are skipped with their escapes
# (`\\` plus any character); a one-line string ends at a newline (Pygments resets to `root` there).
_PY_TOKENS = re.compile(
    r"""^\s*[rRuUbB]{0,2}(?P<doc>\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?''')"""
    r"""|(?P<comment>\#[^\n]*)"""
    r"""|[A-Za-z_]\w*(?P<str>\"\"\"(?:[^"\\]|\\[\s\S]|"(?!""))*(?:\"\"\"|\Z)|'''(?:[^'\\]|\\[\s\S]|'(?!''))*(?:'''|\Z)"""
    r"""|"(?:[^"\\\n]|\\[\s\S])*"?|'(?:[^'\\\n]|\\[\s\S])*'?)?"""
    r"""|\"\"\"(?:[^"\\]|\\[\s\S]|"(?!""))*(?:\"\"\"|\Z)|'''(?:[^'\\]|\\[\s\S]|'(?!''))*(?:'''|\Z)"""
    r"""|"(?:[^"\\\n]|\\[\s\S])*"?|'(?:[^'\\\n]|\\[\s\S])*'?""",
    re.MULTILINE,
)


def split_python(text: str) -> tuple[str, str]:
    text = pygments_input(text)
    spans = [m.span(m.lastgroup) for m in _PY_TOKENS.finditer(text) if m.lastgroup in ("doc", "comment")]
    return _split(text, spans)


# ---- any other RegexLexer: the same state machine, one combined regex per state ----
# `RegexLexer.get_tokens_unprocessed` tries the rules of the current state one by one at each position and takes
# the first that matches; a regex alternation `(?P<r0>rule0)|(?P<r1>rule1)|...` matched at the same position picks
# the same rule (alternatives are tried in order), so one match call replaces up to dozens. Token types, state
# changes, callbacks (`bygroups`, `using`: run on the rule's own match) and the error/newline recovery are those
# of Pygments. Only the rules whose first character can be the one at the position take part (read from the parsed
# patterns), which keeps each alternation short. A state whose rules use numbered back-references keeps Pygments'
# one-by-one matching.

_GLOBAL_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")
_BACKREF = re.compile(r"\\[1-9]|\(\?P[=<]")  # back-references, or named groups that could clash


@lru_cache(maxsize=None)
def _first_chars(pattern: str, flags: int) -> frozenset[str] | None:
    """The characters a match of `pattern` can start with, or None when it may start with any (or match empty).
    Read from the parsed pattern (`re._parser`); lookarounds and anchors are treated as transparent, so the set is
    a superset of the real one, which is all the dispatch below needs."""
    import re._constants as c
    import re._parser as parser

    try:
        parsed = parser.parse(pattern, flags)
    except re.error:
        return None
    chars, nullable = _first_of(list(parsed), bool(flags & re.IGNORECASE), c)
    return None if nullable or chars is None else frozenset(chars)


def _first_of(items: list, icase: bool, c) -> tuple[set | None, bool]:
    acc: set | None = set()
    for op, av in items:
        chars, nullable = _first_item(op, av, icase, c)
        acc = None if acc is None or chars is None else acc | chars
        if not nullable:
            return acc, False
    return acc, True


def _literal(code: int, icase: bool) -> set:
    ch = chr(code)
    return {ch, ch.lower(), ch.upper()} if icase else {ch}


def _first_item(op, av, icase: bool, c) -> tuple[set | None, bool]:
    if op is c.LITERAL:
        return _literal(av, icase), False
    if op is c.IN:
        chars: set = set()
        for kind, value in av:
            if kind is c.LITERAL:
                chars |= _literal(value, icase)
            elif kind is c.RANGE and value[1] - value[0] < 512:
                for code in range(value[0], value[1] + 1):
                    chars |= _literal(code, icase)
            else:  # NEGATE, CATEGORY, a wide range: anything
                return None, False
        return chars, False
    if op is c.BRANCH:
        acc: set | None = set()
        nullable = False
        for branch in av[1]:
            chars, n = _first_of(list(branch), icase, c)
            acc = None if acc is None or chars is None else acc | chars
            nullable = nullable or n
        return acc, nullable
    if op is c.SUBPATTERN:
        add_flags = av[1]
        return _first_of(list(av[3]), icase or bool(add_flags & re.IGNORECASE), c)
    if op in (c.MAX_REPEAT, c.MIN_REPEAT) or getattr(c, "POSSESSIVE_REPEAT", None) is op:
        chars, nullable = _first_of(list(av[2]), icase, c)
        return chars, nullable or av[0] == 0
    if op is getattr(c, "ATOMIC_GROUP", None):
        return _first_of(list(av), icase, c)
    if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
        return set(), True
    return None, op not in (c.NOT_LITERAL, c.ANY, c.CATEGORY)


class _CombinedState:
    """One state's rules, matched through per-first-character alternations of the rules that can start there."""

    __slots__ = ("rules", "patterns", "flags", "first", "by_char", "by_key", "sequential")

    def __init__(self, rules: list, flags: int) -> None:
        self.rules = rules
        self.flags = flags
        self.patterns: list[str] = []
        self.first: list[frozenset | None] = []
        self.by_char: dict[str, object] = {}
        self.by_key: dict[tuple, object] = {}
        self.sequential = False
        for rexmatch, _action, _new in rules:
            pattern = rexmatch.__self__.pattern
            if _BACKREF.search(pattern):
                self.sequential = True
                return
            m = _GLOBAL_FLAGS.match(pattern)
            if m:  # "(?i)rest" -> "(?i:rest)": a global flag may only open a whole expression
                pattern = f"(?{m.group(1)}:{pattern[m.end():]})"
            self.patterns.append(pattern)
            self.first.append(_first_chars(pattern, flags))

    def matcher(self, ch: str):
        """The steps that match the rules which can start with `ch`, in rule order: combined alternations of
        consecutive short rules, and long rules (large Unicode classes, slow to compile again) on their own
        compiled pattern. None: no rule can match here."""
        found = self.by_char.get(ch, False)
        if found is not False:
            return found
        key = tuple(i for i, first in enumerate(self.first) if first is None or ch in first)
        found = self.by_key.get(key, False)
        if found is False:
            steps: list[tuple[int, object]] = []
            run: list[int] = []
            for i in key:
                if len(self.patterns[i]) > _LONG_PATTERN:
                    if run:
                        steps.append((-1, self._combined(tuple(run))))
                        run = []
                    steps.append((i, self.rules[i][0]))
                else:
                    run.append(i)
            if run:
                steps.append((-1, self._combined(tuple(run))))
            found = tuple(steps) or None
            self.by_key[key] = found
        self.by_char[ch] = found
        return found

    def _combined(self, run: tuple[int, ...]):
        if len(run) == 1:
            return re.compile(f"(?P<r{run[0]}>{self.patterns[run[0]]})", self.flags).match
        return re.compile("|".join(f"(?P<r{i}>{self.patterns[i]})" for i in run), self.flags).match


_LONG_PATTERN = 400
"""Characters above which a rule is matched on its own instead of inside an alternation (compile time)."""


class FastRegexLexer:
    """Runs a Pygments RegexLexer's token definitions with combined regexes; finds the comment tokens that
    `lexer.get_tokens_unprocessed` yields."""

    def __init__(self, lexer) -> None:
        self.lexer = lexer
        tokendefs = lexer._tokens
        flags = type(lexer).flags
        self.states = {name: _CombinedState(rules, flags) for name, rules in tokendefs.items()}

    def comment_spans(self, text: str) -> list[tuple[int, int, str, str]]:
        """(start, end, code, comments): the stretches of the text whose tokens are not all code, with what they
        give the code and the comments (a comment token: "" and itself; a callback rule: its tokens' values, in
        order), as `get_tokens_unprocessed` yields them."""
        from tasks.clean.comments import COMMENT_TOKENS
        from pygments.token import _TokenType

        lexer, states = self.lexer, self.states
        spans: list[tuple[int, int, str, str]] = []
        pos, stack = 0, ["root"]
        state = states["root"]
        n = len(text)
        while pos < n:
            if not state.sequential:
                m = None
                for index, match in state.matcher(text[pos]) or ():
                    m = match(text, pos)
                    if m is not None:
                        rexmatch, action, new_state = state.rules[int(m.lastgroup[1:]) if index < 0 else index]
                        if index < 0 and action is not None and type(action) is not _TokenType:
                            m = rexmatch(text, pos)
                        break
            else:
                for rexmatch, action, new_state in state.rules:
                    m = rexmatch(text, pos)
                    if m:
                        break
                else:
                    m = None
            if m is None:  # no rule: a newline resets to root, anything else is one Error character
                if text[pos] == "\n":
                    stack = ["root"]
                    state = states["root"]
                pos += 1
                continue
            end = m.end()
            if action is not None:
                if type(action) is _TokenType:
                    if action in COMMENT_TOKENS and end > pos:
                        spans.append((pos, end, "", text[pos:end]))
                else:  # a callback: its tokens' values replace the match (positions may be relative to a group)
                    code_parts, comment_parts = [], []
                    for _index, token_type, value in action(lexer, m):
                        (comment_parts if token_type in COMMENT_TOKENS else code_parts).append(value)
                    code_value = "".join(code_parts)
                    if comment_parts or code_value != text[pos:end]:
                        spans.append((pos, end, code_value, "".join(comment_parts)))
            elif end > pos:
                spans.append((pos, end, "", ""))  # a rule without action yields nothing
            pos = end
            if new_state is not None:
                if isinstance(new_state, tuple):
                    for name in new_state:
                        if name == "#pop":
                            if len(stack) > 1:
                                stack.pop()
                        elif name == "#push":
                            stack.append(stack[-1])
                        else:
                            stack.append(name)
                elif isinstance(new_state, int):
                    if abs(new_state) >= len(stack):
                        del stack[1:]
                    else:
                        del stack[new_state:]
                elif new_state == "#push":
                    stack.append(stack[-1])
                state = states[stack[-1]]
        return spans


def _fast_regex_splitter(lexer) -> Callable[[str], tuple[str, str]] | None:
    """A splitter for a plain RegexLexer (same `get_tokens_unprocessed`), else None."""
    from pygments.lexer import RegexLexer

    cls = type(lexer)
    if not isinstance(lexer, RegexLexer) or cls.get_tokens_unprocessed is not RegexLexer.get_tokens_unprocessed:
        return None
    engine = FastRegexLexer(lexer)

    def split(text: str) -> tuple[str, str]:
        text = pygments_input(text)
        code, comments, last = [], [], 0
        for start, end, code_value, comment_value in engine.comment_spans(text):
            code.append(text[last:start])
            code.append(code_value)
            comments.append(comment_value)
            last = end
        code.append(text[last:])
        return "".join(code), "".join(comments)

    return split


FAST_SPLITTERS: dict[str, Callable[[str], tuple[str, str]]] = {
    "c": split_c,
    "cpp": split_c,
    "python": split_python,
}


ENGINE_NOT_FASTER = frozenset({"html"})
"""Lexers whose rules mostly hand over to other lexers (`using`), where the engine gains nothing."""


@lru_cache(maxsize=None)
def splitter_for(lang: str) -> Callable[[str], tuple[str, str]] | None:
    """The fast splitter of a program language with a Pygments lexer: hand-written, else the combined-regex engine
    for a plain RegexLexer, else None (run Pygments itself)."""
    if lang in FAST_SPLITTERS:
        return FAST_SPLITTERS[lang]
    if lang in ENGINE_NOT_FASTER:
        return None
    from tasks.clean.comments import lexer_for

    lexer = lexer_for(lang)
    return None if lexer is None else _fast_regex_splitter(lexer)
