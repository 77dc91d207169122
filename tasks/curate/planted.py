"""Planted contamination: benchmark copies to hide in clean rows, for measuring decontamination recall.

Used by the tests and `benchmarks/curate.py`. For every problem of the benchmarks (HumanEval: 164, MBPP test:
500) `plants` writes the copies a leak looks like, each wrapped in unrelated code so it is never a whole row:

- humaneval_prompt: the prompt (signature + docstring with examples);
- humaneval_solution: prompt + canonical solution;
- humaneval_renamed: prompt + solution with the entry point renamed everywhere (docstring examples too);
- humaneval_renamed_bare: the renamed signature + body, docstring left out;
- mbpp_prompt: the problem text and its asserts, as a comment block;
- mbpp_solution: the reference code;
- mbpp_renamed: the reference code with the entry point renamed everywhere.
"""

from __future__ import annotations

import re

PREFIX = "import os\nimport sys\n\nLOG_LEVEL = os.environ.get('LOG_LEVEL', 'info')\n\n\n"
SUFFIX = "\n\n\nif __name__ == '__main__':\n    sys.exit(0)\n"


def rename(text: str, old: str, new: str) -> str:
    return re.sub(rf"\b{re.escape(old)}\b", new, text)


def humaneval_plants(problem, index: int) -> dict[str, str]:
    from tasks.decontaminate.index import reference_function

    new = f"solve_task_{index}"
    full = problem.prompt + problem.reference
    return {"humaneval_prompt": problem.prompt, "humaneval_solution": full,
            "humaneval_renamed": rename(full, problem.entry_point, new),
            "humaneval_renamed_bare": rename(reference_function(problem), problem.entry_point, new)}


def mbpp_plants(problem, index: int) -> dict[str, str]:
    code = problem.reference.replace("\r\n", "\n")
    plants = {"mbpp_prompt": "".join(f"# {line}\n" for line in problem.data["question"].splitlines()), "mbpp_solution": code}
    if problem.entry_point:
        plants["mbpp_renamed"] = rename(code, problem.entry_point, f"solve_task_{index}")
    return plants


def plants(benchmarks: tuple[str, ...] = ("humaneval", "mbpp")) -> list[dict]:
    """Rows {kind, task_id, text} of every plant of every problem, wrapped in unrelated code."""
    from tasks.evaluate import benchmarks as registry

    rows = []
    for name in benchmarks:
        make = humaneval_plants if name == "humaneval" else mbpp_plants
        for i, problem in enumerate(registry.get(name).problems()):
            for kind, text in make(problem, i).items():
                rows.append({"kind": kind, "task_id": problem.task_id, "text": PREFIX + text + SUFFIX})
    return rows
