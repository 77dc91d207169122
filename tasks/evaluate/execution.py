"""Where sandboxed programs run: on this machine, or spread over Ray workers (`evaluate.execution`).

`execute_programs(programs, timeouts_s=..., memory_bytes=..., cfg=...)` returns one `ExecutionResult` per
program, in input order, either way. With `execution: ray` the programs are cut into contiguous chunks (4 per
worker, so workers stay busy when chunks take unequal time), each chunk is one Ray task of 1 CPU that runs its
programs through the same `sandbox.execute_many` (its own zygote per worker process, `evaluate.num_workers`
programs at a time, default 1: one per reserved CPU), and at most `ray_workers` chunks run at once. Results are
placed back by chunk index, so pass@k is the same as with local execution.
"""

from __future__ import annotations

from collections.abc import Sequence

from tasks.evaluate.config import EvaluateConfig
from tasks.evaluate.sandbox import ExecutionResult, execute_many

CHUNKS_PER_WORKER = 4


def chunk_bounds(total: int, chunks: int) -> list[tuple[int, int]]:
    """`[start, stop)` ranges cutting `total` items into at most `chunks` contiguous near-equal pieces."""
    chunks = max(1, min(total, chunks))
    bounds = [total * k // chunks for k in range(chunks + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _execute_chunk(programs: list[str], timeouts_s: list[float], memory_bytes: list[int],
                   threads: int) -> list[ExecutionResult]:
    return execute_many(programs, timeouts_s=timeouts_s, memory_bytes=memory_bytes, num_workers=threads)


def execute_on_ray(programs: Sequence[str], timeouts_s: Sequence[float], memory_bytes: Sequence[int], *,
                   workers: int | None = None, threads_per_worker: int = 1,
                   ray_address: str | None = None) -> list[ExecutionResult]:
    """Run the programs on Ray workers, at most `workers` chunks at once (None: the cluster's CPUs)."""
    import ray

    from tasks.common.runner import ensure_ray

    ensure_ray(ray_address)
    workers = max(1, workers or int(ray.cluster_resources().get("CPU", 1)))
    remote = ray.remote(num_cpus=1, max_retries=2)(_execute_chunk)
    ranges = chunk_bounds(len(programs), workers * CHUNKS_PER_WORKER)
    pending, results = {}, [None] * len(ranges)
    queue = list(enumerate(ranges))
    while queue or pending:
        while queue and len(pending) < workers:
            index, (start, stop) = queue.pop(0)
            ref = remote.remote(list(programs[start:stop]), list(timeouts_s[start:stop]), list(memory_bytes[start:stop]),
                                threads_per_worker)
            pending[ref] = index
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            results[pending.pop(ref)] = ray.get(ref)
    return [r for chunk in results for r in chunk]


def execute_programs(programs: Sequence[str], *, timeouts_s: Sequence[float], memory_bytes: Sequence[int],
                     cfg: EvaluateConfig, ray_address: str | None = None) -> list[ExecutionResult]:
    """Every program through the sandbox, here (`execution: local`) or on Ray workers (`execution: ray`)."""
    if cfg.execution == "ray" and programs:
        return execute_on_ray(programs, timeouts_s, memory_bytes, workers=cfg.ray_workers,
                              threads_per_worker=cfg.num_workers or 1, ray_address=ray_address)
    return execute_many(programs, timeouts_s=timeouts_s, memory_bytes=memory_bytes, num_workers=cfg.num_workers)
