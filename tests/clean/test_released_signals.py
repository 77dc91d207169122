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
