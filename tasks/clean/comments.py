"""Code / comment split of a file, as the released filter computes it (`document.py::code_raw_content`).

`split_code_comments(text, lang)` returns (code, comments): the text lexed by the Pygments lexer named like
the program language (`get_lexer_by_name(lang)`; Pygments strips leading and trailing newlines, turns `\\r\\n`
into `\\n` and ends the text with one newline), its `Comment.Multiline`, `Comment.Single`, `String.Doc`,
`Comment.Hashbang` and `Comment.Special` tokens going to the comments and every other token to the code. A
language Pygments does not know goes through the released line-based fallback (`get_comment_by_hand`, with
its quirk: after a `#`, `//` or `--` line every later line is a comment until a `\"\"\"`/`/*`/`*/` line toggles
it), Perl through the released POD/`#` splitter. `python_comment_text` is the released `get_text_python`
(docstrings from `ast`, comments from `tokenize`), used by `frac_chars_comments` for Python only.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from functools import lru_cache

import pygments
import pygments.token
import pygments.util
from pygments.lexers import get_lexer_by_name

from tasks.clean.fastlex import splitter_for

COMMENT_TOKENS = frozenset({
    pygments.token.Comment.Multiline, pygments.token.Comment.Single, pygments.token.Literal.String.Doc,
    pygments.token.Comment.Hashbang, pygments.token.Comment.Special,
})


# Lexer names Pygments gained after 2.18.0, the version of the released environment.yml: there they raise
# ClassNotFound, so the released code splits such files by hand.
NOT_IN_RELEASED_PYGMENTS = frozenset({
    "bitbake", "caddy", "caddyfile", "cel", "codeql", "debian.sources", "gleam", "googlesql", "hare", "json5", "maple",
    "numba_ir", "numbair", "pddl", "purescript", "purs", "pyi", "ql", "rego", "rell", "rocq", "rocq-prover", "tablegen",
    "td", "tsx", "vue", "wl", "wolfram", "yml", "zetasql",
})


FORCE_PYGMENTS = False
"""True: every split runs Pygments itself (benchmarks/clean.py measures the fast splitters against it)."""


@lru_cache(maxsize=None)
def lexer_for(lang: str):
    """The Pygments lexer the released code picks for a program language, or None (ClassNotFound in 2.18)."""
    if lang in NOT_IN_RELEASED_PYGMENTS:
        return None
    try:
        return get_lexer_by_name(lang)
    except pygments.util.ClassNotFound:
        return None


def raw_lines(text: str) -> list[str]:
    """RedPajama `split_paragraphs` slices (`[^\\n]*\\n|[^\\n]+$`), each with its newline (only `\\n` splits)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def split_by_hand(text: str) -> tuple[str, str]:
    """The released `get_comment_by_hand`, verbatim in behaviour."""
    code, comment = [], []
    in_multiline = False
    for line in raw_lines(text):
        stripped = line.strip()
        if stripped.startswith(('"""', "/*")) or stripped.endswith(('"""', "*/")):
            in_multiline = not in_multiline
            comment.append(line)
            continue
        if stripped.startswith(("#", "//", "--")) or in_multiline:
            in_multiline = True
            comment.append(line)
            continue
        code.append(line)
    return "".join(code), "".join(comment)


def split_perl(text: str) -> tuple[str, str]:
    """The released `get_perl_comment`: POD blocks (`=...` to `=cut`) and `#` lines are comments."""
    code, comment = [], []
    in_multiline = False
    for line in raw_lines(text):
        stripped = line.strip()
        if stripped.startswith("=cut"):
            in_multiline = False
            comment.append(line)
        elif stripped.startswith("="):
            in_multiline = True
            comment.append(line)
        elif stripped.startswith("#") or in_multiline:
            comment.append(line)
        else:
            code.append(line)
    return "".join(code), "".join(comment)


def split_pygments(text: str, lexer) -> tuple[str, str]:
    code, comment = [], []
    for token_type, token in pygments.lex(text, lexer):
        (comment if token_type in COMMENT_TOKENS else code).append(token)
    return "".join(code), "".join(comment)


def split_code_comments(text: str, lang: str, exact: bool = False) -> tuple[str, str]:
    """(code, comments) of a file as the released `code_raw_content` / `comment_raw_content`.

    Lexers with a fast splitter (`tasks/clean/fastlex.py`: the same tokens, checked against Pygments on the agreement
    corpus) use it unless `exact`; the others run Pygments itself."""
    if lang == "perl":
        return split_perl(text)
    lexer = lexer_for(lang)
    if lexer is None:
        return split_by_hand(text)
    fast = None if exact or FORCE_PYGMENTS else splitter_for(lang)
    if fast is not None:
        return fast(text)
    return split_pygments(text, lexer)


# ---- Python: the released get_text_python (bigcode text_extraction) ----

_DOC_NODES = (ast.ClassDef, ast.FunctionDef, ast.Module)
_BLOCK_NODES = (ast.stmt, ast.excepthandler, ast.match_case)
"""The nodes that hold statements (in their list fields `body`, `orelse`, `finalbody`, `handlers`, `cases`);
no expression contains a statement."""


def python_statements(tree: ast.AST) -> list[tuple[ast.AST, bool]]:
    """The module and every statement, except handler and match case of a tree, in `ast.walk` order (breadth
    first; leaving the expressions out keeps the order of the others), each with whether a class encloses it.
    A tenth of the nodes of a typical file, so the released visitors' answers come at a fraction of their walk."""
    nodes = [(tree, False)]
    i = 0
    while i < len(nodes):
        node, in_class = nodes[i]
        i += 1
        inner = in_class or isinstance(node, ast.ClassDef)
        for name in node._fields:
            value = getattr(node, name, None)
            if type(value) is list:
                nodes += [(item, inner) for item in value if isinstance(item, _BLOCK_NODES)]
    return nodes


def python_docstrings(tree: ast.AST | None) -> list[str]:
    """`get_docstrings`: the cleaned docstring of every module, class and (sync) function, empty ones left out,
    in `ast.walk` order (only statements can be modules, classes or functions)."""
    if tree is None:
        return []
    return [d for node, _ in python_statements(tree) if isinstance(node, _DOC_NODES) for d in [ast.get_docstring(node)] if d]


_PY_STRING_OR_COMMENT = re.compile(
    r"""'''(?:[^'\\]|\\[\s\S]|'(?!''))*'''|\"\"\"(?:[^"\\]|\\[\s\S]|"(?!""))*\"\"\""""
    r"""|'(?:[^'\\\n]|\\[\s\S])*'|"(?:[^"\\\n]|\\[\s\S])*"|(?P<comment>\#[^\r\n]*)""")
"""A string literal (its prefix, if any, is a name before it; a backslash escapes the next character, a newline
too) or a comment, as `tokenize` finds them in code that parses."""


def python_comments(text: str, parses: bool = False) -> str:
    """`get_comments(clean=True)`: every `#` comment token concatenated, `#` removed; "" if tokenize fails.
    Where the text `parses` (`ast.parse` took it), one regex scan finds the same comment tokens, several times faster."""
    if "#" not in text:  # no comment token (and "" too where tokenize would fail)
        return ""
    if parses:
        return "".join(m.group("comment") for m in _PY_STRING_OR_COMMENT.finditer(text) if m.lastgroup).replace("#", "")
    try:
        parts = [tok.string for tok in tokenize.generate_tokens(io.StringIO(text).readline) if tok.type == tokenize.COMMENT]
    except Exception:
        return ""
    return "".join(parts).replace("#", "")


def python_comment_text(text: str, tree: ast.AST | None) -> str:
    """`get_text_python(source)`: docstrings joined by newlines, a newline, the comments; stripped."""
    return ("\n".join(python_docstrings(tree)) + "\n" + python_comments(text, parses=tree is not None)).strip()

