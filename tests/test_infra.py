"""infra/ files parse, and name only versions, commands and paths this project actually has."""

import importlib.metadata as md
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_every_yaml_parses():
    files = sorted(INFRA.rglob("*.yaml"))
    assert len(files) >= 4
    for f in files:
        assert _docs(f), f


def test_ray_images_match_installed_ray():
    ray_version = md.version("ray")
    for f in (INFRA / "kuberay").glob("*.yaml"):
        text = f.read_text()
        images = re.findall(r"image:\s*(\S+)", text)
        assert images and all(i.startswith(f"rayproject/ray:{ray_version}-py311") for i in images), f
        assert f'rayVersion: "{ray_version}"' in text


def test_mlflow_image_matches_installed_mlflow():
    compose = _docs(INFRA / "mlflow" / "docker-compose.yaml")[0]
    assert compose["services"]["mlflow"]["image"].endswith(f"v{md.version('mlflow')}")


def test_commands_named_in_infra_exist():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^install:", makefile, re.M)
    cluster = _docs(INFRA / "ray" / "cluster.yaml")[0]
    assert any("make install" in c for c in cluster["setup_commands"])
    job = _docs(INFRA / "kuberay" / "rayjob.yaml")[0]
    assert job["spec"]["entrypoint"].split()[0] in md.distribution("opencoder-cookbook").entry_points.names
    assert (ROOT / "requirements.lock").exists()
