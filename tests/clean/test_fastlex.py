"""The fast code/comment splitters give exactly what Pygments gives (the released code's split).

Each case is split twice: through `split_code_comments` (the fast path) and through Pygments itself
(`exact=True`); both must be equal, and a few expected values pin the released quirks the split produces.
"""

import pytest

from tasks.clean.comments import split_by_hand, split_code_comments, split_perl
from tasks.clean.fastlex import FAST_SPLITTERS, pygments_input, splitter_for

C_CASES = [
    "int x; // one\nint y;\n",  # the comment takes its newline: the two code lines join
    '#define URL "http://a.b" // tail\nint z;\n',  # a macro line has no strings: "//" starts a comment
    "#if 0\n/* hidden */ int a;\n#else\nint b; /* seen */\n#endif\n",
    "/* unterminated\nint q;\n",
    'char c = \'"\'; const char *s = "/* not */"; // yes\n',
    'auto r = R"x(// raw )x"; // after\n',
    "int n = 1'000'000; // digits\n",
    "  #  pragma once // p\n\n\nint t;\r\nint u;\r\n",
]
PY_CASES = [
    '"""Module doc."""\nimport os  # why\n',
    'def f():\n    r"""Raw doc \\""" still"""\n    return "#not a comment"\n',
    'x = f"""{a}\n# inside\n"""\ny = 1\n',
    "s = '# no'  # yes\n    '''line-start string'''\n",
    "#!/usr/bin/env python\nprint(1)\n",
]
ENGINE_CASES = {
    "javascript": ["var re = /\\/\\*x/; // c\nlet s = `a ${b /* in */} c`; /* d */\n", "x = a / b; // div\n"],
    "typescript": ["let n: number = 1; // c\n/* b */ export {};\n"],
    "java": ['String s = "//"; // c\n/** doc */ class A {}\n'],
    "go": ["package a // c\n/* b */\nvar s = `//raw`\n"],
    "sql": ["SELECT 1; -- c\n/* b */ SELECT '--';\n"],
    "shell": ["echo '#x' # c\n: ${#v}\n"],
    "markdown": ["Text\n\n```python\n# in a block\nx = 1\n```\n\n( quoted )\n"],  # a callback: group-relative positions
    "css": ["a { color: red; } /* c */\nb::after { content: '/*'; }\n"],
}


@pytest.mark.parametrize("text", C_CASES)
def test_c_splitter_equals_pygments(text):
    for lang in ("c", "cpp"):
        assert split_code_comments(text, lang) == split_code_comments(text, lang, exact=True)


@pytest.mark.parametrize("text", PY_CASES)
def test_python_splitter_equals_pygments(text):
    assert split_code_comments(text, "python") == split_code_comments(text, "python", exact=True)


@pytest.mark.parametrize("lang, text", [(lang, t) for lang, ts in ENGINE_CASES.items() for t in ts])
def test_engine_equals_pygments(lang, text):
    assert splitter_for(lang) is not None and lang not in FAST_SPLITTERS
    assert split_code_comments(text, lang) == split_code_comments(text, lang, exact=True)


def test_released_quirks_of_the_split():
    code, comments = split_code_comments(C_CASES[0], "c")
    assert code == "int x; int y;\n" and comments == "// one\n"
    code, comments = split_code_comments(C_CASES[1], "c")
    assert '"http:' in code and comments == '//a.b" // tail\n'
    assert "hidden" in split_code_comments(C_CASES[2], "c")[0]  # `#if 0` text is Comment, not a comment token
    code, comments = split_code_comments("x = 1  # a\ny = 2  # b\n", "python")
    assert comments == "# a# b"  # Python comment tokens stop before the newline
    assert pygments_input("\n\nx\r\ny") == "x\ny\n"


def test_c_include_line_as_pygments_2_18():
    """The released environment's Pygments (2.18) makes the rest of an #include line one comment token, spaces
    included; Pygments 2.19+ splits the spaces off, so here the fast splitter follows the released version."""
    code, comments = split_code_comments('#include <stdio.h>  /* inc */\n#include "a.h"\nint x;\n', "c")
    assert code == '#include <stdio.h>\n#include "a.h"\nint x;\n' and comments == "  /* inc */"


def test_by_hand_fallback_keeps_the_released_hash_quirk():
    code, comments = split_by_hand("a = 1\n# note\nb = 2\n/* x */\nc = 3\n")
    assert code == "a = 1\nc = 3\n"  # after a `#` line everything is a comment until a `/*`-`*/` line toggles
    assert comments == "# note\nb = 2\n/* x */\n"
    assert split_code_comments("x\n# y\n", "vue") == split_by_hand("x\n# y\n")  # no vue lexer in Pygments 2.18


def test_perl_pod_and_hash_lines():
    code, comments = split_perl("my $a = 1;\n=pod\ntext\n=cut\n# c\nprint $a;\n")
    assert code == "my $a = 1;\nprint $a;\n" and comments == "=pod\ntext\n=cut\n# c\n"
