"""Operations benchmark: ablation variants share work through DVC's cache, and a Prefect deployment computes what
the CLI does.

    python benchmarks/ablation_cache.py                  # the embedded default (about an hour on a quiet 2-core machine)
    python benchmarks/ablation_cache.py --tiny           # tests/test_lifecycle.py's TINY params (quicker)
    python benchmarks/ablation_cache.py --name dedup_level --jobs 2 --keep /tmp/bench
    python benchmarks/ablation_cache.py --skip-ablation  # only the deployment-vs-CLI comparison

Every run starts from a fresh committed copy of the project (empty DVC cache), whose committed dvc.lock names
outputs this machine has never computed, as on a fresh clone.

1. The single run (the peer): `dvc repro` of the whole lifecycle in one copy: its wall time, and the seconds of
   each stage (metrics/<stage>.json `seconds`).
2. In another copy, `cookbook ablate <name>` from an empty cache (every variant a DVC experiment, the comparison,
   the MLflow runs), then again with nothing changed.
   - ablation_vs_single_run: the first ablation's wall time / the single run's wall time.
   - variant_recompute_share: stage-seconds computed by variants 2..n (the stages their logs show running)
     / ((n-1) x the single run's stage-seconds); variant_recompute_bound is the single run's share of the stages
     downstream of what the variants change, plus 0.05.
   - rerun_time_share: second / first ablation wall time; the second restores every stage from DVC's cache,
     so what is left is DVC's and MLflow's bookkeeping.
3. deployment_metrics_match_cli: in one more copy the lifecycle runs from the `lifecycle` deployment of
   prefect.yaml on a real `prefect server start` (flow run created through the REST API as the UI does, executed
   by a `prefect worker`); every metrics/*.json must equal the single run's (step 1, `dvc repro` from the command
   line) once timing fields (seconds, throughput) are left out. The keys that differ are printed.

The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ops.servers import BIN, process, prefect_server, project_copy, sh  # noqa: E402
from tests.test_lifecycle import TINY  # noqa: E402

TIMING = re.compile(r"(^|\.)([a-z_]*seconds|[a-z_]*per_s|mfu|[a-z_]*_at)$")
"""Metrics that measure time, not results: left out of the comparison."""


def copy_project(dest: Path, tiny: bool) -> dict:
    """A committed git copy of the repository's files (TINY params with --tiny); returns its environment."""
    return project_copy(dest, *([TINY] if tiny else []))[1]


def timed_ablation(project: Path, env: dict, name: str, jobs: int) -> float:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tasks.cli", "ablate", name, "--jobs", str(jobs)], cwd=project, env=env,
                          capture_output=True, text=True)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"cookbook ablate {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    cached = proc.stdout.count("is cached - skipping run") + proc.stdout.count("didn't change, skipping")
    ran = proc.stdout.count("Running stage")
    print(f"  ablate {name}: {seconds:.0f}s ({ran} stage runs, {cached} restored from cache)", flush=True)
    return seconds


def flat(data, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, f"{name}."))
        else:
            out[name] = value
    return out


def result_metrics(project: Path) -> dict[str, dict]:
    """{stage: flattened metrics without timing fields} of metrics/*.json."""
    return {p.stem: {k: v for k, v in flat(json.loads(p.read_text())).items() if not TIMING.search(k)}
            for p in sorted((project / "metrics").glob("*.json"))}


def differences(a: dict[str, dict], b: dict[str, dict]) -> list[str]:
    diffs = [f"{s}: only in one run" for s in sorted(set(a) ^ set(b))]
    for stage in sorted(set(a) & set(b)):
        for key in sorted(set(a[stage]) | set(b[stage])):
            if a[stage].get(key) != b[stage].get(key):
                diffs.append(f"{stage}.{key}: {a[stage].get(key)!r} != {b[stage].get(key)!r}")
    return diffs


def cli_run(project: Path, env: dict) -> float:
    started = time.monotonic()
    sh([str(BIN / "dvc"), "repro"], project, env, timeout=6 * 3600)
    return time.monotonic() - started


def deployment_run(project: Path, env: dict, home: Path) -> float:
    """The lifecycle from its Prefect deployment on a real server and worker; returns the flow run's seconds."""
    import httpx

    with prefect_server(home) as api:
        env = {**env, "PREFECT_API_URL": api, "PREFECT_WORKER_QUERY_SECONDS": "2"}
        sh([str(BIN / "prefect"), "work-pool", "create", "cookbook", "--type", "process", "--overwrite"], project, env)
        sh([str(BIN / "prefect"), "deploy", "--all", "--no-prompt"], project, env, timeout=600)
        with process([str(BIN / "prefect"), "worker", "start", "--pool", "cookbook"], home / "worker.log", env, project):
            http = httpx.Client(base_url=api, timeout=60)
            deployment = http.get("/deployments/name/lifecycle/lifecycle").json()["id"]
            run_id = http.post(f"/deployments/{deployment}/create_flow_run", json={"parameters": {}}).json()["id"]
            started = time.monotonic()
            while True:
                run = http.get(f"/flow_runs/{run_id}").json()
                if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                    break
                time.sleep(5)
            if run["state"]["type"] != "COMPLETED":
                raise SystemExit(f"deployment run {run['state']['type']}: {run['state']['message']}\n"
                                 + (home / "worker.log").read_text()[-3000:])
            return time.monotonic() - started


def stage_seconds(project: Path) -> dict[str, float]:
    """{stage: seconds} of metrics/<stage>.json (the stage's own timing, without process start-up)."""
    out = {}
    for path in sorted((project / "metrics").glob("*.json")):
        seconds = json.loads(path.read_text()).get("seconds")
        if isinstance(seconds, (int, float)):
            out[path.stem] = float(seconds)
    return out


def variant_work(project: Path, name: str) -> dict[str, dict]:
    """{variant: {"ran": [...], "restored": [...], "seconds": {...}}} from the ablation's results.json."""
    results = json.loads((project / "reports" / "ablations" / name / "results.json").read_text())["variants"]
    return {v: {"ran": [s for s, w in r["stages"].items() if w == "ran"],
                "restored": [s for s, w in r["stages"].items() if w == "restored"], "seconds": r["seconds"]}
            for v, r in results.items()}


def recompute_figures(work: dict[str, dict], single: dict[str, float], reached: list[str]) -> dict:
    """variant_recompute_share of variants 2..n against the single run's stage-seconds, and its bound."""
    later = list(work.values())[1:]
    computed = sum(w["seconds"].get(s, 0.0) for w in later for s in w["ran"])
    total = sum(single.values())
    bound = sum(single.get(s, 0.0) for s in reached) / total + 0.05
    return {"variant_recompute_share": round(computed / (len(later) * total), 4),
            "variant_recompute_bound": round(bound, 4)}


def reached_stages(project: Path, name: str) -> list[str]:
    from dvc.repo import Repo

    from tasks.ablate.cache_plan import pipeline, reached, varied_keys
    from tasks.ablate.spec import load_ablation

    repo = Repo(str(project))
    try:
        return reached(pipeline(repo), varied_keys(load_ablation(name, project).variants))
    finally:
        repo.close()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tests/test_lifecycle.py's TINY params")
    parser.add_argument("--name", default="sft_strategy", help="ablation to time (default: sft_strategy)")
    parser.add_argument("--jobs", type=int, default=1, help="experiments at a time (default: 1)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--skip-deployment", action="store_true", help="only the ablation figures")
    parser.add_argument("--skip-ablation", action="store_true", help="only the deployment figure")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="ablation-cache-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        figures = {"tiny": args.tiny}
        print(f"1. single run: dvc repro ({'tiny' if args.tiny else 'embedded default'}) in {work}/cli", flush=True)
        cli = work / "cli"
        cli.mkdir()
        cli_s = cli_run(cli, copy_project(cli, args.tiny))
        single = stage_seconds(cli)
        print(f"  dvc repro: {cli_s:.0f}s wall, {sum(single.values()):.0f} stage-seconds", flush=True)
        figures.update(single_run_s=round(cli_s, 1), single_run_stage_s=round(sum(single.values()), 1))
        if not args.skip_ablation:
            print(f"2. ablation {args.name} --jobs {args.jobs} in {work}/ablation", flush=True)
            project = work / "ablation"
            project.mkdir()
            env = copy_project(project, args.tiny)
            first = timed_ablation(project, env, args.name, args.jobs)
            done = variant_work(project, args.name)
            for variant, w in done.items():
                print(f"  {variant}: ran {', '.join(w['ran']) or '-'}; restored {', '.join(w['restored']) or '-'}", flush=True)
            second = timed_ablation(project, env, args.name, args.jobs)
            figures.update(ablation=args.name, jobs=args.jobs, first_run_s=round(first, 1), rerun_s=round(second, 1),
                           rerun_time_share=round(second / first, 4), ablation_vs_single_run=round(first / cli_s, 4),
                           **recompute_figures(done, single, reached_stages(project, args.name)),
                           rerun_stages_ran=sum(len(w["ran"]) for w in variant_work(project, args.name).values()))
        if not args.skip_deployment:
            print("3. lifecycle from the Prefect deployment vs the single run (dvc repro)", flush=True)
            deployed = work / "deployment"
            deployed.mkdir()
            deployment_s = deployment_run(deployed, copy_project(deployed, args.tiny), work / "prefect")
            print(f"  deployment: {deployment_s:.0f}s", flush=True)
            diffs = differences(result_metrics(deployed), result_metrics(cli))
            for line in diffs[:40]:
                print(f"  differs: {line}")
            figures.update(deployment_run_s=round(deployment_s, 1), cli_run_s=round(cli_s, 1),
                           metrics_compared=sum(len(m) for m in result_metrics(cli).values()),
                           deployment_metrics_match_cli=not diffs)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
