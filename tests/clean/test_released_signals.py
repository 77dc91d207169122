"""Just-pass / just-fail literals for signal details matched to the released code.

Sources (OpenCoder-llm/opc_data_filtering, read through its copy ray075hl/stack_v2_process_pipeline @ 0f5568a,
and togethercomputer/RedPajama-Data): `document.py`, `redpajama/core/document.py` (split_paragraphs),
`utils/text_utils.py`, `utils/constants.py`, `quality_signals/code.py`, `quality_signals/doc.py`,
`redpajama/core/quality_signals/natural_language.py`, `app/src/core/constants.py` (PRECISION = 8).
"""

import pytest

from tasks.clean.config import CleanConfig
from tasks.clean.rules import fires
from tasks.clean.signals import SIGNALS, Doc, _ratio

CFG = CleanConfig()
OTHERS = CFG.rules_for("others")
EN = CFG.rules_for("en")


def value(name, text, **kw):
    return SIGNALS[name](Doc(text=text, **kw))


def check(name, rules, passing, failing, **kw):
    assert not fires(value(name, passing, **kw), rules[name]), (name, value(name, passing, **kw))
    assert fires(value(name, failing, **kw), rules[name]), (name, value(name, failing, **kw))


# ---- lines: split_paragraphs keeps each line's newline; a final newline starts no empty line ----

def test_num_lines_final_newline_ends_the_last_line():
    check("qsc_code_num_lines", OTHERS, "a\n" * 10, "a\n" * 9)
    assert value("qsc_code_num_lines", "a\nb") == 2 and value("qsc_code_num_lines", "a\nb\n") == 2


def test_line_max_counts_the_newline():
    check("qsc_code_num_chars_line_max", OTHERS, "x" * 999 + "\nshort\n", "x" * 1000 + "\nshort\n")
    assert value("qsc_code_num_chars_line_max", "x" * 1000) == 1000  # an unterminated last line has no newline


def test_line_mean_counts_the_newline_and_not_an_empty_last_line():
    check("qsc_code_num_chars_line_mean", OTHERS, ("y" * 99 + "\n") * 10, ("y" * 100 + "\n") * 10)


# ---- words: normalize_text (ASCII punctuation -> space, NFKC last) then nltk wordpunct_tokenize ----

def test_non_ascii_symbols_are_words():
    passing = " ".join(["w"] * 15 + ["©"] * 15)
    failing = " ".join(["w"] * 15 + ["©"] * 14)
    check("qsc_code_num_words", OTHERS, passing, failing)
    assert value("qsc_code_num_words", "a, b; c_d (e)") == 5  # ASCII punctuation (and "_") is a separator


def test_ellipsis_character_becomes_a_dots_word_after_nfkc():
    assert Doc(text="wait… what").words == ["wait", "...", "what"]


def test_control_characters_are_removed_not_separators():
    assert Doc(text="foo\x01bar baz").words == ["foobar", "baz"]


# ---- string literals: the released regexes ----

def test_long_string_counts_wordpunct_tokens():
    check("qsc_code_frac_lines_long_string", OTHERS, 'x = "' + "a," * 10 + '"\n', 'x = "' + "a," * 10 + 'a"\n')


def test_long_word_url_exclusion_is_contains_http():
    check("qsc_code_frac_chars_long_word_length", OTHERS, 'x = "see:https://' + "a" * 30 + '"\n',
          'x = "www.' + "a" * 30 + '"\n')


# ---- encoded data: each pattern matched on its own, matched characters summed ----

def test_encoded_data_sums_overlapping_patterns():
    hex_lines = "0a\n" * 30  # 90 characters that both the base64 and the hexadecimal pattern match
    check("qsc_code_cate_encoded_data", OTHERS, hex_lines + "." * 270, hex_lines + "." * 269)


# ---- natural-language signals (quality_signals/doc.py) ----

def test_bullets_are_the_released_symbols_over_all_lines():
    check("qsc_doc_frac_lines_start_with_bullet", EN, "\u2022 a\n" * 9 + "\n", "\u2022 a\n" * 10)
    assert value("qsc_doc_frac_lines_start_with_bullet", "- a\n* b\n") == 0.0


def test_readmore_strips_closing_brackets_and_counts_blank_lines():
    check("qsc_doc_frac_lines_end_with_readmore", EN, "a ...\n" + "\n" * 9, "a ...)\n" + "\n" * 8)


def test_all_caps_divides_by_every_token():
    check("qsc_doc_frac_words_all_caps", EN, "ABC DEF ghi .", "ABC DEF ghi")


def test_num_sentences_fires_only_on_exactly_one():
    check("qsc_doc_num_sentences", EN, "One. Two", "only one sentence here")
    assert value("qsc_doc_num_sentences", "... ?! ...") is None  # released `x == 1`: zero never fires


def test_hyperlink_counts_link_targets_and_tags():
    assert value("qsc_doc_frac_chars_hyperlink_html_tag", "[ab](http://x.io)") == round(len("(http://x.io)") / 17, 8)
    check("qsc_doc_frac_chars_hyperlink_html_tag", EN, "<a>" + "b" * 3, "<a>" + "b" * 2)


def test_full_bracket_counts_exact_tokens():
    zh = CFG.rules_for("zh")
    check("qsc_doc_frac_words_full_bracket", zh, "【" + "字" * 9, "【" + "字" * 8, natural_lang="zh")
    assert value("qsc_doc_frac_words_full_bracket", "【【 x", natural_lang="en") == 0.0  # one token "【【"


# ---- rounding and empty inputs ----

def test_scores_are_rounded_to_eight_places():
    assert _ratio(200_000_001, 1_000_000_000) == 0.2
    assert not fires(_ratio(200_000_001, 1_000_000_000), OTHERS["qsc_code_frac_chars_digital"])
    assert fires(_ratio(200_000_010, 1_000_000_000), OTHERS["qsc_code_frac_chars_digital"])


@pytest.mark.parametrize("name, expected", [("qsc_code_frac_chars_alphabet", 0.0), ("qsc_code_frac_chars_digital", 1.0),
                                            ("qsc_doc_frac_chars_alphabet", 0.0), ("qsc_doc_frac_chars_digital", 1.0),
                                            ("qsc_code_frac_chars_whitespace", 1.0)])
def test_empty_visible_content_values(name, expected):
    text = "" if name.endswith("whitespace") else " \n "
    assert value(name, text, natural_lang="zh") == expected


# ---- fast paths that must give the answers of the plain implementations ----

@pytest.mark.parametrize("text", [
    "def f(x):\n    return x_1 + 2  # note\n", "tabs\tand\x0bvertical\x0cfeeds\r\n", "esc\x1bape back\x08space del\x7fete",
    "file separator\x1cgroup\x1drecord\x1eunit\x1f", "ellipsis… and “quotes” café", "", "   ", "!!!", "a\u00a0b"])
def test_word_split_fast_path_equals_wordpunct(text):
    from tasks.clean.signals import _WORD, normalize, wordpunct_normalized

    assert wordpunct_normalized(text, normalize(text)) == _WORD.findall(normalize(text))


def test_ngram_statistics_equal_the_sorting_implementation():
    """`pd.factorize` ids against `np.unique` (the RedPajama definition: most frequent n-gram, earliest on ties)."""
    import numpy as np

    from tasks.clean.signals import Doc, frac_chars_dupe_ngram, frac_chars_top_ngram

    def by_sorting(doc, n, top):
        ids, lengths = doc.word_ids
        keys, total = doc.ngram_keys(n), int(lengths.sum())
        if not total or not len(keys):
            return 0.0
        _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
        if top:
            best = counts.max()
            if best <= 1:
                return 0.0
            start = int(first[counts == best].min())
            return round(float(best * lengths[start:start + n].sum() / total), 8)
        covered = np.convolve((counts[inverse] > 1).astype(np.int64), np.ones(n, dtype=np.int64))[: len(lengths)] > 0
        return round(float(lengths[covered].sum() / total), 8)

    rng = np.random.default_rng(7)
    vocab = ["alpha", "be", "c", "delta", "epsilon", "f", "gamma", "hh"]
    for size in (0, 1, 3, 12, 200, 2000):
        for _ in range(5):
            text = " ".join(rng.choice(vocab[: rng.integers(2, 9)], size))
            doc = Doc(text=text)
            for n in (2, 3, 4):
                assert frac_chars_top_ngram(doc, n) == by_sorting(Doc(text=text), n, True), (size, n)
            for n in range(5, 11):
                assert frac_chars_dupe_ngram(doc, n) == by_sorting(Doc(text=text), n, False), (size, n)


TRICKY_PY = '''"""Module doc."""
import os


class Outer:
    """Outer doc."""
    a = 1
    b: int = 2
    c, d = 3, 4

    class Inner:
        """Inner doc."""
        e = 5

    def method(self, x, *rest, k=1):
        """Method doc."""
        class Local:
            f = 6
        return x


async def fetch(url):
    """Async doc."""
    def helper(y):
        """Helper doc."""
        return y
    async for item in url:
        pass
    return helper


try:
    for i in range(3):
        z = i
except ValueError as error:
    def in_handler():
        w = 1
finally:
    q = lambda v: v
match os.name:
    case "nt":
        class InCase:
            g = 7
    case _:
        with open(os.devnull) as handle:
            def in_with():
                """With doc."""
'''


def test_python_statement_walk_equals_the_released_visitors():
    """One pass over the statements gives what ast.walk (docstrings) and the released NodeVisitors collect."""
    import ast

    from tasks.clean.comments import python_docstrings
    from tasks.clean.signals_lang import _PythonFacts

    tree = ast.parse(TRICKY_PY)
    walked = [ast.get_docstring(n) for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.Module))]
    assert python_docstrings(tree) == [d for d in walked if d]

    class Visitor(ast.NodeVisitor):  # the released visitors, merged
        functions = simple = classes = 0
        variables: set = set()

        def visit_FunctionDef(self, node):
            self.functions += 1
            self.simple += len(node.body) == 1 and isinstance(node.body[0], ast.Return)
            self.variables |= {a.arg for a in node.args.args}
            self.generic_visit(node)

        def visit_ClassDef(self, node):
            self.classes += 1
            self.generic_visit(node)

        def visit_Assign(self, node):
            self.variables |= {t.id for t in node.targets if isinstance(t, ast.Name)}

        def visit_For(self, node):
            if isinstance(node.target, ast.Name):
                self.variables.add(node.target.id)
            self.generic_visit(node)

    released = Visitor()
    released.variables = set()
    released.visit(tree)
    members, stack = 0, [tree]  # ClassMemberFinder: does not descend into a class
    while stack:
        node = stack.pop()
        if isinstance(node, ast.ClassDef):
            members += sum(len([t for t in i.targets if isinstance(t, ast.Name)]) if isinstance(i, ast.Assign) else
                           isinstance(i, ast.AnnAssign) and isinstance(i.target, ast.Name) for i in node.body)
            continue
        stack.extend(ast.iter_child_nodes(node))
    facts = _PythonFacts(tree)
    assert (facts.functions, facts.simple_functions, facts.classes, facts.variables, facts.class_members) == (
        released.functions, released.simple, released.classes, released.variables, members)
    assert facts.functions == 4 and facts.class_members == 3  # async defs and nested classes left out, as released
