"""MBPP+ (EvalPlus, 399 problems): MBPP with many more test inputs, outputs compared with the canonical ones.

Prompt (OpenCodeEval): "{problem text}\\n{first MBPP assert}". Expected outputs are not stored in the data
file: `prepare` runs each canonical solution on its base + plus inputs in the sandbox once and keeps the
outputs, one zlib-compressed pickle per input, as base64 (never unpickled outside the sandbox). A candidate's
test program calls the entry point on every input and compares with the expected output as EvalPlus does (see
`_HARNESS`), after restoring the argument types JSON cannot hold; expected outputs are decompressed one input at
a time. Its time limit is max(evaluate.timeout_s.mbppplus, 4 x the canonical solution's time) and its memory
limit max(evaluate.memory_mb, 2 x the canonical run's peak RSS): Mbpp/255's largest outputs (combinations with
replacement of 77 items) are about 1 GB each, more than the default 1 GiB limit.
"""

from __future__ import annotations

import json

from tasks.evaluate.benchmarks.base import DATA_DIR, Benchmark, Problem, read_jsonl
from tasks.evaluate.prompts import IMPORT_HEADER, refine_text
from tasks.evaluate.sandbox import execute_many

TIME_FACTOR = 4.0
MEMORY_FACTOR = 2.0
CANONICAL_TIMEOUT_S = 120.0
CANONICAL_MEMORY_BYTES = 8 << 30
CANONICAL_OUTPUT_BYTES = 256 << 20

# Runs inside the sandbox, in both the canonical and the candidate program. JSON cannot store tuples, sets or
# complex numbers, so EvalPlus restores them per task (evalplus/data/mbpp.py, `mbpp_deserialize_inputs`); the
# task lists below are that function's, rewritten as a table. Comparison follows EvalPlus's MBPP+ checker:
# exact match, else numpy's allclose with the task's atol (1e-6 when atol is 0 and the output is float(s)), and
# its three special oracles (Mbpp/164 any output, Mbpp/295 0 also accepted, three tasks judged on `is not None`).
_HARNESS = """
import base64 as _b, copy as _c, json as _j, pickle as _p, resource as _r, zlib as _z
import numpy as _np

def _tuples(x):
    return tuple(_tuples(i) for i in x) if isinstance(x, list) else x

_CONVERT = {
    **dict.fromkeys([2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726,
                     740, 744, 809], lambda a: [tuple(x) for x in a]),
    **dict.fromkeys([63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780],
                    lambda a: [[tuple(x) for x in xs] for xs in a]),
    **dict.fromkeys([75, 413, 444, 753], lambda a: [[tuple(x) for x in a[0]]] + [a[1]]),
    **dict.fromkeys([106, 750], lambda a: [a[0]] + [tuple(a[1])]),
    115: lambda a: [[set(x) if isinstance(x, list) and len(x) else {} for x in a[0]]],
    124: lambda a: [float(a[0]), complex(a[1])],
    **dict.fromkeys([250, 405, 446, 617, 720, 763, 808], lambda a: [tuple(a[0])] + [a[1]]),
    **dict.fromkeys([259, 401, 445], lambda a: [tuple(tuple(x) for x in xs) for xs in a]),
    278: lambda a: [tuple(tuple(x) if isinstance(x, list) else x for x in a[0])],
    307: lambda a: [tuple(a[0])] + [a[1], a[2]],
    722: lambda a: [{k: tuple(v) for k, v in a[0].items()}] + a[1:],
    252: lambda a: [complex(a[0])],
    **dict.fromkeys([580, 615, 791], _tuples),
}

def _inputs(task_number, raw):
    convert = _CONVERT.get(task_number)
    return [list(convert(a)) if convert else a for a in raw]

def _floats(x):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return isinstance(x, _np.ndarray) and x.dtype in (_np.float64, _np.float32)

def _check(out, exp, atol, entry_point):
    try:
        exact = bool(out == exp)
    except Exception:
        exact = False
    if entry_point == "are_equivalent":
        exact = True
    elif entry_point == "sum_div":
        exact = exact or out == 0
    elif entry_point in ("check_str", "text_match_three", "text_starta_endb"):
        exact = exp == (out is not None)
    if atol == 0 and _floats(exp):
        atol = 1e-6
    if not exact and atol != 0:
        _np.testing.assert_allclose(out, exp, atol=atol)
    else:
        assert exact, f"got {out!r:.200}, expected {exp!r:.200}"
"""
NOT_NONE_TASKS = ("check_str", "text_match_three", "text_starta_endb")


def _question(prompt: str) -> str:
    return prompt.strip().strip("'\"").strip()


class MbppPlus(Benchmark):
    name = "mbppplus"
    kind = "instruction"
    path = DATA_DIR / "mbppplus" / "MbppPlus.jsonl"

    def __init__(self):
        self.expected: dict[str, tuple[str, float, int]] = {}
        """task_id -> (base64 pickle of the per-input compressed canonical outputs, canonical seconds, canonical
        peak RSS in bytes)."""

    def problems(self) -> list[Problem]:
        out = []
        for r in read_jsonl(self.path):
            first_test = next((ln for ln in r["assertion"].splitlines() if ln.strip()), "")
            question = _question(r["prompt"])
            out.append(Problem(r["task_id"], refine_text(f"{question}\n{first_test}"), self.kind, r["entry_point"],
                               r["canonical_solution"],
                               {"inputs": list(r["base_input"] or []) + list(r["plus_input"] or []), "atol": float(r["atol"] or 0), "question": question}))
        return out

    def _inputs_code(self, problem: Problem) -> str:
        number = int(problem.task_id.split("/")[-1])
        return f"_inputs = _inputs({number}, _j.loads({json.dumps(problem.data['inputs'])!r}))\n"

    def _canonical_program(self, problem: Problem) -> str:
        call = f"{problem.entry_point}(*_c.deepcopy(_a))"
        value = f"({call}) is not None" if problem.entry_point in NOT_NONE_TASKS else call
        return (f"{IMPORT_HEADER}\n{problem.reference}\n{_HARNESS}\n{self._inputs_code(problem)}"
                f"_outs = [_z.compress(_p.dumps({value}), 6) for _a in _inputs]\n"
                f"print(_b.b64encode(_p.dumps(_outs)).decode())\n"
                f"print(_r.getrusage(_r.RUSAGE_SELF).ru_maxrss * 1024)\n")

    def prepare(self, problems: list[Problem], *, timeout_s: float, memory_bytes: int, num_workers: int | None) -> None:
        todo = [p for p in problems if p.task_id not in self.expected]
        # Trusted reference code: EvalPlus's 4 GiB and a generous time limit (Mbpp/599 sums 1e8 numbers ~30 times).
        results = execute_many([self._canonical_program(p) for p in todo], timeouts_s=max(timeout_s, CANONICAL_TIMEOUT_S),
                               memory_bytes=max(memory_bytes, CANONICAL_MEMORY_BYTES), num_workers=num_workers,
                               max_output_bytes=CANONICAL_OUTPUT_BYTES)
        for problem, result in zip(todo, results):
            if result.passed:
                encoded, peak = result.stdout.split()
                self.expected[problem.task_id] = (encoded, result.seconds, int(peak))

    def timeout_s(self, problem: Problem, base_timeout_s: float) -> float:
        seconds = self.expected.get(problem.task_id, ("", 0.0, 0))[1]
        return max(base_timeout_s, TIME_FACTOR * seconds)

    def memory_bytes(self, problem: Problem, base_memory_bytes: int) -> int:
        peak = self.expected.get(problem.task_id, ("", 0.0, 0))[2]
        return max(base_memory_bytes, int(MEMORY_FACTOR * peak))

    def program(self, problem: Problem, solution: str) -> str:
        if problem.task_id not in self.expected:
            return "raise RuntimeError('no expected outputs: the canonical solution failed in the sandbox')\n"
        encoded = self.expected[problem.task_id][0]
        return (f"{IMPORT_HEADER}\n{solution}\n{_HARNESS}\n{self._inputs_code(problem)}"
                f"_expected = _p.loads(_b.b64decode({encoded!r}))\n"
                f"for _a, _e in zip(_inputs, _expected):\n"
                f"    _check({problem.entry_point}(*_c.deepcopy(_a)), _p.loads(_z.decompress(_e)), {problem.data['atol']!r}, "
                f"{problem.entry_point!r})\n")


BENCHMARKS = [MbppPlus()]
