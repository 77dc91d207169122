"""Launch `train_loop` on Ray Train's TorchTrainer (the one module besides the runner that imports Ray).

Locally: one CPU worker, gloo. On a cluster: `num_workers` GPU workers, NCCL; same code. Ray Train's
run folder (`storage_path`) lives under the stage's checkpoint folder, never in the user's home; our
own DeepSpeed checkpoints are written by the loop (`checkpoint.py`), so on a multi-node cluster the
checkpoint folder must be shared storage.

Elastic restarts: `FailureConfig(max_failures)`. When a worker dies (a lost node, a killed process), Ray
Train tears the worker group down and starts a new one, which runs `train_loop` again: every phase resumes
from the newest complete DeepSpeed checkpoint in its folder (the `latest` tag), with the step, the data
position and the phase's loss rows up to that step, so the loss curve continues exactly from the restore step.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tasks.common.config import ConfigError
from tasks.common.runner import ensure_ray
from tasks.train.job import TrainJob, to_plain
from tasks.train.loop import train_loop

log = logging.getLogger(__name__)


def workers_that_fit(nodes: list[dict], cpus: int, gpus: int) -> int:
    """How many training workers of `cpus` CPUs and `gpus` GPUs the cluster's alive nodes hold at once (a
    worker lives on one node)."""
    total = 0
    for node in nodes:
        if not node.get("Alive", True):
            continue
        have = node.get("Resources", {})
        fits = int(have.get("CPU", 0) // cpus) if cpus else 1 << 20
        if gpus:
            fits = min(fits, int(have.get("GPU", 0) // gpus))
        total += fits
    return total


def check_cluster_holds(stage: str, num_workers: int, cpus: int, gpus: int, nodes: list[dict]) -> None:
    """Fail in one line, instead of waiting forever for resources that no node has, when the cluster can
    never place `num_workers` workers of this size."""
    fits = workers_that_fit(nodes, cpus, gpus)
    if fits < num_workers:
        sizes = ", ".join(f"{n.get('Resources', {}).get('CPU', 0):g} CPU" + (f" {n['Resources'].get('GPU', 0):g} GPU" if gpus else "")
                          for n in nodes if n.get("Alive", True))
        raise ConfigError(f"{stage}: {num_workers} worker(s) of {cpus} CPU{f' and {gpus} GPU' if gpus else ''} each do not fit "
                          f"the Ray cluster's nodes ({sizes}; {fits} fit): lower {stage}.cpus_per_worker or "
                          f"{stage}.num_workers, or give the nodes more CPUs")


def launch(job: TrainJob, *, num_workers: int, use_gpu: bool, cpus_per_worker: int, storage_path: Path,
           ray_address: str | None = None, max_failures: int = 3) -> None:
    import ray
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    ensure_ray(ray_address)
    check_cluster_holds(job.stage, num_workers, cpus_per_worker, int(use_gpu), ray.nodes())
    storage_path = Path(storage_path).resolve()
    storage_path.mkdir(parents=True, exist_ok=True)
    trainer = TorchTrainer(
        train_loop,
        train_loop_config=to_plain(job),
        scaling_config=ray.train.ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                               resources_per_worker={"CPU": cpus_per_worker}),
        run_config=ray.train.RunConfig(name=f"{job.stage}-ray-train", storage_path=str(storage_path),
                                       failure_config=ray.train.FailureConfig(max_failures=max_failures)),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
    )
    trainer.fit()
