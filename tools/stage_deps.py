"""What code and data files each pipeline stage depends on, read from the source (no import is executed).

`dvc repro` re-runs a stage only when one of its `deps` changed, so `dvc.yaml` must list every module the
stage's code imports and every data file it opens next to its code. `stage_files(module)` walks, from a
stage's entry module (`tasks/stages.py`), with `ast`:

- `import tasks.x.y`, `from tasks.x import y` (a submodule or a name), at any depth (lazy imports in
  functions included), and relative imports;
- `importlib.import_module("tasks.x")`, and `import_module(f"{__name__}.{...}")` (every module of the
  package: a registry that imports its members by name);
- paths built from `__file__` (`Path(__file__).parent / "data"`, `.parents[1] / "evaluate" / ...`,
  `.with_name("prompts")`): the folder or file named, and the imports of a `.py` file run as a script;
- package `__init__.py` files that hold code (importing a submodule runs them).

`missing_deps(dvc_yaml)` compares that with each stage's `deps` (a dep covers itself and everything under
it). `python tools/stage_deps.py` prints the uncovered paths per stage. The `cookbook` entry point itself
(`tasks/cli.py`, `tasks/config.py`, which loads every section's config class) is left out on purpose: it
is the same for every stage, and a stage's own config class is reached through its imports.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = "tasks"


def module_file(module: str, root: Path = PROJECT) -> Path | None:
    """`tasks.a.b` -> tasks/a/b.py or tasks/a/b/__init__.py (None when it is not a module of the project)."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path, root: Path = PROJECT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def has_code(init: Path) -> bool:
    """Whether a package `__init__.py` holds more than a docstring."""
    body = ast.parse(init.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def path_value(node: ast.AST, file: Path) -> Path | None:
    """The path an expression built from `__file__` evaluates to, or None when it is not such an expression."""
    if isinstance(node, ast.Name) and node.id == "__file__":
        return file
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Path" and len(node.args) == 1:
        return path_value(node.args[0], file)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        inner = path_value(node.func.value, file)
        if inner is None:
            return None
        if node.func.attr in ("resolve", "absolute"):
            return inner
        if node.func.attr == "with_name" and node.args and isinstance(node.args[0], ast.Constant):
            return inner.with_name(node.args[0].value)
        return None
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        inner = path_value(node.value, file)
        return inner.parent if inner is not None else None
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents":
        inner = path_value(node.value.value, file)
        if inner is not None and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int):
            return inner.parents[node.slice.value]
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant):
        inner = path_value(node.left, file)
        return inner / str(node.right.value) if inner is not None else None
    return None


def outermost_paths(tree: ast.AST, file: Path) -> list[Path]:
    """Paths of the largest `__file__` expressions of a module (`Path(__file__).parent / "data"`, not its parts)."""
    found: list[Path] = []

    def visit(node: ast.AST) -> None:
        value = path_value(node, file)
        if value is not None and not (isinstance(node, ast.Name)):
            found.append(value)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Dotted names a module imports (candidates: `from a import b` yields both `a` and `a.b`)."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module":
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
            elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.FormattedValue) \
                    and getattr(arg.values[0].value, "id", None) == "__name__":
                names.add(f"{module}.*")  # every module of this package
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def package_modules(package: str, root: Path = PROJECT) -> set[str]:
    folder = root.joinpath(*package.split("."))
    return {module_name(p, root) for p in folder.glob("*.py")}


def stage_files(entry: str, root: Path = PROJECT) -> set[Path]:
    """Every project file (relative to `root`) the module `entry` depends on: modules, data files and folders."""
    todo, seen_modules, files = [entry], set(), set()
    while todo:
        module = todo.pop()
        if module in seen_modules:
            continue
        seen_modules.add(module)
        if module.endswith(".*"):
            todo += sorted(package_modules(module[:-2], root))
            continue
        path = module_file(module, root)
        if path is None:
            continue
        if path.name != "__init__.py" or has_code(path):  # a docstring-only __init__ changes nothing a stage does
            files.add(path)
        parts = module.split(".")
        for i in range(1, len(parts)):  # the packages above it: their __init__ runs on import
            init = module_file(".".join(parts[:i]), root)
            if init is not None and init.name == "__init__.py" and has_code(init):
                todo.append(".".join(parts[:i]))
        tree = ast.parse(path.read_text(), filename=str(path))
        todo += sorted(imported_modules(tree, module, path.name == "__init__.py"))
        for target in outermost_paths(tree, path):
            target = target.resolve()
            if not target.exists() or root.resolve() not in target.parents:
                continue
            files.add(target)
            if target.suffix == ".py":  # a script run by path (the sandbox child): its imports count too
                todo.append(module_name(target, root.resolve()))
    return {f.resolve().relative_to(root.resolve()) for f in files}


def covered(path: Path, deps: Iterable[str]) -> bool:
    """Whether a dvc.yaml dep (a file, or a folder holding it) covers `path`."""
    return any(path == Path(d) or Path(d) in path.parents for d in deps)


def stage_deps(dvc_yaml: Path) -> dict[str, list[str]]:
    """dvc.yaml's deps per stage (paths only)."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    return {name: [str(d if isinstance(d, str) else next(iter(d))) for d in spec.get("deps", [])] for name, spec in stages.items()}


def missing_deps(dvc_yaml: Path = PROJECT / "dvc.yaml", root: Path = PROJECT) -> dict[str, list[str]]:
    """{stage: [project files its code depends on that no dvc.yaml dep covers]} for every pipeline stage."""
    sys.path.insert(0, str(root))
    from tasks.stages import STAGES

    deps = stage_deps(dvc_yaml)
    out = {}
    for name, spec in STAGES.items():
        needed = stage_files(spec.module, root)
        out[name] = sorted(str(p) for p in needed if not covered(p, deps.get(name, [])))
    return out


if __name__ == "__main__":
    gaps = missing_deps()
    for stage, paths in gaps.items():
        print(f"{stage}: {', '.join(paths) if paths else 'complete'}")
    sys.exit(1 if any(gaps.values()) else 0)
