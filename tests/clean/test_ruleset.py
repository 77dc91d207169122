"""The ablation switches of the clean stage: `clean.ruleset` (RefineCode vs a The Stack-like set) and `clean.min_stars`."""

import pyarrow as pa
import pytest

from tasks.clean.config import CleanConfig
from tasks.clean.rules import evaluate
from tasks.clean.rulesets import stack_rules
from tasks.clean.signals import SIGNALS, Doc
from tasks.clean.stage import below_min_stars, clean_batch, clean_row
from tasks.common.config import ConfigError, build

from .conftest import GOOD_PY

STACK = CleanConfig(ruleset="stack")
REFINECODE = CleanConfig()


def active(cfg, config):
    return {name for name, bounds in cfg.rules_for(config).items() if bounds is not None}


def failed(text, cfg, path="a.py", lang="python", config="python"):
    return evaluate(Doc(text=text, path=path, lang=lang), "id", cfg.rules_for(config), cfg).failed


def test_stack_set_has_about_fifteen_rules_on_known_signals():
    code, text = stack_rules()
    entries = sum(len(r) for r in code.values()) + len(text["en"])
    assert 12 <= entries <= 18
    assert all(name in SIGNALS for rules in [*code.values(), *text.values()] for name in rules)


def test_stack_set_is_much_smaller_than_refinecode_in_every_config():
    for config in ("others", "data", "html", "python", "c", "java", "en", "zh"):
        assert len(active(STACK, config)) < len(active(REFINECODE, config)) / 2, config
    assert active(STACK, "python") == active(STACK, "others")  # no language-specific rules


def test_stack_thresholds_are_the_published_ones():
    others = STACK.rules_for("others")
    assert others["qsc_code_size_file_byte"] == (None, 1_000_000)
    assert others["qsc_code_num_chars_line_mean"] == (None, 100)
    assert others["qsc_code_num_chars_line_max"] == (None, 1000)
    assert others["qsc_code_frac_chars_alphabet"] == (0.25, None)
    assert STACK.rules_for("data")["qsc_code_num_chars"] == (50, 5000)
    assert STACK.rules_for("html")["qsc_codehtml_num_chars_text"] == (100, None)


def test_refinecode_only_rules_do_not_fire_under_stack():
    logic_free = "import os\nimport sys\nimport re\nimport json\n" + "def f():\n    pass\n" * 6
    assert failed(logic_free, REFINECODE) != []
    assert failed(logic_free, STACK) == []


def test_both_sets_drop_a_minified_line_and_keep_good_code():
    minified = "var a=1;" * 200 + "\n" + "x\n" * 10
    assert "qsc_code_num_chars_line_max" in failed(minified, STACK, path="a.js", lang="javascript", config="javascript")
    assert failed(GOOD_PY, STACK) == [] and failed(GOOD_PY, REFINECODE) == []


def test_unknown_ruleset_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match="ruleset"):
        build(CleanConfig, {"ruleset": "starcoder"}, "clean")


@pytest.mark.parametrize(
    "stars,source,min_stars,dropped",
    [(4, "installed", 5, True), (5, "installed", 5, False), (None, "stack-v2", 5, True), (0, "web", 5, False),
     (0, "installed", 0, False)],
)
def test_star_filter(stars, source, min_stars, dropped):
    assert below_min_stars(stars, source, CleanConfig(min_stars=min_stars)) is dropped


def test_star_filter_drops_with_its_own_reason_before_any_rule():
    row = clean_row(GOOD_PY, "a.py", "id", len(GOOD_PY), CleanConfig(min_stars=5), stars=3, source="installed")
    assert row["drop_reason"] == "min_stars" and row["failed_rules"] == []
    assert clean_row(GOOD_PY, "a.py", "id", len(GOOD_PY), CleanConfig(min_stars=5), stars=50)["drop_reason"] is None


def test_clean_batch_reads_stars_and_source_columns():
    batch = pa.table({"id": ["a", "b", "c"], "text": [GOOD_PY] * 3, "path": ["a.py"] * 3, "stars": [1, 100, 0],
                      "source": ["installed", "installed", "web"], "size_bytes": [len(GOOD_PY)] * 3,
                      "lang": pa.nulls(3, pa.string()), "doc_type": pa.nulls(3, pa.string())})
    out = clean_batch(batch, CleanConfig(min_stars=5)).column("drop_reason").to_pylist()
    assert out == ["min_stars", None, None]


def test_negative_min_stars_is_rejected():
    with pytest.raises(ValueError, match="min_stars"):
        CleanConfig(min_stars=-1)
