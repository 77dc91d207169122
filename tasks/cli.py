"""`cookbook`: the command line.

    cookbook run                                  # the whole lifecycle (Prefect flow over the DVC stages)
    cookbook clean --input DIR --output DIR       # one stage on your own data, same code as the pipeline
    cookbook evaluate --model PATH --benchmarks humaneval,mbpp --output DIR
    cookbook evaluate --samples FILE.jsonl --benchmarks humaneval
    cookbook <stage> ... --set section.key=value  # override params.yaml values
    cookbook ablate NAME [--jobs N] [--dry-run]   # a named ablation (ablations/NAME.yaml) as DVC experiments

Errors in the configuration, missing or unusable inputs (a damaged shard, a model folder that does not load)
print one line naming the file or key and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tasks.ablate.experiments import AblationError
from tasks.common.config import ConfigError
from tasks.common.inputs import InputError, check_stage_inputs, check_stage_output, disk_full_line, is_disk_full
from tasks.common.logs import configure_logging
from tasks.common.shards import MissingInputError, location
from tasks.stages import ORDER, STAGES


def _stage_parser(sub, name: str) -> argparse.ArgumentParser:
    spec = STAGES[name]
    p = sub.add_parser(name, help=f"run the {name} stage")
    p.add_argument("--input", type=location, default=Path(spec.input) if spec.input else None,
                   help=f"input path or URI such as s3://bucket/prefix (default: {spec.input or 'from params.yaml'})")
    p.add_argument("--output", type=location, default=Path(spec.output),
                   help=f"output path or URI (default: {spec.output})")
    p.add_argument("--metrics", type=location, default=None,
                   help=f"metrics JSON (default: {spec.metrics} for the pipeline's paths, else OUTPUT.metrics.json)")
    return p


def _stage_list(text: str) -> list[str]:
    """`--stages ingest,clean` -> the stages in pipeline order; an unknown name is a usage error."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in STAGES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown stage(s) {', '.join(unknown) or '(none given)'}; "
                                         f"choose from {', '.join(ORDER)}")
    return [n for n in ORDER if n in names]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    common.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a params.yaml value (repeatable)")
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    parser = argparse.ArgumentParser(prog="cookbook", description=__doc__.split("\n\n")[0], parents=[common])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=lambda **kw: argparse.ArgumentParser(parents=[common], **kw))
    run = sub.add_parser("run", help="run the whole lifecycle as a Prefect flow over the DVC stages",
                         description="Run the lifecycle (ingest ... report) as the Prefect flow `lifecycle`: each stage "
                                     "is its DVC stage (skipped when nothing changed), an MLflow child run of one "
                                     "lifecycle parent run, and a Prefect task with a markdown artifact of its counts. "
                                     "--set writes the overrides into params.yaml before the run (so `dvc repro` and "
                                     "`dvc exp show` see them). Ends with a summary: counts, scores, reports, UI links.",
                         epilog="Afterwards: `mlflow ui --backend-store-uri sqlite:///mlflow.db` (runs table: "
                                "http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning), "
                                "`prefect server start` (http://127.0.0.1:4200/runs; without PREFECT_API_URL the "
                                "history is in $PREFECT_HOME/prefect.db, by default ~/.prefect/prefect.db), "
                                "reports/report.md, `dvc plots show` (works offline).")
    run.add_argument("--force", action="store_true", help="re-run every stage even if DVC says it is up to date")
    run.add_argument("--stages", type=_stage_list, default=None, metavar="STAGE[,STAGE...]",
                     help=f"run only these stages, in pipeline order (default: all: {','.join(ORDER)})")
    ablate = sub.add_parser("ablate", help="run a named ablation (ablations/NAME.yaml): each variant a DVC experiment, "
                                           "then a comparison (reports/ablations/NAME/, MLflow run ablation:NAME)")
    ablate.add_argument("name", nargs="?", help="ablation name (a file in ablations/)")
    ablate.add_argument("--jobs", "-j", type=int, default=1, help="experiments run at a time (default: 1)")
    ablate.add_argument("--allow-dirty", action="store_true",
                        help="run although the working tree has uncommitted changes (experiments run from HEAD)")
    ablate.add_argument("--list", action="store_true", help="list the available ablations")
    ablate.add_argument("--dry-run", action="store_true",
                        help="print, per variant, the stages that will run and those restored from DVC's cache")
    for name in ORDER:
        p = _stage_parser(sub, name)
        if name == "evaluate":
            p.add_argument("--model", type=Path, help="HF model folder to evaluate (alias of --input)")
            p.add_argument("--samples", type=Path, help="score pre-generated completions (JSONL: task_id, completion)")
            p.add_argument("--benchmarks", help="comma-separated benchmarks (default: evaluate.benchmarks)")
            p.add_argument("--backend", help="generation backend: hf, vllm, openai (default: evaluate.backend)")
    return parser


def _metrics_path(args, spec) -> str | Path:
    if args.metrics:
        return args.metrics
    if args.output == Path(spec.output):
        return spec.metrics
    return f"{str(args.output).rstrip('/')}.metrics.json"


def _run_stage(args) -> int:
    from tasks.common.stage import execute
    from tasks.config import load_params

    spec = STAGES[args.command]
    overrides = list(args.overrides)
    if args.command == "evaluate":
        if args.model:
            args.input = args.model
        if args.samples:
            overrides.append(f"evaluate.samples={args.samples}")
            args.input = None
        if args.benchmarks:
            overrides.append(f"evaluate.benchmarks=[{args.benchmarks}]")
        if args.backend:
            overrides.append(f"evaluate.backend={args.backend}")
    params = load_params(args.params, overrides)
    extra = [Path(p) for p in spec.extra_inputs]
    check_stage_inputs(spec.name, args.input, extra)
    check_stage_output(args.output)
    execute(spec.name, spec.load(), params, args.input, args.output, _metrics_path(args, spec), extra)
    return 0


def _ablate(args) -> int:
    from tasks.ablate.runner import run_ablation
    from tasks.ablate.spec import available, load_ablation

    project = args.params.resolve().parent
    if args.list or not args.name:
        for name in available(project):
            print(f"{name}: {load_ablation(name, project).description.splitlines()[0]}")
        return 0
    if args.dry_run:
        from tasks.ablate.cache_plan import format_plan
        from tasks.ablate.runner import plan

        print("\n".join(format_plan(plan(args.name, project, jobs=args.jobs, overrides=list(args.overrides)))))
        return 0
    run_ablation(args.name, project, jobs=args.jobs, overrides=list(args.overrides), allow_dirty=args.allow_dirty,
                 on_line=print)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        if args.command == "run":
            # Prefect's temporary server migrates its database on first use: slow on a busy 2-core machine
            os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
            from flows.lifecycle import lifecycle, summary_lines

            result = lifecycle(params_path=str(args.params), overrides=list(args.overrides), force=args.force,
                               stages=args.stages)
            print("\n".join(summary_lines(result, args.params.resolve().parent)))
            return 0
        if args.command == "ablate":
            return _ablate(args)
        return _run_stage(args)
    except (ConfigError, MissingInputError, InputError, AblationError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # only a full disk (raised here or in a Ray worker) is turned into one line
        if not is_disk_full(err):
            raise
        print(f"error: {disk_full_line(err, getattr(args, 'output', None))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
