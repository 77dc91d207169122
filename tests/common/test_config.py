"""The strict params loader: params.yaml loads, and typos or wrong types fail naming the key."""

import subprocess
import sys
from pathlib import Path

import pytest

from tasks.common.config import ConfigError, flatten
from tasks.config import Params, load_params

ROOT = Path(__file__).resolve().parents[2]


def test_params_yaml_loads_into_params():
    params = load_params(ROOT / "params.yaml")
    assert isinstance(params, Params)
    assert params.dedup.num_perm == 2048 and params.dedup.bands * params.dedup.rows == params.dedup.num_perm


def test_unknown_key_names_the_key(tmp_path):
    text = (ROOT / "params.yaml").read_text().replace("  num_perm:", "  num_perms:", 1)
    bad = tmp_path / "params.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=r"unknown key 'dedup\.num_perms'"):
        load_params(bad)


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"dedup\.num_perm: expected an integer"):
        load_params(ROOT / "params.yaml", ["dedup.num_perm=many"])


def test_unknown_section_names_the_section():
    with pytest.raises(ConfigError, match="unknown key 'dedupe'"):
        load_params(ROOT / "params.yaml", ["dedupe.level=repo"])


def test_override_changes_value_and_keeps_types():
    params = load_params(ROOT / "params.yaml", ["dedup.level=repo", "compute.num_workers=3"])
    assert params.dedup.level == "repo" and params.compute.num_workers == 3


def test_literal_choices_are_checked():
    with pytest.raises(ConfigError, match="dedup.level: expected one of"):
        load_params(ROOT / "params.yaml", ["dedup.level=galaxy"])


def test_flatten_gives_dotted_keys():
    flat = flatten(load_params(ROOT / "params.yaml"))
    assert flat["dedup.num_perm"] == 2048
    assert "tracking.experiment" in flat


def test_cli_reports_typo_in_one_line(tmp_path):
    text = (ROOT / "params.yaml").read_text().replace("  num_perm:", "  num_perms:", 1)
    (tmp_path / "params.yaml").write_text(text)
    proc = subprocess.run([sys.executable, "-m", "tasks.cli", "dedup", "--input", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "dedup.num_perms" in lines[0] and "params.yaml" in lines[0]


def test_dotted_paths_are_walked_one_way():
    from tasks.common.config import ConfigError, get_dotted, set_dotted

    tree = {"a": {"b": 1}, "c": 2}
    set_dotted(tree, ["a", "d", "e"], 3)
    assert tree == {"a": {"b": 1, "d": {"e": 3}}, "c": 2}
    assert get_dotted(tree, "a.d.e") == 3 and get_dotted(tree, "a.x", None) is None
    with pytest.raises(KeyError):
        get_dotted(tree, "c.d")
    with pytest.raises(ConfigError, match="'c' is not a section"):
        set_dotted(tree, ["c", "d"], 1, "c.d=1")
