"""Configuration of the `clean` stage: transformations, routing and the RefineCode rule thresholds.

A rule threshold is a pair `[min, max]`: the file is dropped when the signal is below `min` or above
`max` (either side may be null). A rule set to `null` is disabled: its signal may still be computed,
it never drops. Boolean signals are 0/1, so "drop if True" is `[null, 0]` and "drop if False" is
`[1, null]`. Values are the released `opc_data_filtering` config (spec §3.3); `others` is the full
general code config and every other code config lists only what differs from it (plus its
language-specific rules), exactly as the spec's exceptions column does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tasks.common.config import ConfigError

Bounds = tuple[float | None, float | None]
RuleSet = dict[str, Bounds | None]

CODE_LANGS = ("others", "data", "shell", "sql", "html", "go", "python", "c", "cpp", "csharp", "java", "javascript")
TEXT_LANGS = ("en", "zh")

DEFAULT_CODE_RULES: dict[str, RuleSet] = {
    "others": {
        "qsc_code_frac_chars_replacement_symbols": (None, 0.01),
        "qsc_code_num_words": (30, None),
        "qsc_code_num_chars": (50, None),
        "qsc_code_mean_word_length": (2, 10),
        "qsc_code_frac_words_unique": None,
        "qsc_code_frac_chars_top_2grams": (None, 0.20),
        "qsc_code_frac_chars_top_3grams": (None, 0.18),
        "qsc_code_frac_chars_top_4grams": (None, 0.16),
        "qsc_code_frac_chars_dupe_5grams": (None, 0.80),
        "qsc_code_frac_chars_dupe_6grams": (None, 0.70),
        "qsc_code_frac_chars_dupe_7grams": (None, 0.70),
        "qsc_code_frac_chars_dupe_8grams": (None, 0.70),
        "qsc_code_frac_chars_dupe_9grams": (None, 0.70),
        "qsc_code_frac_chars_dupe_10grams": (None, 0.60),
        "qsc_code_frac_lines_dupe_lines": (None, 0.7),
        "qsc_code_size_file_byte": (None, 3e6),
        "qsc_code_num_lines": (10, 100000),
        "qsc_code_num_chars_line_max": (None, 1000),
        "qsc_code_num_chars_line_mean": (5, 100),
        "qsc_code_frac_chars_alphabet": (0.5, None),
        "qsc_code_frac_chars_digital": (None, 0.2),
        "qsc_code_frac_chars_whitespace": (None, 0.5),
        "qsc_code_frac_chars_comments": (None, 0.8),
        "qsc_code_cate_xml_start": (None, 0),
        "qsc_code_cate_autogen": (None, 0),
        "qsc_code_frac_lines_long_string": (None, 0.2),
        "qsc_code_frac_chars_string_length": (None, 0.6),
        "qsc_code_frac_chars_long_word_length": (None, 0.4),
        "qsc_code_frac_lines_string_concat": None,
        "qsc_code_cate_encoded_data": (None, 0),
        "qsc_code_frac_chars_hex_words": (None, 0.4),
        "qsc_code_frac_lines_prompt_comments": (None, 0.01),
        "qsc_code_frac_lines_assert": (None, 0.4),
    },
    "data": {
        "qsc_code_num_chars": (50, 5000),
        "qsc_code_frac_words_unique": (0.4, None),
        "qsc_code_frac_lines_long_string": None,
        "qsc_code_frac_chars_string_length": None,
        "qsc_code_frac_lines_prompt_comments": None,
        "qsc_code_frac_lines_assert": None,
    },
    "shell": {
        "qsc_code_frac_lines_long_string": None,
        "qsc_code_frac_chars_string_length": None,
        "qsc_code_frac_lines_assert": None,
    },
    "sql": {"qsc_code_frac_chars_digital": (None, 0.3)},
    "html": {
        **{f"qsc_code_frac_chars_dupe_{n}grams": (None, 0.60) for n in range(5, 11)},
        "qsc_code_frac_chars_comments": None,
        "qsc_code_frac_lines_long_string": None,
        "qsc_code_frac_chars_string_length": None,
        "qsc_code_frac_chars_long_word_length": None,
        "qsc_code_frac_lines_prompt_comments": None,
        "qsc_code_frac_lines_assert": None,
        "qsc_codehtml_cate_ast": (1, None),
        "qsc_codehtml_frac_words_text": (0.2, None),
        "qsc_codehtml_num_chars_text": (100, None),
    },
    "go": {
        "qsc_code_frac_lines_assert": None,
        "qsc_codego_cate_testfile": (None, 0),
        "qsc_codego_frac_lines_func_ratio": (None, 0.2),
        "qsc_codego_cate_var_zero": (None, 0),
        "qsc_codego_score_lines_no_logic": (None, 0.5),
        "qsc_codego_frac_lines_print": (None, 0.4),
    },
    "python": {
        "qsc_codepython_cate_ast": (1, None),
        "qsc_codepython_frac_lines_func_ratio": (None, 0.2),
        "qsc_codepython_cate_var_zero": (None, 0),
        "qsc_codepython_frac_lines_pass": (None, 0.05),
        "qsc_codepython_frac_lines_import": (None, 0.3),
        "qsc_codepython_frac_lines_simplefunc": (None, 0.1),
        "qsc_codepython_score_lines_no_logic": (None, 0.5),
        "qsc_codepython_frac_lines_print": (None, 0.4),
    },
    **{
        lang: {
            f"qsc_code{lang}_frac_lines_func_ratio": (None, 0.2),
            f"qsc_code{lang}_nums_lines_main": (None, 1),
            f"qsc_code{lang}_score_lines_no_logic": (None, 0.5),
            f"qsc_code{lang}_frac_lines_preprocessor_directives": (None, 0.8),
            f"qsc_code{lang}_frac_lines_print": (None, 0.4),
            f"qsc_code{lang}_cate_bitsstdc": None,
            f"qsc_code{lang}_frac_lines_goto": None,
            f"qsc_code{lang}_cate_var_zero": None,
        }
        for lang in ("c", "cpp")
    },
    "csharp": {
        "qsc_codecsharp_frac_lines_func_ratio": (None, 0.2),
        "qsc_codecsharp_cate_var_zero": (None, 0),
        "qsc_codecsharp_score_lines_no_logic": (None, 0.5),
        "qsc_codecsharp_frac_lines_print": (None, 0.4),
    },
    "java": {
        "qsc_codejava_cate_var_zero": (None, 0),
        "qsc_codejava_frac_lines_func_ratio": (None, 0.2),
        "qsc_codejava_score_lines_no_logic": (None, 0.5),
        "qsc_codejava_frac_lines_print": (None, 0.4),
        "qsc_codejava_frac_words_no_modifier": None,
        "qsc_codejava_frac_words_legal_var_name": None,
        "qsc_codejava_frac_words_legal_func_name": None,
        "qsc_codejava_frac_words_legal_class_name": None,
    },
    "javascript": {
        "qsc_codejavascript_cate_ast": (1, None),
        "qsc_codejavascript_cate_var_zero": (None, 0),
        "qsc_codejavascript_frac_lines_func_ratio": (None, 0.2),
        "qsc_codejavascript_score_lines_no_logic": (None, 0.5),
        "qsc_codejavascript_frac_lines_print": (None, 0.4),
        "qsc_codejavascript_num_statement_line": None,
        "qsc_codejavascript_frac_words_legal_var_name": None,
        "qsc_codejavascript_frac_words_legal_func_name": None,
        "qsc_codejavascript_frac_words_legal_class_name": None,
    },
}

_TEXT_COMMON: RuleSet = {
    "qsc_doc_cate_code_related_file_name": None,
    "qsc_doc_frac_chars_replacement_symbols": (None, 0.01),
    "qsc_doc_entropy_unigram": (3, None),
    "qsc_doc_frac_chars_curly_bracket": None,
    "qsc_doc_frac_chars_top_2grams": (None, 0.20),
    "qsc_doc_frac_chars_top_3grams": (None, 0.18),
    "qsc_doc_frac_chars_top_4grams": (None, 0.16),
    **{f"qsc_doc_frac_chars_dupe_{n}grams": (None, 0.60) for n in range(5, 11)},
    "qsc_doc_frac_chars_dupe_lines": (None, 0.50),
    "qsc_doc_frac_lines_dupe_lines": (None, 0.60),
    "qsc_doc_frac_lines_start_with_bullet": (None, 0.9),
    "qsc_doc_frac_words_unique": None,
    "qsc_doc_num_chars": (50, None),
    "qsc_doc_num_lines": (10, None),
    "qsc_doc_num_sentences": (2, None),
    "qsc_doc_num_words": (50, None),
    "qsc_doc_frac_chars_hex_words": (None, 0.4),
    "qsc_doc_frac_chars_hyperlink_html_tag": (None, 0.5),
    "qsc_doc_frac_chars_alphabet": (0.5, None),
    "qsc_doc_frac_chars_digital": (None, 0.2),
    "qsc_doc_frac_chars_whitespace": (None, 0.5),
}

DEFAULT_TEXT_RULES: dict[str, RuleSet] = {
    "en": {
        **_TEXT_COMMON,
        "qsc_doc_frac_lines_end_with_readmore": (None, 0.1),
        "qsc_doc_frac_words_all_caps": (None, 0.5),
        "qsc_doc_frac_words_full_bracket": None,
        "qsc_doc_mean_word_length": (3, 10),
    },
    "zh": {
        **_TEXT_COMMON,
        "qsc_doc_frac_lines_end_with_readmore": (None, 0.3),
        "qsc_doc_frac_words_all_caps": None,
        "qsc_doc_frac_words_full_bracket": (None, 0.1),
        "qsc_doc_mean_word_length": (1.3, 10),
    },
}

DEFAULT_DROP_PROBABILITY: dict[str, float] = {
    **{f"qsc_code{lang}_score_lines_no_logic": 0.8 for lang in ("python", "c", "cpp", "csharp", "go", "java", "javascript")},
    "qsc_codego_cate_testfile": 0.8,
}


def _copy(rules: dict[str, RuleSet]) -> dict[str, RuleSet]:
    return {lang: dict(rs) for lang, rs in rules.items()}


@dataclass(frozen=True, kw_only=True)
class CleanConfig:
    ruleset: Literal["refinecode", "stack"] = "refinecode"
    """Which rules filter: `refinecode` (the thresholds below) or `stack` (a The Stack-like set of ~15 rules,
    `tasks/clean/data/stack_rules.yaml`), for the RefineCode-vs-The-Stack ablation (spec §11)."""
    min_stars: int = 0
    """Star filter (spec §11 ablation 5; paper: >= 5 stars): rows of repositories with fewer stars (or none recorded)
    are dropped as `min_stars`; web rows (source `web`) carry no stars and are exempt. 0 = off (paper default)."""
    seed: int = 0
    """Seed of the probabilistic (p=0.8) rules: the draw depends on the document id, the rule and this seed."""
    remove_copyright: bool = True
    """Strip a leading comment block that carries a copyright/licence notice (paper §2.1.1 transformation)."""
    redact_pii: bool = True
    """Replace e-mails, IP addresses, keys and passwords with <EMAIL>, <IP_ADDRESS>, <KEY>, <PASSWORD>."""
    max_text_bytes: int = 8_388_608
    """Texts larger than this are dropped as `oversized` before any signal runs (paper: files > 8 MB)."""
    rule_timeout_s: float = 10.0
    """Per-signal time limit (released code: 10 s); a signal that exceeds it drops the file as `rule_error:<rule>`."""
    evaluate_all_rules: bool = False
    """false: language-specific (parser) signals run only when every general rule passed, which gives the same
    kept/dropped split much faster; `failed_rules` then lists the failing general rules only. true: every rule."""
    fix_substring_matching: bool = False
    """Released quirk: `pass`/`import`/`print` are substring counts ("password" counts as pass). true: whole words."""
    fix_var_zero: bool = False
    """Released quirk: the C#/Go `cate_var_zero` compares a list to 0 and never fires. true: it fires on zero variables."""
    fix_prompt_comments_denominator: bool = False
    """Released quirk: `frac_lines_prompt_comments` divides by all raw lines. true: by comment lines."""
    fix_alphabet_non_en: bool = False
    """Released quirk: text `frac_chars_alphabet` is None (never fires) unless lang == en. true: computed for zh too."""
    drop_probability: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_DROP_PROBABILITY))
    """Rules that drop an offending file only with this probability (released: `random.random() > 0.2`)."""
    code_rules: dict[str, RuleSet] = field(default_factory=lambda: _copy(DEFAULT_CODE_RULES))
    """Thresholds per code config; `others` is complete, the others override it (spec §3.3 routing)."""
    text_rules: dict[str, RuleSet] = field(default_factory=lambda: _copy(DEFAULT_TEXT_RULES))
    """Thresholds for `doc_type == text` files, by natural language (en, zh)."""

    def __post_init__(self) -> None:
        from tasks.clean.rules import check_rule_names

        for section, expected in (("code_rules", CODE_LANGS), ("text_rules", TEXT_LANGS)):
            got = getattr(self, section)
            if set(got) != set(expected):
                raise ConfigError(f"clean.{section}: expected configs {list(expected)}, got {sorted(got)}")
        check_rule_names(self)
        from tasks.clean.rulesets import stack_rules

        if self.min_stars < 0:
            raise ConfigError(f"clean.min_stars: must be >= 0 (0 = off), got {self.min_stars}")
        if self.ruleset == "stack":
            stack_rules()  # a typo in the data file fails at load time

    def rules_for(self, config_name: str) -> RuleSet:
        """The effective rule set of one config (`others` merged with its overrides; text configs as is)."""
        from tasks.clean.rulesets import effective_rules, stack_rules

        if self.ruleset == "stack":
            return effective_rules(*stack_rules(), config_name)
        return effective_rules(self.code_rules, self.text_rules, config_name)
