"""Export the agreement corpus (`manifest.yaml`) from git directories into a folder of files.

    python -m tools.agreement_corpus.fetch --mirror /work/.mirror --out /tmp/agreement_corpus

For every repository of the manifest it finds a git directory under the mirror root (`<owner>+<name>/repo`,
the `fetch` tool's layout, or a clone at `<owner>/<name>` or `<name>`), checks that the pinned commit is
there, and writes the selected files to `OUT/<owner>+<name>/<path>`. A repository that is missing or lacks its
commit stops the script with one line naming it. The selection is deterministic (see the manifest's header).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import yaml

from tasks.clean import routing

MANIFEST = Path(__file__).with_name("manifest.yaml")


class CorpusError(Exception):
    """A missing repository or commit; the message is the one line printed."""


def git_dir(mirror: Path, repo: str) -> Path:
    owner, name = repo.split("/")
    for candidate in (mirror / f"{owner}+{name}" / "repo", mirror / owner / name, mirror / name):
        if candidate.exists():
            return candidate
    raise CorpusError(f"{repo}: no git directory under {mirror} (looked for {owner}+{name}/repo, {owner}/{name}, {name}): "
                      "fetch or clone it there")


def _git(gdir: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", f"--git-dir={gdir / '.git'}" if (gdir / ".git").exists() else f"--git-dir={gdir}", *args],
                          input=data, capture_output=True, check=True).stdout


def tree_entries(gdir: Path, repo: str, commit: str) -> list[tuple[str, str, int]]:
    """(path, blob id, size) of every regular file at `commit`."""
    try:
        out = _git(gdir, "ls-tree", "-r", "-l", "-z", commit)
    except subprocess.CalledProcessError:
        raise CorpusError(f"{repo}: commit {commit[:12]} is not in {gdir}: fetch that commit") from None
    entries = []
    for item in out.split(b"\0"):
        if not item:
            continue
        meta, path = item.split(b"\t", 1)
        mode, kind, blob, size = meta.split()
        if kind == b"blob" and mode in (b"100644", b"100755") and size.isdigit():  # absent blobs have no size
            entries.append((path.decode("utf-8", "replace"), blob.decode(), int(size)))
    return entries


def select(entries: list[tuple[str, str, int]], max_bytes: int, cap: int) -> list[tuple[str, str]]:
    """Routable files within the size bound, at most `cap` per program language, by SHA-1 of the path."""
    by_lang: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for path, blob, size in entries:
        lang, kind = routing.route(path)
        if 0 < size <= max_bytes and kind not in (routing.UNKNOWN, routing.EXCLUDED):
            by_lang[lang].append((hashlib.sha1(path.encode()).hexdigest(), path, blob))
    return [(path, blob) for items in by_lang.values() for _, path, blob in sorted(items)[:cap]]


def read_blob(gdir: Path, blob: str) -> bytes:
    return _git(gdir, "cat-file", "blob", blob)


def export_repo(gdir: Path, repo: str, commit: str, out: Path, max_bytes: int, cap: int) -> int:
    """Write the selected files of one repository; the number written (non-UTF-8 and NUL files are skipped)."""
    written = 0
    target = out / repo.replace("/", "+")
    for path, blob in select(tree_entries(gdir, repo, commit), max_bytes, cap):
        try:
            data = read_blob(gdir, blob)
        except subprocess.CalledProcessError:  # listed in the tree but absent from the snapshot
            continue
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if b"\0" in data:
            continue
        dest = target / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        written += 1
    return written


def fetch(mirror: Path, out: Path, manifest: Path = MANIFEST) -> dict[str, int]:
    spec = yaml.safe_load(manifest.read_text())
    counts = {}
    for entry in spec["repos"]:
        gdir = git_dir(mirror, entry["repo"])
        counts[entry["repo"]] = export_repo(gdir, entry["repo"], entry["commit"], out, spec["max_bytes"], spec["per_language_cap"])
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirror", type=Path, required=True, help="root of the git directories (mirror or clones)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    args = parser.parse_args(argv)
    try:
        counts = fetch(args.mirror, args.out, args.manifest)
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for repo, n in counts.items():
        print(f"{n:6d}  {repo}")
    print(f"{sum(counts.values()):6d}  files in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
