"""The DVC side of an ablation: queue one experiment per variant, run the queue, read the results back.

Everything goes through the `dvc` command line (the interface users type too):

    dvc exp remove <ablation>-<variant> ...      # a re-run replaces the ablation's previous experiments
    dvc exp run --queue -n <ablation>-<variant> -S key=value ...
    dvc exp run --run-all --jobs N               # runs the queue in temporary copies, N at a time
    dvc exp show --json                          # params, metrics and output hashes of every experiment

A queued experiment runs the committed code of HEAD plus the variant's params, in a copy under
`.dvc/tmp/exps/` that shares this project's cache and run-cache. It is queued with `dvc.lock` pruned of the
entries whose outputs this machine's cache lacks (`cache_plan.queued_lock`; why: `cache_plan`'s docstring),
so DVC restores every stage whose code, params and inputs it has seen before from its run-cache and a variant
recomputes only what its overrides reach. The stages run with this project's tracking store
(`MLFLOW_TRACKING_URI`) and with `PYTHONPATH=.`, so each copy runs its own committed code.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.ablate.spec import Ablation, dvc_set_args
from tasks.common.tracking import tracking_uri

LOG_TAIL_LINES = 60


class AblationError(RuntimeError):
    """An ablation could not run, or some of its variants failed (the message says which and why)."""


@dataclass
class VariantResult:
    variant: str
    experiment: str
    rev: str | None = None
    """Commit of the DVC experiment (None when it failed)."""
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict] = field(default_factory=dict)
    """{stage: metrics/<stage>.json} of the experiment."""
    losses: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    """{training stage: [(step, loss)]} from plots/<stage>.csv."""
    outputs: dict[str, str] = field(default_factory=dict)
    """{output path: DVC hash} from the experiment's dvc.lock (the data lineage of its scores)."""
    error: str | None = None
    stages: dict[str, str] = field(default_factory=dict)
    """{stage: "ran" | "restored"} from the experiment's log, in the order DVC went through them."""
    seconds: dict[str, float] = field(default_factory=dict)
    """{stage: seconds of its computation} from metrics/<stage>.json (for a restored stage: the run it
    was restored from, i.e. the time saved)."""

    @property
    def ran_seconds(self) -> float:
        return round(sum(self.seconds.get(s, 0.0) for s, what in self.stages.items() if what == RAN), 3)


RAN, RESTORED = "ran", "restored"
_STAGE_LINE = re.compile(r"^(?:Running stage '(?P<ran>[^']+)'|Stage '(?P<restored>[^']+)' (?:is cached|didn't change))")


def stage_outcomes(log_text: str) -> dict[str, str]:
    """{stage: ran | restored} from a `dvc exp run` log ("Running stage 'x'", "Stage 'x' is cached - skipping
    run", "Stage 'x' didn't change, skipping")."""
    out: dict[str, str] = {}
    for line in log_text.splitlines():
        m = _STAGE_LINE.match(line.strip())
        if m:
            out[m["ran"] or m["restored"]] = RAN if m["ran"] else RESTORED
    return out


def venv_bin() -> Path:
    return Path(sys.executable).parent


def dvc_executable() -> str:
    local = venv_bin() / "dvc"
    return str(local) if local.exists() else "dvc"


def experiment_env(project_dir: str | Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of the DVC commands and of the stages they run in temporary copies."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (".", env.get("PYTHONPATH", "")) if p)
    env["MLFLOW_TRACKING_URI"] = env.get("MLFLOW_TRACKING_URI") or tracking_uri(project_dir)
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


def run_cmd(args: list[str], cwd: str | Path, env: dict[str, str], *, check: bool = True,
            timeout: float | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-LOG_TAIL_LINES:])
        raise AblationError(f"`{' '.join(args)}` failed (exit {proc.returncode}):\n{tail}")
    return proc


def git_dirty(project_dir: str | Path) -> list[str]:
    """`git status --porcelain` lines: changes a queued experiment would not run as committed."""
    proc = subprocess.run(["git", "status", "--porcelain"], cwd=project_dir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AblationError(f"{project_dir} is not a git repository: DVC experiments need one (git init, git commit)")
    return [line for line in proc.stdout.splitlines() if line.strip()]


def require_committed(project_dir: str | Path) -> None:
    dirty = git_dirty(project_dir)
    if dirty:
        shown = "\n  ".join(dirty[:20]) + ("\n  ..." if len(dirty) > 20 else "")
        raise AblationError(
            "the working tree has uncommitted changes, and DVC experiments run from a git commit (untracked files "
            f"are left out, so the variants would not run what you see):\n  {shown}\n"
            "Commit them first (git add ... && git commit), or pass --allow-dirty to run HEAD plus tracked changes.")


def head_rev(project_dir: str | Path) -> str:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AblationError(f"{project_dir}: no commit yet; DVC experiments run from a git commit (git commit first)")
    return proc.stdout.strip()


def show_experiments(project_dir: str | Path, env: dict[str, str]) -> list[dict]:
    """`dvc exp show --json` of the current baseline: one entry per experiment with its name and revs."""
    out = run_cmd([dvc_executable(), "exp", "show", "--json"], project_dir, env).stdout
    entries = json.loads(out or "[]")
    baseline = head_rev(project_dir)
    found = []
    for entry in entries:
        if entry.get("rev") == baseline:
            found += entry.get("experiments") or []
    return found


def experiment_revs(experiments: list[dict]) -> dict[str, dict]:
    """{experiment name: its newest finished rev entry} (queued, running or failed ones have no data)."""
    out = {}
    for exp in experiments:
        for rev in exp.get("revs") or []:
            name = rev.get("name") or exp.get("name")
            if name and rev.get("data") and not rev.get("error"):
                out.setdefault(name, rev)
    return out


def experiment_names(project_dir: str | Path) -> set[str]:
    """Names of the experiments of the current baseline, from their git refs (`refs/exps/<ba>/<seline>/<name>`,
    DVC's layout), without starting DVC."""
    baseline = head_rev(project_dir)
    proc = subprocess.run(["git", "for-each-ref", "--format=%(refname)", f"refs/exps/{baseline[:2]}/{baseline[2:]}/"],
                          cwd=project_dir, capture_output=True, text=True)
    return {ref.rsplit("/", 1)[-1] for ref in proc.stdout.split()}


def remove_previous(names: list[str], project_dir: str | Path, env: dict[str, str]) -> None:
    """Drop earlier experiments and queue entries with these names (their cached outputs stay)."""
    finished = [n for n in names if n in experiment_names(project_dir)]
    if finished:
        run_cmd([dvc_executable(), "exp", "remove", *finished], project_dir, env, check=False)
    run_cmd([dvc_executable(), "queue", "remove", *names], project_dir, env, check=False)


def queue_experiment(name: str, overrides: dict[str, Any], targets: list[str] | tuple[str, ...],
                     project_dir: str | Path, env: dict[str, str]) -> None:
    args = [dvc_executable(), "exp", "run", "--queue", "-n", name, *dvc_set_args(overrides), *targets]
    run_cmd(args, project_dir, env)


def queue_variants(ablation: Ablation, project_dir: str | Path, env: dict[str, str]) -> None:
    for variant, overrides in ablation.variants.items():
        queue_experiment(ablation.experiment_name(variant), overrides, ablation.stages, project_dir, env)


def remove_experiments(names: list[str], project_dir: str | Path, env: dict[str, str]) -> None:
    run_cmd([dvc_executable(), "exp", "remove", *names], project_dir, env, check=False)


def run_queue(project_dir: str | Path, env: dict[str, str], jobs: int, log: Callable[[str], None]) -> str:
    """`dvc exp run --run-all --jobs N`, its output streamed line by line to `log`; returns the output.

    The output goes through a file, not a pipe: with --jobs > 1 DVC spawns extra queue workers that inherit the
    command's stdout and may idle on after it exits, so a pipe would not reach end-of-file until they do."""
    args = [dvc_executable(), "exp", "run", "--run-all", "--jobs", str(jobs)]
    log("running " + " ".join(args))
    fd, path = tempfile.mkstemp(prefix="ablate-queue-", suffix=".log")
    try:
        with os.fdopen(fd, "w") as sink, open(path) as source:
            proc = subprocess.Popen(args, cwd=project_dir, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True)
            text, pending = [], ""
            while True:
                finished = proc.poll() is not None
                pending += source.read()
                *lines, pending = pending.split("\n")
                for line in lines:
                    text.append(line + "\n")
                    log(line)
                if finished:
                    break
                time.sleep(0.5)
            if pending:
                text.append(pending)
                log(pending)
    finally:
        os.unlink(path)
        # The queue's workers idle on after the run (one stayed 50 minutes): stop them, nothing is left to run.
        subprocess.run([dvc_executable(), "queue", "stop", "-q"], cwd=project_dir, env=env, capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise AblationError(f"`{' '.join(args)}` failed (exit {proc.returncode}); see the log above")
    return "".join(text)


_REPRODUCING = re.compile(r"^Reproducing experiment '(?P<name>[^']+)'", re.M)


def logs_by_experiment(output: str) -> dict[str, str]:
    """{experiment name: its log} from `dvc exp run --run-all` output, which follows each queued experiment's
    whole log in turn (also with --jobs > 1), each starting with "Reproducing experiment '<name>'"."""
    marks = list(_REPRODUCING.finditer(output))
    return {m["name"]: output[m.start():(marks[i + 1].start() if i + 1 < len(marks) else len(output))]
            for i, m in enumerate(marks)}


def experiment_log(name: str, project_dir: str | Path, env: dict[str, str]) -> str:
    proc = run_cmd([dvc_executable(), "queue", "logs", name], project_dir, env, check=False)
    return proc.stdout + proc.stderr


def failure_log(name: str, project_dir: str | Path, env: dict[str, str]) -> str:
    lines = experiment_log(name, project_dir, env).splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:]) or "(no log)"


def _git_show(project_dir: str | Path, rev: str, path: str) -> str | None:
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=project_dir, capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def _git_ls(project_dir: str | Path, rev: str, folder: str) -> list[str]:
    proc = subprocess.run(["git", "ls-tree", "--name-only", rev, f"{folder}/"], cwd=project_dir,
                          capture_output=True, text=True)
    return proc.stdout.split() if proc.returncode == 0 else []


def parse_loss_csv(text: str) -> list[tuple[int, float]]:
    """(step, loss) pairs of a training stage's plots/<stage>.csv."""
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            rows.append((int(float(row["step"])), float(row["loss"])))
        except (KeyError, TypeError, ValueError):
            continue
    return rows


def stage_metrics(data: dict) -> dict[str, dict]:
    """{stage: metrics} from one `dvc exp show --json` rev entry (`metrics/<stage>.json` files)."""
    out = {}
    for path, entry in (data.get("metrics") or {}).items():
        p = Path(path)
        if p.parent.name == "metrics" and p.suffix == ".json" and isinstance(entry.get("data"), dict):
            out[p.stem] = entry["data"]
    return out


def read_variant(variant: str, name: str, rev_entry: dict, project_dir: str | Path) -> VariantResult:
    data = rev_entry["data"]
    rev = rev_entry["rev"]
    params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
    outputs = {path: o.get("hash") for path, o in (data.get("outs") or {}).items() if o.get("hash")}
    losses = {}
    for path in _git_ls(project_dir, rev, "plots"):
        if path.endswith(".csv"):
            text = _git_show(project_dir, rev, path)
            if text:
                losses[Path(path).stem] = parse_loss_csv(text)
    metrics = stage_metrics(data)
    seconds = {s: float(m["seconds"]) for s, m in metrics.items() if isinstance(m.get("seconds"), (int, float))}
    return VariantResult(variant, name, rev, params, metrics, losses, outputs, seconds=seconds)


def collect(ablation: Ablation, project_dir: str | Path, env: dict[str, str],
            logs: dict[str, str] | None = None) -> dict[str, VariantResult]:
    """Every variant's results, or its error (the tail of its experiment log) when it did not finish; which
    stages ran comes from `logs` ({experiment: log}, else `dvc queue logs`)."""
    logs = logs or {}
    revs = experiment_revs(show_experiments(project_dir, env))
    results = {}
    for variant in ablation.variants:
        name = ablation.experiment_name(variant)
        if name in revs:
            results[variant] = read_variant(variant, name, revs[name], project_dir)
            results[variant].stages = stage_outcomes(logs.get(name) or experiment_log(name, project_dir, env))
        else:
            results[variant] = VariantResult(variant, name, error=failure_log(name, project_dir, env))
    return results
