"""Which stages of each variant DVC will restore from its cache, and the dvc.lock the variants are queued with.

Why queued experiments used to recompute every stage: a queued experiment runs in a temporary copy under
`.dvc/tmp/exps/` that shares this project's cache and run-cache (`.dvc/cache`, `.dvc/cache/runs`: DVC writes
`cache.dir` into the copy's `config.local`). Before running a stage, DVC's `StageCache.restore` looks at the
stage's entry in the copy's `dvc.lock`, which is HEAD's: when the stage's code, params and inputs match that
entry, DVC takes the entry itself as "the cache" and, if the entry's outputs are not in the local cache,
runs the stage without ever looking at the run-cache. The committed `dvc.lock` records outputs computed on
another machine (and metrics files hold timings, so no re-run reproduces them), so on a fresh machine every
stage of every variant missed, and the recomputed outputs differed from the first variant's, which made every
downstream stage miss as well. A stage with no `dvc.lock` entry goes through the run-cache instead.

So the variants are queued with `dvc.lock` pruned of the entries whose outputs this machine's cache lacks
(`stale_lock_stages`, `pruned_lock`): DVC then restores those stages from its run-cache, which holds every
stage run on this machine (workspace runs, earlier experiments, earlier variants, the shared prefix).

`plan_ablation` predicts, per variant, which stages run and which are restored, by computing each stage's
run-cache key the way DVC does (`dvc.stage.cache`, pinned DVC version) from the code in the workspace, the
variant's params (applied with DVC's own Hydra override code) and the predicted outputs of upstream stages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import yaml

from tasks.common.config import get_dotted

RUN = "run"
RESTORE = "restore"
PREFIX_VARIANT = "shared"
"""Experiment `<ablation>-shared`: the stages every variant shares, computed once before parallel variants."""


@dataclass(frozen=True)
class StageNode:
    name: str
    params: tuple[str, ...]
    """Keys of params.yaml the stage depends on (`sft`, `evaluate.benchmarks`)."""
    upstream: tuple[str, ...]
    """Stages whose outputs this stage reads."""


@dataclass
class VariantPlan:
    variant: str
    stages: dict[str, str] = field(default_factory=dict)
    """{stage: "run" | "restore"} in pipeline order."""

    @property
    def ran(self) -> list[str]:
        return [s for s, what in self.stages.items() if what == RUN]

    @property
    def restored(self) -> list[str]:
        return [s for s, what in self.stages.items() if what == RESTORE]


@dataclass
class AblationPlan:
    variants: dict[str, VariantPlan]
    prefix: list[str]
    """Stages no variant's overrides reach (shared by every variant), in pipeline order."""
    stale_lock: list[str]
    """dvc.lock entries whose outputs this machine's cache lacks (pruned from the queued experiments)."""
    prefix_targets: list[str] = field(default_factory=list)
    """The DVC targets that run the shared prefix (its stages no other prefix stage reads from)."""
    prefix_run: VariantPlan | None = None
    """With --jobs > 1: the experiment that computes the shared prefix before the variants start."""

    @property
    def prefix_to_compute(self) -> bool:
        return self.prefix_run is not None and bool(self.prefix_run.ran)


def _covers(path: str, other: str) -> bool:
    return path == other or path.startswith(other.rstrip("/") + "/")


def _same_branch(key: str, param: str) -> bool:
    """Whether params key `key` and a stage's params entry `param` overlap (`sft.variant` / `sft`)."""
    k, p = key.split("."), param.split(".")
    return k[:len(p)] == p or p[:len(k)] == k


def pipeline(repo) -> dict[str, StageNode]:
    """{stage name: StageNode} of the repository's dvc.yaml, in topological order."""
    from dvc.dependency.param import ParamsDependency

    stages = [s for s in repo.index.stages if getattr(s, "name", None)]
    producers = {out.def_path: s.name for s in stages for out in s.outs}
    nodes = {}
    for stage in stages:
        params = tuple(p for d in stage.deps if isinstance(d, ParamsDependency) for p in d.params)
        paths = [d.def_path for d in stage.deps if not isinstance(d, ParamsDependency)]
        upstream = {name for path in paths for out, name in producers.items()
                    if name != stage.name and (_covers(path, out) or _covers(out, path))}
        nodes[stage.name] = StageNode(stage.name, params, tuple(sorted(upstream)))
    order = TopologicalSorter({n: set(node.upstream) for n, node in nodes.items()}).static_order()
    return {name: nodes[name] for name in order}


def with_upstream(nodes: dict[str, StageNode], targets: list[str] | tuple[str, ...]) -> list[str]:
    """The targets and every stage they read from, in pipeline order (all stages when `targets` is empty)."""
    if not targets:
        return list(nodes)
    wanted: set[str] = set()
    todo = list(targets)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo += nodes[name].upstream
    return [n for n in nodes if n in wanted]


def reached(nodes: dict[str, StageNode], keys: list[str] | set[str]) -> list[str]:
    """Stages whose params include one of the override `keys` (`sft.variant` reaches a stage on `sft`), and
    every stage downstream of them, in pipeline order."""
    hit = {n for n, node in nodes.items() if any(_same_branch(k, p) for k in keys for p in node.params)}
    for name, node in nodes.items():  # topological order: upstream stages are decided first
        if any(u in hit for u in node.upstream):
            hit.add(name)
    return [n for n in nodes if n in hit]


def varied_keys(variants: dict[str, dict[str, Any]]) -> set[str]:
    """Override keys whose value is not the same in every variant."""
    keys = {k for o in variants.values() for k in o}
    return {k for k in keys if len({yaml.safe_dump(o.get(k)) for o in variants.values()}) > 1}


def shared_prefix(nodes: dict[str, StageNode], variants: dict[str, dict[str, Any]],
                  targets: tuple[str, ...] = ()) -> list[str]:
    """Stages every variant computes identically: the run's stages that no varied override reaches."""
    reach = set(reached(nodes, varied_keys(variants)))
    return [s for s in with_upstream(nodes, targets) if s not in reach]


def sinks(nodes: dict[str, StageNode], stages: list[str]) -> list[str]:
    """The stages of `stages` that no other stage of `stages` reads from (DVC targets that run them all)."""
    inner = {u for s in stages for u in nodes[s].upstream}
    return [s for s in stages if s not in inner]


# --- dvc.lock entries and the cache -------------------------------------------------------------------------

def read_lock(project: str | Path) -> dict[str, dict]:
    path = Path(project) / "dvc.lock"
    if not path.exists():
        return {}
    return (yaml.safe_load(path.read_text()) or {}).get("stages") or {}


def _outs_cached(repo, entry: dict) -> bool:
    """Whether every output of a dvc.lock / run-cache entry is in the local cache (DVC's own check)."""
    try:
        return repo.stage_cache._create_stage(entry).outs_cached()
    except Exception:  # noqa: BLE001 - a malformed entry is as good as missing
        return False


def stale_lock_stages(repo, lock: dict[str, dict]) -> list[str]:
    """Stages whose dvc.lock entry names outputs the local cache does not have."""
    return [name for name, entry in lock.items() if not _outs_cached(repo, entry)]


def pruned_lock(text: str, stale: list[str]) -> str:
    data = yaml.safe_load(text) or {}
    data["stages"] = {n: e for n, e in (data.get("stages") or {}).items() if n not in stale}
    return yaml.safe_dump(data, sort_keys=False)


@contextlib.contextmanager
def queued_lock(project: str | Path, stale: list[str]) -> Iterator[None]:
    """While experiments are queued (DVC stashes the workspace's tracked changes into each), `dvc.lock`
    lacks the `stale` entries; the file's exact bytes are put back afterwards."""
    path = Path(project) / "dvc.lock"
    if not stale or not path.exists():
        yield
        return
    original = path.read_bytes()
    try:
        path.write_text(pruned_lock(original.decode(), stale))
        yield
    finally:
        path.write_bytes(original)


# --- predicting the run-cache -------------------------------------------------------------------------------

def variant_params(project: str | Path, overrides: dict[str, Any]) -> dict:
    """params.yaml with the variant's overrides applied by DVC's own `-S` code, parsed by DVC's loader."""
    from dvc.utils.hydra import apply_overrides
    from dvc.utils.serialize import load_path
    from dvc.fs import LocalFileSystem

    from tasks.ablate.spec import dvc_set_args

    with tempfile.TemporaryDirectory(prefix="ablate-params-") as tmp:
        path = os.path.join(tmp, "params.yaml")
        shutil.copyfile(Path(project) / "params.yaml", path)
        strings = dvc_set_args(overrides)[1::2]
        if strings:
            apply_overrides(path, strings)
        return load_path(path, LocalFileSystem())


def _param_values(params: dict, keys: list[str]) -> dict:
    values = {key: get_dotted(params, key, _MISSING) for key in keys}
    return {key: value for key, value in values.items() if value is not _MISSING}


_MISSING = object()


class CachePredictor:
    """Computes stage run-cache keys as DVC does and looks them up in the local run-cache."""

    def __init__(self, repo, lock: dict[str, dict], kept_lock: set[str]):
        self.repo = repo
        self.stages = {s.name: s for s in repo.index.stages if getattr(s, "name", None)}
        self.lock = lock
        self.kept_lock = kept_lock
        self.planned: set[str] = set()
        self._hashed: set[tuple[str, str]] = set()

    def key(self, name: str, params: dict, outputs: dict[str, str]) -> str:
        """Run-cache key of stage `name` under `params`, its data inputs taken from `outputs` ({path: md5})."""
        from dvc.dependency.param import ParamsDependency
        from dvc.stage.cache import _get_cache_hash
        from dvc.stage.serialize import to_single_stage_lockfile
        from dvc_data.hashfile.hash_info import HashInfo
        from dvc_data.hashfile.meta import Meta

        stage = self.stages[name]
        for dep in stage.deps:
            if isinstance(dep, ParamsDependency):
                dep.fill_values(_param_values(params, dep.params))
                continue
            produced = next((p for p in outputs if _covers(dep.def_path, p)), None)
            if produced is not None:
                md5 = outputs[produced] if produced == dep.def_path else f"{outputs[produced]}/{dep.def_path}"
                dep.hash_info = HashInfo("md5", md5)
                dep.meta = Meta(isdir=md5.endswith(".dir"))
            elif (name, dep.def_path) not in self._hashed:
                dep.save()  # code and files in the workspace (the committed tree)
                self._hashed.add((name, dep.def_path))
        return _get_cache_hash(to_single_stage_lockfile(stage), key=True)

    def lookup(self, name: str, key: str) -> dict | None:
        """The cache entry DVC would restore stage `name` from (its dvc.lock entry or its newest run-cache
        entry), if every output of it is in the local cache."""
        entry = self.lock.get(name)
        if name in self.kept_lock and entry and _get_lock_key(entry) == key:
            return entry
        folder = self.repo.stage_cache._get_cache_dir(key)
        if not os.path.isdir(folder):
            return None
        names = sorted(os.listdir(folder), key=lambda f: os.path.getmtime(os.path.join(folder, f)), reverse=True)
        entry = self.repo.stage_cache._load_cache(key, names[0]) if names else None
        return entry if entry and _outs_cached(self.repo, entry) else None

    def plan(self, stages: list[str], params: dict) -> tuple[dict[str, str], set[str]]:
        """{stage: run | restore} of one experiment, and the keys it will compute. Keys computed by an earlier
        experiment of the same ablation (`self.planned`) count as restored."""
        outputs: dict[str, str] = {}
        plan, computed = {}, set()
        for name in stages:
            key = self.key(name, params, outputs)
            entry = self.lookup(name, key)
            if entry is not None:
                plan[name] = RESTORE
                outputs.update({o["path"]: o.get("md5") or o.get("hash") for o in entry.get("outs") or []})
            else:
                plan[name] = RESTORE if key in self.planned else RUN
                if key not in self.planned:
                    computed.add(key)
                outputs.update({out.def_path: f"pending-{key}-{out.def_path}" for out in self.stages[name].outs})
        return plan, computed


def _get_lock_key(entry: dict) -> str:
    from copy import deepcopy

    from dvc.stage.cache import _get_cache_hash

    return _get_cache_hash(deepcopy(dict(entry)), key=True)


def plan_ablation(project: str | Path, variants: dict[str, dict[str, Any]], targets: tuple[str, ...] = (),
                  jobs: int = 1) -> AblationPlan:
    """Per variant, the stages that will run and those restored from cache, in the order `cookbook ablate`
    runs them: the shared prefix first when `jobs` > 1, then the variants in file order."""
    from dvc.repo import Repo

    repo = Repo(str(project))
    try:
        nodes = pipeline(repo)
        lock = read_lock(project)
        stale = stale_lock_stages(repo, lock)
        predictor = CachePredictor(repo, lock, set(lock) - set(stale))
        stages = with_upstream(nodes, targets)
        prefix = shared_prefix(nodes, variants, targets)
        prefix_run = None
        if jobs > 1 and prefix:
            first = next(iter(variants.values()))
            prefix_plan, computed = predictor.plan(prefix, variant_params(project, first))
            predictor.planned |= computed
            prefix_run = VariantPlan(PREFIX_VARIANT, prefix_plan)
        plans = {}
        for variant, overrides in variants.items():
            stage_plan, computed = predictor.plan(stages, variant_params(project, overrides))
            if jobs == 1:  # parallel variants cannot restore what a sibling is still computing
                predictor.planned |= computed
            plans[variant] = VariantPlan(variant, stage_plan)
        return AblationPlan(plans, prefix, stale, sinks(nodes, prefix), prefix_run)
    finally:
        repo.close()


def format_plan(plan: AblationPlan) -> list[str]:
    lines = []
    if plan.stale_lock:
        lines.append(f"dvc.lock entries not in this machine's cache (queued without them, so DVC uses its run-cache): "
                     f"{', '.join(plan.stale_lock)}")
    if plan.prefix:
        lines.append(f"shared by every variant: {', '.join(plan.prefix)}")
    if plan.prefix_to_compute:
        lines.append(f"first, once (experiment <ablation>-{PREFIX_VARIANT}): run {', '.join(plan.prefix_run.ran)}; "
                     f"restore {', '.join(plan.prefix_run.restored) or '-'}")
    for variant in plan.variants.values():
        lines.append(f"{variant.variant}: run {', '.join(variant.ran) or '-'}; "
                     f"restore {', '.join(variant.restored) or '-'}")
    return lines
