"""Fidelity to OpenCodeEval: every prompt string for string, and the planted chat answers program for program."""

from tasks.evaluate.fidelity import load_fixture, planted_mismatches, prompt_mismatches


def test_fixture_comes_from_the_pinned_opencodeeval_commit():
    meta = load_fixture()["meta"]
    assert meta["commit"].startswith("6131c47") and meta["generated_by"] == "tools/opencodeeval_fixtures.py"


def test_every_prompt_is_identical_to_opencodeeval_base_and_chat():
    compared, bad = prompt_mismatches()
    assert compared == 2 * (164 + 500 + 399)
    assert bad == []


def test_planted_chat_answers_give_opencodeeval_programs():
    compared, bad = planted_mismatches()
    assert compared == 50
    assert bad == [], bad[:2]
