"""Evaluation at scale on CPU: 2 HF generation processes and 2 Ray execution workers give the same completions,
results and pass@k as 1 process and local execution (real processes, a real local Ray)."""

import json

import pytest

from tasks.common.tracking import NullTracker
from tasks.evaluate import benchmarks
from tasks.evaluate.backends import split_evenly
from tasks.evaluate.config import EvaluateConfig
from tasks.evaluate.execution import chunk_bounds, execute_programs
from tasks.evaluate.stage import run, solution
from tests.evaluate.conftest import make_params


def test_split_evenly_and_chunk_bounds_keep_order_and_cover_everything():
    assert split_evenly(list(range(7)), 3) == [[0, 1], [2, 3], [4, 5, 6]]
    assert split_evenly([1], 4) == [[1]]
    assert chunk_bounds(10, 4) == [(0, 2), (2, 5), (5, 7), (7, 10)] and chunk_bounds(2, 8) == [(0, 1), (1, 2)]


@pytest.fixture(scope="module")
def ray_local():
    import ray

    from tasks.common.runner import ensure_ray

    ensure_ray(num_cpus=2)
    yield
    ray.shutdown()


def test_ray_workers_give_the_same_results_in_the_same_order(ray_local):
    bench = benchmarks.get("humaneval")
    problems = bench.problems()[:6]
    # passing, failing and timing-out programs interleaved, so a misplaced result would show
    answers = [p.reference if i % 3 == 0 else ("    return None\n" if i % 3 == 1 else "    while True:\n        pass\n    return 1\n")
               for i, p in enumerate(problems)]
    programs = [bench.program(p, solution(p, a, chat=False)) for p, a in zip(problems, answers)]
    # the endless loops get 2 s, the others a limit no loaded machine reaches (statuses must not depend on load)
    timeouts, memories = [30.0, 30.0, 2.0] * 2, [1 << 30] * len(programs)
    local = execute_programs(programs, timeouts_s=timeouts, memory_bytes=memories, cfg=EvaluateConfig(num_workers=2))
    on_ray = execute_programs(programs, timeouts_s=timeouts, memory_bytes=memories,
                              cfg=EvaluateConfig(execution="ray", ray_workers=2))
    assert [r.status for r in local] == [r.status for r in on_ray] == ["passed", "failed", "timeout"] * 2


def test_two_hf_processes_and_two_ray_workers_change_nothing(tiny_model, tmp_path, ray_local):
    common = dict(benchmarks=("humaneval", "mbpp"), limit=2, max_new_tokens=12, batch_size=2)
    one = run(make_params(**common), tiny_model, tmp_path / "one", NullTracker())
    two = run(make_params(**common, data_parallel=2, execution="ray", ray_workers=2), tiny_model, tmp_path / "two",
              NullTracker())
    for name in ("humaneval", "mbpp"):
        rows_one = [json.loads(line) for line in open(tmp_path / "one" / f"{name}.jsonl")]
        rows_two = [json.loads(line) for line in open(tmp_path / "two" / f"{name}.jsonl")]
        assert [r["task_id"] for r in rows_two] == [p.task_id for p in benchmarks.get(name).problems()[:2]]
        assert [(r["completion"], r["status"]) for r in rows_one] == [(r["completion"], r["status"]) for r in rows_two]
        assert one[name] == two[name]
