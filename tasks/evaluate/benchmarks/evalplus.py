"""EvalPlus-style scoring shared by HumanEval+, MBPP+ and the EvalPlus MBPP subset: expected outputs from the
canonical solution, computed in the sandbox, compared input by input as EvalPlus's checker does.

Expected outputs are not stored in the data files: `prepare` runs each canonical solution on the problem's inputs
in the sandbox once and keeps the outputs, one zlib-compressed pickle per input, as base64 (never unpickled
outside the sandbox). Inputs the canonical solution rejects (its contract, EvalPlus's `$_CONTRACT_$` lines, or any
exception it raises) are left out, as EvalPlus's released data has them filtered out (its `filter_inputs`); the
HumanEval+ snapshot we ship predates that filtering, so this is where it happens. For HumanEval/32 an input
is kept only when the canonical root passes the `find_zero` oracle. A candidate's test program calls the entry point
on every kept input and compares with the expected output (`_HARNESS`): exact match, else numpy's allclose with
the task's atol (1e-6 when atol is 0 and the expected output is float(s)), plus EvalPlus's special oracles
(HumanEval/32 `find_zero`: |poly(xs, x)| <= atol; MBPP: Mbpp/164 any output, Mbpp/295 0 also accepted, three
tasks judged on `is not None`). A program's time limit is max(evaluate.timeout_s, 4 x the canonical run) and its
memory limit max(evaluate.memory_mb, 2 x the canonical run's peak RSS).
"""

from __future__ import annotations

import json

from tasks.evaluate.benchmarks.base import Benchmark, Problem
from tasks.evaluate.prompts import IMPORT_HEADER
from tasks.evaluate.sandbox import execute_many

TIME_FACTOR = 4.0
MEMORY_FACTOR = 2.0
CANONICAL_TIMEOUT_S = 600.0
"""Trusted reference code: Mbpp/599 sums 1e8 numbers ~30 times, which ran past 120 s on 2 cores at load 30."""
CANONICAL_MEMORY_BYTES = 8 << 30
CANONICAL_OUTPUT_BYTES = 256 << 20
NOT_NONE_TASKS = ("check_str", "text_match_three", "text_starta_endb")

# Runs inside the sandbox, in both the canonical and the candidate program.
_CHECKER = """
import base64 as _b, copy as _c, json as _j, math as _m, pickle as _p, resource as _r, zlib as _z
import numpy as _np

def _floats(x):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return isinstance(x, _np.ndarray) and x.dtype in (_np.float64, _np.float32)

def _poly(xs, x):
    return sum(coeff * _m.pow(x, i) for i, coeff in enumerate(xs))

def _check(out, exp, atol, entry_point, args):
    if entry_point == "find_zero":
        assert abs(_poly(*args, out)) <= atol, f"find_zero: poly({out!r}) is not 0"
        return
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

def _outputs(fn, inputs, not_none, atol, entry_point):
    kept, outs = [], []
    for i, a in enumerate(inputs):
        try:
            value = fn(*_c.deepcopy(a))
            if entry_point == "find_zero":  # an input the canonical root finder does not solve is no test
                _check(value, None, atol, entry_point, a)
        except Exception:
            continue
        kept.append(i)
        outs.append(_z.compress(_p.dumps((value is not None) if not_none else value), 6))
    return kept, outs
"""

# JSON cannot store tuples, sets or complex numbers, so EvalPlus restores them per MBPP task
# (evalplus/data/mbpp.py, `mbpp_deserialize_inputs`); the task lists below are that function's, as a table.
MBPP_INPUTS = """
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
"""

PLAIN_INPUTS = """
def _inputs(task_number, raw):
    return raw
"""


class EvalPlusBenchmark(Benchmark):
    """A benchmark scored against the canonical solution's outputs on `problem.data["inputs"]`."""

    input_harness = PLAIN_INPUTS

    def __init__(self):
        self.expected: dict[str, tuple[str, list[int], float, int]] = {}
        """task_id -> (base64 pickle of the per-input compressed canonical outputs, indices of the inputs the
        contract accepts, canonical seconds, canonical peak RSS in bytes)."""

    def canonical_code(self, problem: Problem) -> str:
        """The trusted solution the expected outputs come from; it passes this benchmark's test program when
        given as the solution."""
        return problem.reference

    def candidate_prefix(self, problem: Problem) -> str:
        """Code placed before a candidate's solution (HumanEval+: the prompt's helpers)."""
        return ""

    def _inputs_code(self, problem: Problem) -> str:
        number = int(problem.task_id.split("/")[-1])
        return (f"{_CHECKER}\n{self.input_harness}\n"
                f"_inputs = _inputs({number}, _j.loads({json.dumps(problem.data['inputs'])!r}))\n")

    def _canonical_program(self, problem: Problem) -> str:
        not_none = problem.entry_point in NOT_NONE_TASKS
        return (f"{IMPORT_HEADER}\n{self.canonical_code(problem)}\n{self._inputs_code(problem)}"
                f"_kept, _outs = _outputs({problem.entry_point}, _inputs, {not_none}, {problem.data['atol']!r}, "
                f"{problem.entry_point!r})\n"
                f"print(_j.dumps(_kept))\nprint(_b.b64encode(_p.dumps(_outs)).decode())\n"
                f"print(_r.getrusage(_r.RUSAGE_SELF).ru_maxrss * 1024)\n")

    def prepare(self, problems: list[Problem], *, timeout_s: float, memory_bytes: int, num_workers: int | None) -> None:
        todo = [p for p in problems if p.task_id not in self.expected]
        # Trusted reference code: EvalPlus's 4 GiB and a generous time limit (Mbpp/599 sums 1e8 numbers ~30 times).
        results = execute_many([self._canonical_program(p) for p in todo], timeouts_s=max(timeout_s, CANONICAL_TIMEOUT_S),
                               memory_bytes=max(memory_bytes, CANONICAL_MEMORY_BYTES), num_workers=num_workers,
                               max_output_bytes=CANONICAL_OUTPUT_BYTES)
        for problem, result in zip(todo, results):
            if result.passed:
                kept, encoded, peak = result.stdout.split("\n")[:3]
                self.expected[problem.task_id] = (encoded, json.loads(kept), result.seconds, int(peak))

    def timeout_s(self, problem: Problem, base_timeout_s: float) -> float:
        seconds = self.expected[problem.task_id][2] if problem.task_id in self.expected else 0.0
        return max(base_timeout_s, TIME_FACTOR * seconds)

    def memory_bytes(self, problem: Problem, base_memory_bytes: int) -> int:
        peak = self.expected[problem.task_id][3] if problem.task_id in self.expected else 0
        return max(base_memory_bytes, int(MEMORY_FACTOR * peak))

    def program(self, problem: Problem, solution: str) -> str:
        if problem.task_id not in self.expected:
            return "raise RuntimeError('no expected outputs: the canonical solution failed in the sandbox')\n"
        encoded, kept = self.expected[problem.task_id][:2]
        return (f"{IMPORT_HEADER}\n{self.candidate_prefix(problem)}{solution}\n{self._inputs_code(problem)}"
                f"_expected = _p.loads(_b.b64decode({encoded!r}))\n"
                f"for _i, _e in zip({kept!r}, _expected):\n"
                f"    _a = _inputs[_i]\n"
                f"    _check({problem.entry_point}(*_c.deepcopy(_a)), _p.loads(_z.decompress(_e)), {problem.data['atol']!r}, "
                f"{problem.entry_point!r}, _a)\n")
