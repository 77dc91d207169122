"""List what the `ingest` stage will read: one small descriptor per file (or per table part).

Listing is cheap and runs on the driver; reading happens in parallel on Ray (`tasks/ingest/read.py`).
Three kinds of source, auto-detected from the input path by `detect_kind`:

- `installed`: the files of installed Python distributions (`importlib.metadata`), one repository each;
- `local` / `git`: a folder of files (one repository), or a folder holding git repositories (one
  repository per git repo, only tracked files, each with the date of the last commit touching it, taken
  from one `git log` pass per repository);
- `table`: Parquet or JSONL files with The Stack v1/v2 column names (one descriptor per Parquet row
  group, one per JSONL file).

A file descriptor is a flat dict with no nulls (`FILE_KEYS`), so Ray Data infers one schema for every
block: a missing commit date is `""`. Listings are sorted, so `max_files` keeps a deterministic prefix.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import logging
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pyarrow.fs as pafs

from tasks.common.config import ConfigError
from tasks.common.shards import MissingInputError, filesystem, is_uri, open_parquet
from tasks.ingest.config import DistributionSpec

log = logging.getLogger(__name__)

FILE_KEYS = ("location", "location_hex", "repo", "path", "source", "stars", "commit_date")
"""Keys of a file descriptor: location (and its bytes in hex when not UTF-8, else ''), repository, path inside
it, source, stars, ISO commit date or ''."""
TABLE_KEYS = ("location", "format", "row_group")
"""Keys of a table descriptor: file location, `parquet` or `jsonl`, row group (-1: the whole file)."""
TABLE_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".ndjson")
"""File names that make a path a table source."""
GITLINK_MODE = "160000"
"""`git ls-files --stage` mode of a submodule entry (a commit, not a file)."""


def is_excluded(path: str, exclude: Iterable[str]) -> bool:
    """Whether a repository-relative posix path matches one of the exclude globs."""
    return any(fnmatch.fnmatch(path, pattern) for pattern in exclude)


def is_table_file(path: str | Path) -> bool:
    return str(path).lower().endswith(TABLE_SUFFIXES)


def printable(name: str) -> str:
    """A file-system string as valid UTF-8: undecodable bytes (surrogate escapes) become `\\xNN`."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def file_descriptor(location: str | Path, repo: str, path: str, source: str, stars: int = 0, commit_date: str | None = None) -> dict:
    """A reader work item; a location whose name is not UTF-8 travels as hex (`location_hex`)."""
    raw = os.fsencode(location)
    shown = printable(os.fsdecode(raw))
    return {
        "location": shown,
        "location_hex": "" if shown.encode() == raw else raw.hex(),
        "repo": printable(repo),
        "path": printable(path),
        "source": source,
        "stars": int(stars),
        "commit_date": commit_date or "",
    }


def cap(items: list[dict], max_files: int | None) -> list[dict]:
    """Sort descriptors by (repo, path, location) and keep the first `max_files` (all when null)."""
    items = sorted(items, key=lambda d: (d.get("repo", ""), d.get("path", ""), d["location"], d.get("row_group", 0)))
    return items if max_files is None else items[:max_files]


def list_installed(distributions: Iterable[DistributionSpec], exclude: Iterable[str]) -> list[dict]:
    """One descriptor per file of each installed distribution (repo = distribution name)."""
    exclude = tuple(exclude)
    items: list[dict] = []
    names = [spec.name for spec in distributions]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # the same repository twice would give every one of its files two rows with one id
        raise ConfigError(f"ingest.distributions: '{twice[0]}' is listed more than once; keep one entry")
    for spec in distributions:
        try:
            dist = importlib.metadata.distribution(spec.name)
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(
                f"ingest.distributions: '{spec.name}' is not installed; `pip install {spec.name}` or remove it from params.yaml"
            ) from None
        files = [f for f in (dist.files or []) if not is_excluded(f.as_posix(), exclude)]
        if not dist.files:
            log.warning("distribution %s lists no files (no RECORD); it adds nothing", spec.name)
        items += [file_descriptor(dist.locate_file(f), spec.name, f.as_posix(), "installed", spec.stars) for f in files]
        log.info("listed %d files of %s %s", len(files), spec.name, dist.version)
    return items


def list_folder(root: Path, exclude: Iterable[str]) -> list[dict]:
    """Every file under `root` (not following symlinked folders, never inside `.git`): one repository."""
    exclude = tuple(exclude)
    items = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in filenames:
            location = Path(dirpath) / name
            rel = location.relative_to(root).as_posix()
            if not is_excluded(rel, exclude):
                items.append(file_descriptor(location, root.name, rel, "local"))
    return items


def find_git_repos(root: Path) -> list[Path]:
    """Folders under `root` (itself included) that are git work trees; nested repos are not searched."""
    repos = []
    for dirpath, dirnames, filenames in os.walk(root):
        if ".git" in dirnames or ".git" in filenames:
            repos.append(Path(dirpath))
            dirnames[:] = []
        else:
            dirnames.sort()
    return sorted(repos)


def _git(repo: Path, *args: str) -> bytes:
    env = {**os.environ, "TZ": "UTC", "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(
        ["git", "-c", "core.quotepath=off", "-C", str(repo), *args],
        check=True, capture_output=True, env=env,
    ).stdout


def git_tracked_files(repo: Path) -> list[str]:
    """Paths tracked by git (index entries), submodules left out."""
    out = _git(repo, "ls-files", "--stage", "-z")
    paths = []
    for entry in out.decode("utf-8", "surrogateescape").split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        if meta.split(" ", 1)[0] != GITLINK_MODE:
            paths.append(path)
    return sorted(set(paths))


def parse_git_log(out: bytes) -> dict[str, str]:
    """`git log --format=%x1e%cd --name-only -z` output -> {path: date of the newest commit touching it}."""
    dates: dict[str, str] = {}
    for record in out.decode("utf-8", "surrogateescape").split("\x1e"):
        fields = record.split("\0")
        date, names = fields[0].strip(), fields[1:]
        for name in names:
            name = name.strip("\n")
            if name and name not in dates:
                dates[name] = date
    return dates


def git_commit_dates(repo: Path) -> dict[str, str]:
    """Last-commit ISO date (UTC) of every path in the history, from one `git log` pass."""
    try:
        out = _git(repo, "log", "--format=%x1e%cd", "--date=iso-strict-local", "--name-only", "-z")
    except subprocess.CalledProcessError:  # a repository with no commit yet
        return {}
    return parse_git_log(out)


def list_git_repo(repo: Path, repo_name: str, exclude: Iterable[str]) -> list[dict]:
    """Tracked files of one git repository with their last commit date."""
    exclude = tuple(exclude)
    try:
        tracked = git_tracked_files(repo)
    except (subprocess.CalledProcessError, OSError) as err:
        # Not a usable repository: one descriptor for the folder, which the reader drops as `unreadable`.
        log.warning("git ls-files failed in %s (%s); it becomes one unreadable row", repo, err)
        return [file_descriptor(repo, repo_name, "", "git")]
    dates = git_commit_dates(repo)
    return [
        file_descriptor(repo / path, repo_name, path, "git", commit_date=dates.get(path))
        for path in tracked
        if not is_excluded(path, exclude)
    ]


def list_git_repos(root: Path, repos: list[Path], exclude: Iterable[str]) -> list[dict]:
    items = []
    for repo in repos:
        name = root.name if repo == root else repo.relative_to(root).as_posix()
        found = list_git_repo(repo, name, exclude)
        log.debug("listed %d tracked files of %s", len(found), name)
        items += found
    log.info("listed %d tracked files in %d git repositories under %s", len(items), len(repos), root)
    return items


def table_files(root: str | Path) -> list[str | Path]:
    """The Parquet/JSONL files of a path or URI (the file itself, or those under a folder)."""
    if is_uri(root):
        return [f"{str(root).split('://', 1)[0]}://{path}" for path in uri_files(str(root))]
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and is_table_file(p))


def uri_files(uri: str) -> list[str]:
    """Paths (on the URI's filesystem) of the files at or under a URI, sorted; one line naming it when it is
    missing or unreachable."""
    fs, path = filesystem(uri)
    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise MissingInputError(f"input '{uri}' does not exist: pass an existing prefix or Parquet/JSONL object")
        if info.type == pafs.FileType.File:
            return [path]
        return sorted(f.path for f in fs.get_file_info(pafs.FileSelector(path, recursive=True)) if f.type == pafs.FileType.File)
    except OSError as exc:  # unreachable endpoint, no permission
        raise MissingInputError(f"input '{uri}' cannot be read: {str(exc).splitlines()[0]}") from None


def table_descriptors(path: str | Path) -> list[dict]:
    """One descriptor per Parquet row group (-1 if the footer cannot be read), one per JSONL file."""
    if not str(path).lower().endswith(".parquet"):
        return [{"location": str(path), "format": "jsonl", "row_group": -1}]
    try:
        num_groups = open_parquet(path).metadata.num_row_groups
    except Exception as err:  # any parse error: the reader turns it into one `corrupt_file` row
        log.warning("cannot read the Parquet footer of %s (%s)", path, err)
        num_groups = 0
    if num_groups == 0:
        return [{"location": str(path), "format": "parquet", "row_group": -1}]
    return [{"location": str(path), "format": "parquet", "row_group": g} for g in range(num_groups)]


def detect_kind(root: str | Path) -> str:
    """`table`, `git` or `local` for an input path; a URI (object store) must hold tables only."""
    if is_uri(root):
        files = uri_files(str(root))
        if files and all(is_table_file(f) for f in files):
            return "table"
        raise ConfigError(f"input '{root}': on an object store ingest reads Parquet/JSONL tables "
                          f"({', '.join(TABLE_SUFFIXES)}) only; copy source folders to a local or mounted disk")
    if not root.exists():
        raise MissingInputError(f"input '{root}' does not exist: pass an existing folder or Parquet/JSONL file")
    if root.is_file():
        if is_table_file(root):
            return "table"
        raise ConfigError(f"input '{root}': a single file must be Parquet or JSONL ({', '.join(TABLE_SUFFIXES)}); pass a folder for source files")
    if find_git_repos(root):
        return "git"
    files = [p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts]
    if files and all(is_table_file(p) for p in files):
        return "table"
    return "local"


def list_path(root: str | Path, exclude: Iterable[str], max_files: int | None) -> tuple[str, list[dict], int]:
    """(kind, descriptors, files listed) for a path source; for tables `max_files` caps the table files."""
    kind = detect_kind(root)
    if kind == "table":
        files = table_files(root)
        files = files if max_files is None else files[:max_files]
        items = [d for f in files for d in table_descriptors(f)]
        log.info("listed %d table files (%d parts) under %s", len(files), len(items), root)
        return kind, items, len(files)
    if kind == "git":
        items = list_git_repos(root, find_git_repos(root), exclude)
    else:
        items = list_folder(root, exclude)
        log.info("listed %d files under %s", len(items), root)
    items = cap(items, max_files)
    return kind, items, len(items)
