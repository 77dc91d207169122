"""Named rule sets for the `clean` stage (`clean.ruleset`), for the RefineCode-vs-The-Stack ablation.

`refinecode` (default) is the ~130 released RefineCode thresholds in params.yaml (`clean.code_rules`,
`clean.text_rules`). `stack` is a The Stack v1/v2-like set of ~15 rules, kept as data in
`data/stack_rules.yaml` with its sources; it reuses the same signals, so the two differ only in which
rules are active and where their thresholds sit. Both have the same shape: code configs where
`others` is complete and the rest override it, text configs used as they are.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

STACK_RULES = Path(__file__).parent / "data" / "stack_rules.yaml"

Bounds = tuple[float | None, float | None]
RuleSet = dict[str, Bounds | None]


def _bounds(rules: dict) -> RuleSet:
    return {name: None if b is None else (b[0], b[1]) for name, b in (rules or {}).items()}


@lru_cache(maxsize=None)
def stack_rules() -> tuple[dict[str, RuleSet], dict[str, RuleSet]]:
    """(code configs, text configs) of the The Stack-like rule set; every rule must name a known signal."""
    from tasks.clean.rules import SIGNALS

    raw = yaml.safe_load(STACK_RULES.read_text())
    code = {lang: _bounds(rules) for lang, rules in raw["code_rules"].items()}
    text = {lang: _bounds(rules) for lang, rules in raw["text_rules"].items()}
    for section, configs in (("code_rules", code), ("text_rules", text)):
        for lang, rules in configs.items():
            unknown = sorted(set(rules) - set(SIGNALS))
            if unknown:
                raise ValueError(f"{STACK_RULES}: {section}.{lang}: unknown rules {unknown} (no such signal)")
    return code, text


def effective_rules(code: dict[str, RuleSet], text: dict[str, RuleSet], config_name: str) -> RuleSet:
    """The rules of one config: a text config as is, a code config as `others` merged with its overrides."""
    if config_name in text:
        return text[config_name]
    return {**code["others"], **code.get(config_name, {})}
