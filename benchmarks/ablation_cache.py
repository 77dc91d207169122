"""Operations benchmark: a re-run ablation comes from cache, and a Prefect deployment computes what the CLI does.

    python benchmarks/ablation_cache.py                  # the embedded default (tens of minutes on 2 cores)
    python benchmarks/ablation_cache.py --tiny           # tests/test_lifecycle.py's TINY params (quicker)
    python benchmarks/ablation_cache.py --name dedup_level --jobs 2 --keep /tmp/bench
    python benchmarks/ablation_cache.py --skip-ablation  # only the deployment-vs-CLI comparison

1. rerun_time_share: in a fresh committed copy of the project (empty DVC cache), `cookbook ablate <name>` is
   timed (every variant a DVC experiment, the comparison, the MLflow runs); then run again with nothing changed.
   The figure is second / first wall time (peer: the first run). The second run restores every stage from DVC's
   run-cache, so what is left is DVC's and MLflow's bookkeeping.
2. deployment_metrics_match_cli: in two more fresh copies, the lifecycle runs once from the `lifecycle`
   deployment of prefect.yaml on a real `prefect server start` (flow run created through the REST API as the UI
   does, executed by a `prefect worker`), and once as `dvc repro` from the command line; every metrics/*.json
   must be equal once timing fields (seconds, throughput) are left out. The keys that differ are printed.

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
    cached = proc.stdout.count("is cached - skipping run")
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tests/test_lifecycle.py's TINY params")
    parser.add_argument("--name", default="sft_strategy", help="ablation to time (default: sft_strategy)")
    parser.add_argument("--jobs", type=int, default=1, help="experiments at a time (default: 1)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--skip-deployment", action="store_true", help="only the ablation figure")
    parser.add_argument("--skip-ablation", action="store_true", help="only the deployment figure")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="ablation-cache-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        figures = {"tiny": args.tiny}
        if not args.skip_ablation:
            print(f"1. ablation {args.name} ({'tiny' if args.tiny else 'embedded default'}) in {work}/ablation", flush=True)
            project = work / "ablation"
            project.mkdir()
            env = copy_project(project, args.tiny)
            first = timed_ablation(project, env, args.name, args.jobs)
            second = timed_ablation(project, env, args.name, args.jobs)
            figures.update(ablation=args.name, first_run_s=round(first, 1), rerun_s=round(second, 1),
                           rerun_time_share=round(second / first, 4))
        if not args.skip_deployment:
            print("2. lifecycle from the Prefect deployment vs dvc repro", flush=True)
            deployed, cli = work / "deployment", work / "cli"
            deployed.mkdir()
            cli.mkdir()
            deployment_s = deployment_run(deployed, copy_project(deployed, args.tiny), work / "prefect")
            print(f"  deployment: {deployment_s:.0f}s", flush=True)
            cli_s = cli_run(cli, copy_project(cli, args.tiny))
            print(f"  dvc repro: {cli_s:.0f}s", flush=True)
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
