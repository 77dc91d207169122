"""Synthetic generation with an in-process teacher double (the sandbox is real): only passing samples are kept,
and a restart after a kill asks the teacher for nothing it already finished."""

from __future__ import annotations

import dataclasses

import pytest

from tasks.curate.config import TeacherConfig
from tasks.curate.synthetic import Seed, generate_kind, load_prompt, parse_response

SOLUTION = 'def add(a, b):\n    """Add two numbers."""\n    return a + b\n'


def snippet(solution: str, tests: str) -> str:
    return f"Here it is.\n\n```python\n{solution}\n```\n\n```python\n{tests}\n```\n"


RESPONSES = {
    "PASS": snippet(SOLUTION, "assert add(1, 2) == 3\nassert add(0, 0) == 0"),
    "FAIL": snippet(SOLUTION, "assert add(1, 2) == 4"),
    "HANG": snippet("def add(a, b):\n    while True:\n        pass\n", "assert add(1, 2) == 3"),
    "FORK": snippet("import os\n\ndef add(a, b):\n    os.fork()\n    return a + b\n", "assert add(1, 2) == 3"),
    "KILL": snippet("import os, signal\n\ndef add(a, b):\n    os.kill(os.getpid(), signal.SIGKILL)\n", "assert add(1, 2) == 3"),
    "EXIT": snippet("import sys\n\ndef add(a, b):\n    return a - b\n\nsys.exit(0)\n", "assert add(1, 2) == 3"),
    "NOTESTS": snippet(SOLUTION, "print(add(1, 2))"),
    "PROSE": "I cannot help with that.",
}


class ScriptedTeacher:
    """Implements the backend interface; answers by the marker in the seed; can refuse some seeds or die."""

    has_chat_template = True

    def __init__(self, refuse: set[str] = frozenset(), die_after_calls: int | None = None):
        self.refuse, self.die_after_calls, self.calls, self.asked = refuse, die_after_calls, 0, []

    def generate(self, prompts, *, chat, stops, n):
        if self.die_after_calls is not None and self.calls >= self.die_after_calls:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        out = []
        for prompt in prompts:
            marker = next(m for m in RESPONSES if f"'SEED_{m}'" in prompt)
            if marker in self.refuse:
                raise AssertionError(f"asked again for finished seed {marker}")
            self.asked.append(marker)
            out.append([RESPONSES[marker]] * n)
        return out


def seeds(*markers: str) -> list[Seed]:
    return [Seed(f"id-{m}", f"def seed():\n    return 'SEED_{m}'\n", f"repo/{m}.py") for m in markers]


@pytest.fixture
def cfg(tmp_path):
    return TeacherConfig(cache_dir=str(tmp_path / "cache"), timeout_s=1.5, batch_size=3)


def test_only_samples_whose_tests_pass_are_kept(cfg):
    res = generate_kind("snippet", seeds(*RESPONSES), ScriptedTeacher(), cfg, teacher="scripted", num_workers=2)
    status = {r["seed_id"].removeprefix("id-"): r["status"] for r in res["rows"]}
    assert status.pop("EXIT") in ("failed", "exited_early")  # the sandbox or our sentinel catches the early exit
    assert status == {"PASS": "passed", "FAIL": "failed", "HANG": "timeout", "FORK": "failed", "KILL": "failed",
                      "NOTESTS": "too_few_tests", "PROSE": "no_code"}
    assert res["generated"] == len(RESPONSES) and res["resumed"] == 0


def test_a_restart_after_a_kill_regenerates_nothing_finished(cfg):
    markers = ("PASS", "FAIL", "NOTESTS", "PASS2", "PROSE")
    RESPONSES["PASS2"] = RESPONSES["PASS"].replace("add(0, 0) == 0", "add(2, 2) == 4")
    try:
        with pytest.raises(KeyboardInterrupt):  # the first batch (3 seeds) is stored, then the run dies
            generate_kind("snippet", seeds(*markers), ScriptedTeacher(die_after_calls=1), cfg, teacher="scripted")
        again = ScriptedTeacher(refuse={"PASS", "FAIL", "NOTESTS"})
        res = generate_kind("snippet", seeds(*markers), again, cfg, teacher="scripted")
    finally:
        del RESPONSES["PASS2"]
    assert sorted(again.asked) == ["PASS2", "PROSE"] and res["resumed"] == 3 and res["generated"] == 2
    assert [r["seed_id"] for r in res["rows"]] == [f"id-{m}" for m in markers]
    assert sum(r["status"] == "passed" for r in res["rows"]) == 2


def test_a_new_prompt_version_or_teacher_is_not_mistaken_for_finished_work(cfg, tmp_path):
    generate_kind("snippet", seeds("PASS"), ScriptedTeacher(), cfg, teacher="scripted")
    other = ScriptedTeacher()
    generate_kind("snippet", seeds("PASS"), other, cfg, teacher="another-model")
    assert other.asked == ["PASS"]
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "snippet.txt").write_text(load_prompt("snippet").template + "\nBe brief.\n")
    third = ScriptedTeacher()
    res = generate_kind("snippet", seeds("PASS"), third, cfg, teacher="scripted", prompts_dir=prompts)
    assert third.asked == ["PASS"] and res["prompt_version"] != load_prompt("snippet").version


def test_exit_status_0_without_the_sentinel_is_not_a_pass():
    from tasks.curate.execution import verdict
    from tasks.evaluate.sandbox import ExecutionResult

    early = ExecutionResult("passed", 0, "partial output\n", "", 0.1)
    assert verdict(early, "__ok__").status == "exited_early"
    assert verdict(ExecutionResult("passed", 0, "x\n__ok__\n", "", 0.1), "__ok__").passed


def test_educational_samples_need_several_tests_and_are_split_into_problem_and_solution(cfg):
    text = ("### Problem\nWrite `add(a, b)`.\n### Solution\n```python\n" + SOLUTION + "```\n### Tests\n```python\n"
            "assert add(1, 2) == 3\nassert add(2, 2) == 4\nassert add(0, 1) == 1\n```\n")
    parsed = parse_response("educational", text, 3)
    assert parsed["instruction"] == "Write `add(a, b)`." and parsed["output"].startswith("def add") and parsed["num_tests"] == 3
    assert parse_response("educational", text.replace("assert add(0, 1) == 1\n", ""), 3)["status"] == "too_few_tests"


def test_textbook_sections_are_kept_when_their_code_parses(cfg):
    assert parse_response("textbook", "Text.\n```python\nx = 1\n```\n", 0)["output"].startswith("Text.")
    assert parse_response("textbook", "Text.\n```python\nx = (\n```\n", 0)["status"] == "parse_error"
    assert parse_response("textbook", "No code at all.", 0)["status"] == "no_code"


def test_seed_code_with_braces_is_inserted_verbatim():
    prompt = load_prompt("snippet")
    text = prompt.render(seed="d = {'min_tests': 1}  # {seed}", min_tests=2)
    assert "d = {'min_tests': 1}  # {seed}" in text and "at least 2" in text


def test_teacher_config_needs_a_model_with_a_backend():
    with pytest.raises(ValueError):
        dataclasses.replace(TeacherConfig(), backend="hf")
