"""Named ablations as data: `ablations/<name>.yaml` holds a base and variants, each a set of params overrides.

    description: File-level vs repository-level vs chunk-level deduplication (paper §6.1, Appendix B).
    base: {}                       # overrides every variant shares (on top of params.yaml)
    variants:
      file:  {dedup.level: file}
      repo:  {dedup.level: repo}
      chunk: {dedup.level: chunk}
    stages: []                     # optional: run the pipeline only up to these stages (default: all)

An override key is a dotted params path (`section.key`), exactly as `cookbook --set` and `dvc exp run -S`
take it. `load_ablation` validates every variant against the params loader before anything runs, so a
typo fails at once with the key's name rather than after an hour of experiments.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tasks.common.config import ConfigError

ABLATIONS_DIR = "ablations"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")
_VARIANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Ablation:
    name: str
    description: str
    variants: dict[str, dict[str, Any]]
    """Variant name -> its overrides (base already merged in), in file order."""
    base: dict[str, Any] = field(default_factory=dict)
    stages: tuple[str, ...] = ()
    """DVC targets of every experiment (the pipeline up to these stages); empty = the whole pipeline."""

    def experiment_name(self, variant: str) -> str:
        """The DVC experiment (and MLflow child run) name of a variant: `<ablation>-<variant>`."""
        return f"{self.name}-{variant}"


def available(project_dir: str | Path = ".") -> list[str]:
    folder = Path(project_dir) / ABLATIONS_DIR
    return sorted(p.stem for p in folder.glob("*.yaml"))


def _check_overrides(where: str, overrides: Any) -> dict[str, Any]:
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}: expected a mapping of section.key: value, got {overrides!r}")
    for key in overrides:
        if not isinstance(key, str) or "." not in key:
            raise ConfigError(f"{where}: override key {key!r} must be a dotted params path such as dedup.level")
    return dict(overrides)


def parse_ablation(name: str, raw: Any, source: str = "") -> Ablation:
    """An `Ablation` from the parsed YAML of `ablations/<name>.yaml` (structure only, not the params keys)."""
    where = source or f"{ABLATIONS_DIR}/{name}.yaml"
    if not _NAME.match(name):
        raise ConfigError(f"{where}: ablation names use letters, digits and _ (got {name!r})")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with description, base and variants")
    unknown = sorted(set(raw) - {"description", "base", "variants", "stages"})
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (valid keys: base, description, stages, variants)")
    stages = raw.get("stages") or []
    from tasks.stages import ORDER

    if not isinstance(stages, list) or any(s not in ORDER for s in stages):
        raise ConfigError(f"{where}: stages must be a list of pipeline stages ({', '.join(ORDER)}), got {stages!r}")
    base = _check_overrides(f"{where}: base", raw.get("base"))
    variants_raw = raw.get("variants")
    if not isinstance(variants_raw, dict) or len(variants_raw) < 2:
        raise ConfigError(f"{where}: variants must map at least two variant names to their overrides")
    variants = {}
    for variant, overrides in variants_raw.items():
        if not isinstance(variant, str) or not _VARIANT.match(variant):
            raise ConfigError(f"{where}: variant name {variant!r} must use letters, digits, _ and -")
        variants[variant] = {**base, **_check_overrides(f"{where}: variants.{variant}", overrides)}
    return Ablation(name=name, description=str(raw.get("description") or ""), variants=variants, base=base,
                    stages=tuple(stages))


def load_ablation(name: str, project_dir: str | Path = ".", extra: list[str] | tuple[str, ...] = ()) -> Ablation:
    """Read `ablations/<name>.yaml`, add `extra` (`section.key=value`) to every variant, and validate each
    variant's params against `params.yaml` with the strict loader."""
    from tasks.common.config import parse_override
    from tasks.config import load_params

    path = Path(project_dir) / ABLATIONS_DIR / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(available(project_dir)) or "none"
        raise ConfigError(f"{path}: no such ablation (available: {known})")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    ablation = parse_ablation(name, raw, str(path))
    added = {".".join(key): value for key, value in map(parse_override, extra)}
    variants = {v: {**o, **added} for v, o in ablation.variants.items()}
    ablation = Ablation(ablation.name, ablation.description, variants, {**ablation.base, **added}, ablation.stages)
    for variant, overrides in ablation.variants.items():
        try:
            load_params(Path(project_dir) / "params.yaml", as_override_strings(overrides))
        except ConfigError as err:
            raise ConfigError(f"{path}: variant '{variant}': {err}") from None
    return ablation


def as_override_strings(overrides: dict[str, Any]) -> list[str]:
    """`{"dedup.level": "repo"}` -> `["dedup.level=repo"]` for the params loader (values as YAML flow)."""
    return [f"{key}={yaml_flow(value)}" for key, value in overrides.items()]


def yaml_flow(value: Any) -> str:
    """A value as one line of YAML (JSON is valid YAML flow style)."""
    if isinstance(value, str):
        return value if yaml.safe_load(value) == value and value.strip() == value else json.dumps(value)
    return json.dumps(value)


def hydra_value(value: Any) -> str:
    """A value in the Hydra override grammar that `dvc exp run -S key=value` parses.

    Strings are quoted (so `two-stage` or `1.0` stay strings), lists and mappings are written out; mapping
    keys must be plain identifiers (Hydra cannot quote keys such as `data/tokenize`).
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        for key in value:
            if not (isinstance(key, str) and re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", key)):
                raise ConfigError(f"override mapping key {key!r}: DVC's -S (Hydra) only takes plain identifiers as keys;"
                                  " set the key's own values instead (section.key.subkey=value)")
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"override value {value!r}: unsupported type {type(value).__name__}")


def dvc_set_args(overrides: dict[str, Any]) -> list[str]:
    """`-S key=value` arguments of `dvc exp run` for one variant."""
    args: list[str] = []
    for key, value in overrides.items():
        args += ["-S", f"{key}={hydra_value(value)}"]
    return args
