"""infra/, prefect.yaml and the README's commands name only images, commands, options and keys that exist.

Every YAML file parses; the Ray cluster launcher config validates against Ray's own schema; the KubeRay
manifests use only RayCluster/RayJob v1 fields (ray-project/kuberay `apis/ray/v1`) and the project image built
by infra/docker/Dockerfile on the pinned Ray image; the MLflow image is the pinned MLflow; every `cookbook`,
`dvc`, `ray`, `mlflow` and `prefect` command line in infra/ and the README parses with that tool's own CLI
parser (or, for prefect, appears in its --help); DVC remote keys exist in DVC's config schema; params keys
named in the notes exist in params.yaml; prefect.yaml's deployments point at real flows with valid parameters.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import json
import re
import shlex
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
BIN = Path(sys.executable).parent
TOOLS = ("cookbook", "dvc", "ray", "mlflow", "prefect")


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_every_yaml_parses():
    files = sorted(INFRA.rglob("*.yaml")) + [ROOT / "prefect.yaml"]
    assert len(files) >= 5
    for f in files:
        assert _docs(f), f


# --- images ------------------------------------------------------------------------------------------------

def project_image() -> str:
    """The tag infra/docker/Dockerfile's build line gives the project image."""
    text = (INFRA / "docker" / "Dockerfile").read_text()
    return re.search(r"docker build -f infra/docker/Dockerfile -t (\S+) \.", text).group(1)


def test_dockerfile_builds_on_the_pinned_ray_image_with_the_makefile_pins():
    text = (INFRA / "docker" / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    assert base == f"rayproject/ray:{md.version('ray')}-py311-gpu"
    assert project_image() == f"opencoder-cookbook:{md.version('opencoder-cookbook')}"
    makefile = (ROOT / "Makefile").read_text()
    for pin in re.findall(r"(torch==\S+|deepspeed==\S+)", text):
        assert pin in makefile, pin
    assert "requirements.lock" in text and (ROOT / "requirements.lock").exists()


def test_mlflow_image_matches_installed_mlflow():
    compose = _docs(INFRA / "mlflow" / "docker-compose.yaml")[0]
    assert compose["services"]["mlflow"]["image"] == f"ghcr.io/mlflow/mlflow:v{md.version('mlflow')}"
    assert "postgresql://" in compose["services"]["mlflow"]["command"]
    assert "s3://" in compose["services"]["mlflow"]["command"]


# --- Ray cluster launcher ------------------------------------------------------------------------------------

def test_ray_cluster_config_validates_against_rays_schema():
    import jsonschema
    import ray

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    cfg = _docs(INFRA / "ray" / "cluster.yaml")[0]
    jsonschema.validate(cfg, schema)
    assert cfg["head_node_type"] in cfg["available_node_types"]
    assert any("make install" in c for c in cfg["setup_commands"])


# --- KubeRay ---------------------------------------------------------------------------------------------------
# Field names of ray.io/v1 (ray-project/kuberay ray-operator/apis/ray/v1/raycluster_types.go, rayjob_types.go)
# and of the core/v1 objects the manifests use.
RAYCLUSTER_SPEC = {"suspend", "managedBy", "autoscalerOptions", "headServiceAnnotations", "enableInTreeAutoscaling",
                   "gcsFaultToleranceOptions", "headGroupSpec", "rayVersion", "workerGroupSpecs"}
HEAD_GROUP = {"template", "headService", "enableIngress", "rayStartParams", "serviceType"}
WORKER_GROUP = {"suspend", "groupName", "replicas", "minReplicas", "maxReplicas", "idleTimeoutSeconds",
                "rayStartParams", "template", "scaleStrategy", "numOfHosts"}
RAYJOB_SPEC = {"activeDeadlineSeconds", "backoffLimit", "rayClusterSpec", "submitterPodTemplate", "metadata",
               "clusterSelector", "submitterConfig", "managedBy", "deletionPolicy", "entrypoint", "runtimeEnvYAML",
               "jobId", "submissionMode", "entrypointResources", "entrypointNumCpus", "entrypointNumGpus",
               "ttlSecondsAfterFinished", "shutdownAfterJobFinishes", "suspend"}
POD_SPEC = {"containers", "initContainers", "volumes", "nodeSelector", "tolerations", "affinity", "serviceAccountName",
            "restartPolicy", "imagePullSecrets", "securityContext", "priorityClassName", "schedulerName"}
CONTAINER = {"name", "image", "imagePullPolicy", "command", "args", "env", "envFrom", "ports", "resources",
             "volumeMounts", "lifecycle", "workingDir", "securityContext", "readinessProbe", "livenessProbe"}
TOLERATION = {"key", "operator", "value", "effect", "tolerationSeconds"}


def _check_keys(obj: dict, allowed: set[str], where: str) -> None:
    unknown = set(obj) - allowed
    assert not unknown, f"{where}: unknown fields {sorted(unknown)}"


def _check_pod_template(template: dict, where: str) -> list[str]:
    _check_keys(template, {"metadata", "spec"}, where)
    spec = template["spec"]
    _check_keys(spec, POD_SPEC, f"{where}.spec")
    for t in spec.get("tolerations", []):
        _check_keys(t, TOLERATION, f"{where}.spec.tolerations")
    images = []
    for c in spec["containers"]:
        _check_keys(c, CONTAINER, f"{where}.containers[{c.get('name')}]")
        _check_keys(c.get("resources", {}), {"limits", "requests"}, f"{where}.resources")
        images.append(c["image"])
    return images


def _ray_start_options() -> set[str]:
    import ray.scripts.scripts as scripts

    return {o.lstrip("-") for p in scripts.start.params for o in p.opts}


def _check_cluster_spec(spec: dict, where: str) -> list[str]:
    _check_keys(spec, RAYCLUSTER_SPEC, where)
    assert spec["rayVersion"] == md.version("ray"), where
    options = _ray_start_options()
    head = spec["headGroupSpec"]
    _check_keys(head, HEAD_GROUP, f"{where}.headGroupSpec")
    assert set(head["rayStartParams"]) <= options, head["rayStartParams"]
    images = _check_pod_template(head["template"], f"{where}.headGroupSpec.template")
    for group in spec["workerGroupSpecs"]:
        _check_keys(group, WORKER_GROUP, f"{where}.workerGroupSpecs")
        assert set(group["rayStartParams"]) <= options
        assert group.get("minReplicas", 0) <= group.get("replicas", 0) <= group.get("maxReplicas", 2**31)
        images += _check_pod_template(group["template"], f"{where}.workerGroupSpecs[{group['groupName']}].template")
    return images


def test_kuberay_manifests_use_only_v1_fields_and_the_project_image():
    kinds = {}
    for f in sorted((INFRA / "kuberay").glob("*.yaml")):
        for doc in _docs(f):
            assert doc["apiVersion"] == "ray.io/v1", f
            kinds[doc["kind"]] = doc
            if doc["kind"] == "RayCluster":
                images = _check_cluster_spec(doc["spec"], f.name)
            elif doc["kind"] == "RayJob":
                _check_keys(doc["spec"], RAYJOB_SPEC, f.name)
                yaml.safe_load(doc["spec"]["runtimeEnvYAML"])
                images = _check_cluster_spec(doc["spec"]["rayClusterSpec"], f"{f.name}.rayClusterSpec")
            else:
                pytest.fail(f"{f}: unexpected kind {doc['kind']}")
            assert images and set(images) == {project_image()}, f
    assert set(kinds) == {"RayCluster", "RayJob"}
    assert any(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
               for g in kinds["RayCluster"]["spec"]["workerGroupSpecs"] for c in g["template"]["spec"]["containers"])


# --- command lines ------------------------------------------------------------------------------------------

def _shell_lines(path: Path) -> list[str]:
    """Command lines of a file: fenced or indented code in markdown, every line of a script, command strings
    in YAML (Ray launcher commands, the RayJob entrypoint, docker-compose commands)."""
    text = path.read_text()
    if path.suffix == ".md":
        lines, fenced = [], False
        for line in text.splitlines():
            if line.strip().startswith("```"):
                fenced = not fenced
            elif fenced or line.startswith("    "):
                lines.append(line.strip())
        return lines
    if path.suffix == ".sh":
        return [line.strip() for line in text.splitlines() if not line.strip().startswith("#")]
    out = []

    def walk(node):
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and " " in node.strip() and any(t in node for t in TOOLS):
            out.extend(node.replace('/bin/sh -c "', "").strip().rstrip('"').splitlines())

    for doc in _docs(path):
        walk(doc)
    return out


def tool_invocations(line: str) -> list[tuple[str, list[str]]]:
    """(tool, arguments) for every `cookbook` / `dvc` / `ray` / `mlflow` / `prefect` call in a shell line."""
    line = re.sub(r"\s#\s.*$", "", line)
    found = []
    for segment in re.split(r"&&|\|\||;|\||(?<![<>])&(?!&)", line):
        try:
            tokens = shlex.split(segment.replace("$", "")) if segment.strip() else []
        except ValueError:
            continue
        while tokens and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tokens[0]) or tokens[0] in ("exec", "time")):
            tokens = tokens[1:]
        tokens = [t for t in tokens if not re.match(r"^\d*[<>]", t)]  # redirections
        name = Path(tokens[0]).name if tokens else ""
        if name in TOOLS and (tokens[0] == name or tokens[0].endswith(f"bin/{name}") or tokens[0] == f"BIN/{name}"):
            found.append((name, tokens[1:]))
    return found


def _infra_and_readme_commands() -> list[tuple[str, list[str], str]]:
    files = [*INFRA.rglob("*.md"), *INFRA.rglob("*.sh"), *INFRA.rglob("*.yaml"), ROOT / "README.md"]
    return [(tool, args, f.name) for f in files for line in _shell_lines(f) for tool, args in tool_invocations(line)]


def _parse_cookbook(args: list[str]) -> None:
    from tasks.cli import build_parser

    build_parser().parse_args(args)


def _parse_dvc(args: list[str]) -> None:
    from dvc.cli.parser import get_main_parser

    get_main_parser().parse_args(args)


def _parse_click(group, args: list[str]) -> None:
    """Resolve sub-commands of a click group and parse the options of the last one (raises on unknown)."""
    import click

    command, prog = group, group.name
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        sub = command.get_command(click.Context(command), args[0])
        assert sub is not None, f"{prog}: no sub-command {args[0]!r}"
        prog, command, args = f"{prog} {args[0]}", sub, args[1:]
    with command.make_context(prog, list(args), resilient_parsing=False) as _:
        pass


@lru_cache(maxsize=None)
def _prefect_help(path: tuple[str, ...]) -> str:
    proc = subprocess.run([str(BIN / "prefect"), *path, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"prefect {' '.join(path)}: {proc.stderr[-500:]}"
    return proc.stdout


def _check_prefect(args: list[str]) -> None:
    words = []
    for a in args:
        if a.startswith("-"):
            break
        words.append(a)
    path = tuple(words[:2])
    help_text = _prefect_help(path)
    for option in (a.split("=")[0] for a in args if a.startswith("--")):
        assert option in help_text, f"prefect {' '.join(path)}: no option {option}"


def test_every_command_line_parses_with_its_tools_own_parser():
    import mlflow.cli
    import ray.scripts.scripts as ray_scripts

    commands = _infra_and_readme_commands()
    seen = {tool for tool, _, _ in commands}
    assert {"cookbook", "dvc", "ray", "mlflow", "prefect"} <= seen, seen
    for tool, args, source in commands:
        try:
            if tool == "cookbook":
                _parse_cookbook(args)
            elif tool == "dvc":
                _parse_dvc(args)
            elif tool == "ray":
                _parse_click(ray_scripts.cli, args)
            elif tool == "mlflow":
                _parse_click(mlflow.cli.cli, args)
            else:
                _check_prefect(args)
        except SystemExit as err:
            pytest.fail(f"{source}: `{tool} {' '.join(args)}` does not parse (exit {err.code})")
        except Exception as err:  # click.UsageError and friends
            if type(err).__name__ in ("UsageError", "NoSuchOption", "BadParameter", "MissingParameter", "DvcParserError"):
                pytest.fail(f"{source}: `{tool} {' '.join(args)}`: {err}")
            raise


def test_dvc_remote_keys_exist_in_dvcs_schema():
    from dvc.config_schema import REMOTE_SCHEMAS

    text = (INFRA / "dvc" / "remote.md").read_text()
    urls = dict(re.findall(r"dvc remote add -d (\S+) (\S+)", text))
    assert urls
    for name, key in re.findall(r"dvc remote modify (?:--local )?(\S+) (\S+) ", text):
        scheme = urls[name].split("://")[0] if "://" in urls[name] else ""
        schema = REMOTE_SCHEMAS[scheme]
        assert key in getattr(schema, "schema", schema), f"remote {name} ({scheme}): no key {key}"


def test_params_keys_named_in_the_notes_exist():
    from tasks.common.config import flatten
    from tasks.config import load_params

    known = set(flatten(load_params(ROOT / "params.yaml")))
    sections = {k.split(".")[0] for k in known}
    text = "\n".join(p.read_text() for p in INFRA.rglob("*.md"))
    keys = {k for k in re.findall(r"`([a-z_]+\.[a-z_.]+)(?::[^`]*)?`", text) if k.split(".")[0] in sections}
    assert keys
    assert keys <= known, sorted(keys - known)


# --- Prefect deployments -----------------------------------------------------------------------------------

def test_prefect_yaml_deployments_point_at_flows_with_valid_parameters():
    from prefect import Flow

    config = _docs(ROOT / "prefect.yaml")[0]
    steps = [step for section in ("build", "pull") for step in config.get(section) or []]
    for step in steps:
        (name,) = step
        module, attr = name.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), attr)), name
    names = {d["name"] for d in config["deployments"]}
    assert names == {"lifecycle", "ablation", "evaluate"}
    pool_doc = (INFRA / "prefect" / "work-pool.md").read_text() + (INFRA / "prefect" / "start.sh").read_text()
    for d in config["deployments"]:
        path, attr = d["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, attr)
        assert isinstance(flow, Flow) and flow.name == d["name"]
        flow.validate_parameters(d["parameters"])  # unknown names or wrong types raise
        assert f"--pool {d['work_pool']['name']}" in pool_doc
    from tasks.ablate.spec import available

    ablation = next(d for d in config["deployments"] if d["name"] == "ablation")
    assert ablation["parameters"]["name"] in available(ROOT)
