"""Mining: docstring functions become instructions; doctests run in the real sandbox; failing ones are not kept."""

from __future__ import annotations

import ast
import textwrap

from tasks.curate.config import CurateConfig
from tasks.curate.mine import as_clause, free_names, mine_text
from tasks.curate.scan import validate

CFG = CurateConfig()

MODULE = textwrap.dedent('''
    import math
    import os.path
    from collections import Counter

    RATE = 3


    def hypotenuse(a: float, b: float) -> float:
        """Return the length of the hypotenuse of a right triangle.

        >>> hypotenuse(3, 4)
        5.0
        """
        squares = a * a + b * b
        return math.sqrt(squares)


    def most_common_word(text):
        """Find the most frequent word of a text, ties broken by first use.

        >>> most_common_word("a b b")
        'b'
        """
        counts = Counter(text.split())
        return counts.most_common(1)[0][0]


    def broken_square(x):
        """Compute the square of a number, but wrongly.

        >>> broken_square(3)
        9
        """
        y = x + x
        return y


    def scaled(x):
        """Scale a value by the module rate constant."""
        y = x * RATE
        return y


    @staticmethod
    def decorated(x):
        """A decorated function is not mined here."""
        y = x
        return y


    def short(x):
        """Too short."""
        y = x
        return y


    class Box:
        def method(self):
            """Methods are not module-level functions and are not mined."""
            value = 1
            return value
''')


def by_name(rows):
    return {r["origin"].rsplit("::", 1)[1]: r for r in rows}


def test_docstring_summary_becomes_a_write_a_function_instruction_with_signature():
    row = by_name(mine_text(MODULE, "r/m.py", CFG))["hypotenuse"]
    assert row["instruction"].startswith("Write a Python function `hypotenuse(a: float, b: float) -> float` that returns the length")
    assert ">>> hypotenuse(3, 4)" in row["instruction"]


def test_output_is_the_function_with_only_the_imports_it_needs():
    row = by_name(mine_text(MODULE, "r/m.py", CFG))["most_common_word"]
    assert row["output"].startswith("from collections import Counter\n\ndef most_common_word(text):")
    assert "import math" not in row["output"]
    ast.parse(row["output"])


def test_rejections_name_their_reason():
    rows = by_name(mine_text(MODULE, "r/m.py", CFG))
    assert rows["scaled"]["drop_reason"] == "free_names"  # needs the module constant RATE
    assert rows["decorated"]["drop_reason"] == "decorated"
    assert rows["short"]["drop_reason"] == "short_docstring"
    assert "method" not in rows


def test_functions_without_doctests_are_kept_on_the_parse_check():
    cfg = CurateConfig(max_free_names=1)
    row = by_name(mine_text(MODULE, "r/m.py", cfg))["scaled"]
    assert row["drop_reason"] is None and row["validation"] == "parsed" and row["program"] is None


def test_doctests_run_in_the_sandbox_and_failing_ones_are_not_kept():
    rows = [{**r, "detail": None} for r in mine_text(MODULE, "r/m.py", CFG) if r["program"]]
    statuses = validate(rows, kind="doctest", timeout_s=5.0, memory_mb=1024, num_workers=2)
    verdict = {r["origin"].rsplit("::", 1)[1]: (r["validation"], r["drop_reason"]) for r in rows}
    assert verdict["hypotenuse"] == ("doctest", None)
    assert verdict["most_common_word"] == ("doctest", None)
    assert verdict["broken_square"] == (None, "doctest_failed")
    assert statuses == {"passed": 2, "failed": 1}


def test_a_doctest_that_hangs_is_dropped_as_a_timeout():
    text = 'def spin(n):\n    """Spin forever on the given number.\n\n    >>> spin(1)\n    1\n    """\n    while n:\n        pass\n    return n\n'
    rows = [{**r, "detail": None} for r in mine_text(text, "r/s.py", CFG)]
    validate(rows, kind="doctest", timeout_s=1.0, memory_mb=1024, num_workers=1)
    assert rows[0]["drop_reason"] == "doctest_timeout"


def test_imperative_and_third_person_summaries_become_clauses():
    assert as_clause("Return the sum.") == "returns the sum."
    assert as_clause("Computes a hash.") == "computes a hash."
    assert as_clause("Apply the patch.") == "applies the patch."
    assert as_clause("The default value.") is None


def test_free_names_ignore_parameters_locals_builtins_and_inner_imports():
    fn = ast.parse("def f(a):\n    import re\n    b = len(a)\n    return re.sub(X, b, a)\n").body[0]
    assert free_names(fn) == {"X"}


def test_global_declarations_count_as_free_names():
    fn = ast.parse("def f():\n    global STATE\n    STATE = 1\n    return STATE\n").body[0]
    assert free_names(fn) == {"STATE"}


def test_unparsable_files_give_no_candidates():
    assert mine_text("def broken(:\n    pass", "r/b.py", CFG) == []


def test_pair_ids_tell_versions_of_a_file_and_redefinitions_apart():
    v1 = {r["id"] for r in mine_text(MODULE, "r/m.py", CFG, "doc-v1")}
    v2 = {r["id"] for r in mine_text(MODULE, "r/m.py", CFG, "doc-v2")}
    assert v1 and not v1 & v2  # two commits of r/m.py: no shared pair id
    twice = 'def f(a, b):\n    """Add the two numbers given here."""\n    c = a + b\n    return c\n\n' * 2
    rows = mine_text(twice, "r/t.py", CFG, "doc")
    assert len(rows) == 2 and rows[0]["id"] != rows[1]["id"]
