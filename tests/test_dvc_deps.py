"""dvc.yaml lists every module and data file each stage's code depends on, so `dvc repro` re-runs what changed.

The walk (`tools/stage_deps.py`) reads imports and `__file__`-relative paths with `ast`; the first tests pin
that it finds what a stage really uses (lazy imports, a registry importing its members by name, a sandbox
child run as a script, data folders), the last one checks the real dvc.yaml.
"""

from __future__ import annotations

from pathlib import Path

from tools.stage_deps import PROJECT, covered, missing_deps, stage_deps, stage_files


def test_walk_follows_lazy_imports_registries_scripts_and_data_paths():
    files = {str(p) for p in stage_files("tasks.decontaminate.stage")}
    assert "tasks/evaluate/benchmarks/humaneval.py" in files  # imported by name through the registry
    assert "tasks/evaluate/_sandbox_child.py" in files  # run by path: Path(__file__).with_name(...)
    assert "tasks/evaluate/data" in files  # Path(__file__).resolve().parents[1] / "data"
    assert "tasks/curate/stage.py" not in files and "tasks/train/loop.py" not in files
    train = {str(p) for p in stage_files("tasks.train.pretrain")}
    assert {"tasks/tokenize/tokenizer.py", "tasks/tokenize/packing.py"} <= train  # the dependency the issue found missing


def test_walk_reads_a_small_package(tmp_path):
    pkg = tmp_path / "tasks" / "demo"
    (pkg / "data").mkdir(parents=True)
    (tmp_path / "tasks" / "__init__.py").write_text('"""only a docstring"""\n')
    (pkg / "__init__.py").write_text("VERSION = 1\n")
    (pkg / "stage.py").write_text(
        "from pathlib import Path\nfrom . import helper\nDATA = Path(__file__).parent / 'data'\n"
        "def run():\n    from tasks.demo.lazy import f\n    return f()\n")
    (pkg / "helper.py").write_text("import os\n")
    (pkg / "lazy.py").write_text("def f():\n    return 1\n")
    (pkg / "unused.py").write_text("x = 1\n")
    files = {str(p) for p in stage_files("tasks.demo.stage", tmp_path)}
    assert files == {"tasks/demo/__init__.py", "tasks/demo/stage.py", "tasks/demo/helper.py", "tasks/demo/lazy.py", "tasks/demo/data"}


def test_covered_by_a_file_or_a_parent_folder():
    assert covered(Path("tasks/tokenize/packing.py"), ["tasks/tokenize"])
    assert covered(Path("tasks/tokenize/packing.py"), ["tasks/tokenize/packing.py"])
    assert not covered(Path("tasks/tokenize/packing.py"), ["tasks/tok", "tasks/tokenize/pack"])


def test_dvc_yaml_covers_every_stage_dependency():
    deps = stage_deps(PROJECT / "dvc.yaml")
    missing = {stage: paths for stage, paths in missing_deps().items() if paths}
    assert set(deps) >= {"ingest", "clean", "dedup", "tokenize", "pretrain", "evaluate", "report"}
    assert missing == {}, f"add these to the stages' deps in dvc.yaml: {missing}"
