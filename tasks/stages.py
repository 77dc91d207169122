"""The lifecycle's stages, in order: name, default input and output, and the function that runs it.

Each stage module exposes `run(params, input, output, tracker) -> metrics`. The same function is
what `dvc.yaml`'s `cmd` runs (through `cookbook <stage>`), what the Prefect flow runs (through
`dvc repro -s <stage>`) and what a user runs on their own data (`cookbook <stage> --input ...`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StageSpec:
    name: str
    module: str
    """Module whose `run` executes the stage."""
    input: str | None
    """Default input path (the previous stage's output)."""
    output: str
    """Default output path."""
    extra_inputs: tuple[str, ...] = ()
    """Further inputs the stage reads (for lineage tags)."""

    @property
    def metrics(self) -> Path:
        return Path("metrics") / f"{self.name}.json"

    def load(self):
        return importlib.import_module(self.module).run


STAGES: dict[str, StageSpec] = {
    s.name: s
    for s in [
        StageSpec("ingest", "tasks.ingest.stage", None, "data/ingest"),
        StageSpec("recall", "tasks.recall.stage", "data/ingest", "data/recall"),
        StageSpec("clean", "tasks.clean.stage", "data/recall", "data/clean"),
        StageSpec("dedup", "tasks.dedup.stage", "data/clean", "data/dedup"),
        StageSpec("sample", "tasks.sample.stage", "data/dedup", "data/sample"),
        StageSpec("curate", "tasks.curate.stage", "data/sample", "data/curate"),
        # no single input: every part in decontaminate.parts (pretraining mix, annealing sources, SFT sets)
        StageSpec("decontaminate", "tasks.decontaminate.stage", None, "data/decontaminate", ("data/sample", "data/curate")),
        StageSpec("tokenize", "tasks.tokenize.stage", "data/decontaminate", "data/tokenize"),
        StageSpec("pretrain", "tasks.train.pretrain", "data/tokenize", "models/pretrain"),
        StageSpec("anneal", "tasks.train.anneal", "models/pretrain", "models/anneal", ("data/tokenize",)),
        StageSpec("sft", "tasks.train.sft", "models/anneal", "models/sft", ("data/decontaminate",)),
        StageSpec("evaluate", "tasks.evaluate.stage", "models/sft", "data/evaluate"),
        StageSpec("report", "tasks.report.stage", "metrics", "reports/report.md"),
    ]
}

ORDER = list(STAGES)
