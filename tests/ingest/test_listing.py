"""Listing sources: folders, git repositories, tables, installed distributions, kind detection."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tasks.common.config import ConfigError, build
from tasks.common.shards import MissingInputError
from tasks.ingest.config import DistributionSpec, IngestConfig
from tasks.ingest.listing import (
    cap, detect_kind, find_git_repos, list_folder, list_git_repo, list_installed, list_path, parse_git_log, table_descriptors,
)

PROJECT = Path(__file__).resolve().parents[2]


def write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def test_list_folder_applies_excludes_and_skips_dot_git(tmp_path):
    root = tmp_path / "proj"
    write(root, {"a.py": b"a", "pkg/b.py": b"b", "pkg/__pycache__/b.cpython.pyc": b"c", ".git/HEAD": b"ref", ".env": b"X=1"})
    items = list_folder(root, ("*.pyc", "*/__pycache__/*"))
    assert sorted(d["path"] for d in items) == [".env", "a.py", "pkg/b.py"]
    assert {d["repo"] for d in items} == {"proj"} and {d["source"] for d in items} == {"local"}


def test_cap_is_sorted_and_deterministic():
    items = [{"location": f"/x/{n}", "repo": r, "path": n} for r, n in [("b", "1"), ("a", "2"), ("a", "1")]]
    assert [(d["repo"], d["path"]) for d in cap(items, 2)] == [("a", "1"), ("a", "2")]
    assert cap(list(reversed(items)), None) == cap(items, None)


def test_parse_git_log_takes_the_newest_date_per_path():
    out = b"\x1e2024-02-01T00:00:00+00:00\x00\na.py\x00\x1e2023-01-01T00:00:00+00:00\x00\na.py\x00d/b c.py\x00"
    assert parse_git_log(out) == {"a.py": "2024-02-01T00:00:00+00:00", "d/b c.py": "2023-01-01T00:00:00+00:00"}


def test_git_repo_lists_tracked_files_with_last_commit_dates(tmp_path, git_repo_factory):
    repo = git_repo_factory(tmp_path / "r", [
        ("2021-03-04T05:06:07+02:00", {"a.py": b"a = 1\n", "sub/b.py": b"b = 1\n"}),
        ("2022-01-01T00:00:00+00:00", {"a.py": b"a = 2\n"}),
    ])
    (repo / "untracked.py").write_text("u = 1\n")
    items = {d["path"]: d for d in list_git_repo(repo, "r", ())}
    assert sorted(items) == ["a.py", "sub/b.py"]
    assert items["a.py"]["commit_date"] == "2022-01-01T00:00:00+00:00"
    assert items["sub/b.py"]["commit_date"] == "2021-03-04T03:06:07+00:00"  # normalized to UTC
    assert items["a.py"]["source"] == "git" and items["a.py"]["location"] == str(repo / "a.py")


def test_find_git_repos_does_not_descend_into_repos(tmp_path, git_repo_factory):
    git_repo_factory(tmp_path / "org" / "one", [("2020-01-01T00:00:00+00:00", {"x.py": b"x\n"})])
    git_repo_factory(tmp_path / "two", [("2020-01-01T00:00:00+00:00", {"y.py": b"y\n"})])
    (tmp_path / "two" / "nested").mkdir()
    (tmp_path / "two" / "nested" / ".git").mkdir()
    assert find_git_repos(tmp_path) == [tmp_path / "org" / "one", tmp_path / "two"]


def test_detect_kind(tmp_path, git_repo_factory):
    write(tmp_path / "plain", {"a.py": b"a", "t.parquet": b""})
    write(tmp_path / "tables", {"x.parquet": b"", "y/z.jsonl": b""})
    git_repo_factory(tmp_path / "repos" / "r", [("2020-01-01T00:00:00+00:00", {"x.py": b"x\n"})])
    assert detect_kind(tmp_path / "plain") == "local"
    assert detect_kind(tmp_path / "tables") == "table"
    assert detect_kind(tmp_path / "tables" / "y" / "z.jsonl") == "table"
    assert detect_kind(tmp_path / "repos") == "git"
    with pytest.raises(MissingInputError):
        detect_kind(tmp_path / "nope")
    with pytest.raises(ConfigError, match="Parquet or JSONL"):
        detect_kind(tmp_path / "plain" / "a.py")


def test_unreadable_parquet_footer_is_one_whole_file_descriptor(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"garbage")
    assert table_descriptors(tmp_path / "bad.parquet") == [{"location": str(tmp_path / "bad.parquet"), "format": "parquet", "row_group": -1}]


def test_max_files_caps_table_files(tmp_path):
    write(tmp_path, {f"{i}.jsonl": b"{}\n" for i in range(3)})
    kind, items, num_files = list_path(tmp_path, (), 2)
    assert (kind, num_files, [Path(d["location"]).name for d in items]) == ("table", 2, ["0.jsonl", "1.jsonl"])


def test_missing_distribution_is_a_config_error():
    with pytest.raises(ConfigError, match="not-a-real-dist-xyz"):
        list_installed([DistributionSpec(name="not-a-real-dist-xyz")], ())


def test_embedded_default_lists_at_least_5000_files():
    cfg = build(IngestConfig, yaml.safe_load((PROJECT / "params.yaml").read_text())["ingest"], "ingest")
    items = list_installed(cfg.distributions, cfg.exclude)
    assert len(items) >= 5000
    assert {d["repo"] for d in items} == {d.name for d in cfg.distributions}
    assert not any(d["path"].endswith(".pyc") or ".dist-info/" in d["path"] for d in items)
    assert all(d["source"] == "installed" and d["commit_date"] == "" for d in items)


def test_broken_git_repo_becomes_one_unreadable_descriptor(tmp_path):
    repo = tmp_path / "broken"
    repo.mkdir()
    (repo / ".git").write_text("gitdir: /nowhere/at/all\n")
    assert find_git_repos(tmp_path) == [repo]
    (item,) = list_git_repo(repo, "broken", ())
    assert (item["location"], item["path"], item["source"]) == (str(repo), "", "git")


def test_a_distribution_listed_twice_is_a_config_error():
    spec = DistributionSpec(name="pyyaml")
    with pytest.raises(ConfigError, match="'pyyaml' is listed more than once"):
        list_installed([spec, DistributionSpec(name="numpy"), spec], ())
