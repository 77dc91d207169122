"""Run every benchmark in benchmarks/ and check each figure against the bar its issue set.

    python benchmarks/run_all.py                          # every script, full size
    python benchmarks/run_all.py --quick                  # smaller inputs where a script has a size flag
    python benchmarks/run_all.py --only clean,clean_agreement --reference /path/to/opc_data_filtering

Each script runs in its own process (`--timeout` seconds each); its last stdout line is its JSON object of
figures. `BARS` lists the bar of every figure the issues (#14-#20) set, with the script that must print it; a
figure a script does not print (yet) is reported as `missing`, a script that fails or prints no JSON as
`error`, one that cannot run here (clean_agreement without `--reference`) as `skipped`, a figure without a bar
as `info`. Prints one table, then one JSON line with the counts and
the names of failed / missing figures. Exit status 1 when a figure fails or a script errors. Run it before
resolving an issue that touches shared code (runner, shards, config).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


@dataclass(frozen=True)
class Bar:
    script: str
    figure: str
    op: str  # ">=", "<=", "<", "==", "equals:<other figure>", "at_most:<other figure>"
    value: object
    issue: int


BARS = [
    # #14 scale-out
    Bar("scale", "driver_rss_ratio_1m_vs_100k", "<=", 1.2, 14),
    Bar("scale", "time_exponent", "<=", 1.05, 14),
    Bar("scale", "kept_identical_300k", "==", True, 14),
    Bar("scale", "cluster_vs_local", ">=", 0.9, 14),
    Bar("scale", "driver_bytes_per_doc", "<", 1, 14),
    # #15 clean fidelity and speed
    Bar("clean_agreement", "decision_agreement", ">=", 0.995, 15),
    Bar("clean_agreement", "signal_agreement", ">=", 0.99, 15),
    Bar("clean_agreement", "rules_below_0.98", "==", [], 15),
    Bar("clean", "mb_per_s_per_core", ">=", 1.0, 15),
    Bar("clean", "speedup_2_workers", ">=", 1.7, 15),
    # #16 faults
    Bar("faults", "faults_injected", ">=", 50, 16),
    Bar("faults", "runs_identical", "equals:faults_injected", None, 16),
    Bar("faults", "rows_lost", "==", 0, 16),
    Bar("faults", "partial_outputs_seen", "==", 0, 16),
    Bar("faults", "hung", "==", 0, 16),
    Bar("faults", "duplicate_ids_after_ingest", "==", 0, 16),
    # #17 training and evaluation at scale
    Bar("train", "cpu_two_process_loss_diff", "<=", 1e-3, 17),
    Bar("train", "packed_sdpa_loss_diff", "<=", 1e-4, 17),
    Bar("train", "host_rss_gb_init_1p5b", "<", 4, 17),
    Bar("train", "gpu_mfu", ">=", 0.50, 17),  # only on a GPU machine; missing elsewhere
    Bar("evaluate", "exec_speedup_2_workers", ">=", 1.7, 17),
    # #19 evaluation fidelity
    Bar("evaluate", "prompt_identical_share", "==", 1.0, 19),
    Bar("evaluate", "humanevalplus_canonical_passed", "==", 164, 19),
    Bar("evaluate", "mbppplus_canonical_passed", "equals:mbppplus_task_count", None, 19),
    Bar("evaluate", "postprocess_agreement", "==", 1.0, 19),
    Bar("evaluate", "mbppplus_canonical_passed", "equals:mbppplus_task_count", None, 19),
    # #20 ablation cache
    # the share downstream of the overrides + 0.05, which the script prints as variant_recompute_bound (~0.35 for sft_strategy)
    Bar("ablation_cache", "variant_recompute_share", "at_most:variant_recompute_bound", None, 20),
    Bar("ablation_cache", "ablation_vs_single_run", "<=", 1.7, 20),
    Bar("ablation_cache", "rerun_time_share", "<", 0.1, 20),
    Bar("ablation_cache", "deployment_metrics_match_cli", "==", True, 20),
]

QUICK_ARGS = {
    # smaller inputs, same figures (scripts without a size flag run as they are)
    "clean": ["--max-mb", "3", "--repeat", "1"],
    "dedup": ["--sizes", "10000", "--worker-docs", "30000"],
    "ablation_cache": ["--tiny"],
}


def scripts() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if p.stem not in ("run_all", "__init__"))


def script_args(name: str, args) -> list[str] | None:
    """Extra command-line arguments of one script, or None when it cannot run here (the reason is printed)."""
    extra = list(QUICK_ARGS.get(name, [])) if args.quick else []
    if name == "clean_agreement":
        reference = args.reference or os.environ.get("COOKBOOK_REFERENCE_FILTER")
        if not reference:
            return None
        extra += ["--reference", reference]
        if args.corpus:
            extra += ["--corpus", args.corpus]
        if args.mirror:
            extra += ["--mirror", args.mirror]
    return extra


def run_script(name: str, extra: list[str], timeout: float) -> tuple[dict | None, str, float]:
    """(figures, error message, seconds) of one benchmark script."""
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(BENCH_DIR / f"{name}.py"), *extra], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s", time.perf_counter() - started
    seconds = time.perf_counter() - started
    lines = [line for line in proc.stdout.strip().splitlines() if line.strip()]
    try:
        figures = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        figures = None
    if proc.returncode != 0 or not isinstance(figures, dict):
        tail = (proc.stderr.strip().splitlines() or lines or ["(no output)"])[-1]
        return None, f"exit {proc.returncode}: {tail[:160]}", seconds
    return figures, "", seconds


def check(bar: Bar, figures: dict) -> str:
    """pass / FAIL / missing for one bar."""
    if bar.figure not in figures:
        return "missing"
    value = figures[bar.figure]
    if bar.op.startswith(("equals:", "at_most:")):
        kind, other = bar.op.split(":", 1)
        if other not in figures:
            return "missing"
        try:
            ok = value == figures[other] if kind == "equals" else value <= figures[other]
        except TypeError:
            ok = False
        return "pass" if ok else "FAIL"
    try:
        ok = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
              "==": lambda a, b: a == b}[bar.op](value, bar.value)
    except TypeError:
        ok = False
    return "pass" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs where a script has a size flag")
    parser.add_argument("--only", help="comma-separated script names (e.g. clean,clean_agreement)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per script")
    parser.add_argument("--reference", help="opc_data_filtering checkout for clean_agreement (or COOKBOOK_REFERENCE_FILTER)")
    parser.add_argument("--corpus", help="agreement corpus folder for clean_agreement")
    parser.add_argument("--mirror", help="git directories to export the agreement corpus from")
    args = parser.parse_args(argv)
    names = scripts()
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            print(f"error: --only {','.join(unknown)}: no such benchmark in {BENCH_DIR} (have: {', '.join(names)})", file=sys.stderr)
            return 2
        names = wanted
    rows, results = [], {}
    for name in names:
        extra = script_args(name, args)
        if extra is None:
            results[name] = (None, "skipped: needs --reference (an opc_data_filtering checkout)", 0.0)
        else:
            print(f"running {name} {' '.join(extra)}", file=sys.stderr, flush=True)
            results[name] = run_script(name, extra, args.timeout)
        figures, error, seconds = results[name]
        bars = [b for b in BARS if b.script == name]
        if figures is None:
            status = "skipped" if error.startswith("skipped") else "error"
            rows += [(name, b.figure, "-", f"{b.op} {b.value}" if b.value is not None else b.op, f"#{b.issue}", status, error) for b in bars]
            if not bars:
                rows.append((name, "-", "-", "-", "-", status, error))
            continue
        for b in bars:
            rows.append((name, b.figure, json.dumps(figures.get(b.figure, "-")), f"{b.op} {b.value}" if b.value is not None else b.op,
                         f"#{b.issue}", check(b, figures), f"{seconds:.0f} s"))
        barred = {b.figure for b in bars}
        rows += [(name, k, json.dumps(v), "-", "-", "info", f"{seconds:.0f} s") for k, v in figures.items() if k not in barred]
    widths = [max(len(str(r[i])) for r in rows + [("script", "figure", "value", "bar", "issue", "status", "note")]) for i in range(7)]
    header = ("script", "figure", "value", "bar", "issue", "status", "note")
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c)[:60].ljust(min(w, 60)) for c, w in zip(r, widths)))
    failed = [f"{r[0]}.{r[1]}" for r in rows if r[5] == "FAIL"]
    missing = [f"{r[0]}.{r[1]}" for r in rows if r[5] == "missing"]
    errors = sorted({r[0] for r in rows if r[5] == "error"})
    skipped = sorted({r[0] for r in rows if r[5] == "skipped"})
    print(json.dumps({"passed": sum(r[5] == "pass" for r in rows), "failed": failed, "missing": missing,
                      "errors": errors, "skipped": skipped, "scripts": len(names)}))
    return 1 if failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())
