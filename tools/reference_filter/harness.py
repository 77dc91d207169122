"""The released RefineCode filter as an oracle: check a checkout, build its virtualenv, run it over files.

    python -m tools.reference_filter.harness --reference PATH --files DIR --output OUT.jsonl [--jobs 2]

PATH is a checkout of `OpenCoder-llm/opc_data_filtering` (a work tree, or a bare git directory such as the
`fetch` mirror, whose HEAD is then exported to the cache). It must be at `RELEASED_COMMIT`; anything else stops
with one line saying which commit it is. The harness builds a virtualenv under the cache folder
(`--cache`, default `~/.cache/cookbook/reference_filter`) with `python -m venv` and the versions of the
released `environment.yml` from PyPI (`REFERENCE_PINS`), then runs `released_runner.py` in it, with the
checkout as working directory, over every file under DIR (`--jobs` processes, each on a share of the files),
and writes one JSON line per file (see `released_runner.py`). Nothing of the checkout is copied into this
repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RELEASED_REPO = "OpenCoder-llm/opc_data_filtering"
RELEASED_COMMIT = "44b857e837a56d859906c83d0ec91b4d5ef5bcc9"
REFERENCE_PINS = (
    # environment.yml of the released commit (conda pins; the pip section verbatim). fasttext, mecab-python3 and
    # unidic-lite are left out: only the notebook's language model (not released) and `ja` documents use them.
    "beautifulsoup4==4.12.3", "soupsieve==2.5", "jieba==0.42.1", "nltk==3.9.1", "Pygments==2.18.0",
    "regex==2024.11.6", "esprima==4.0.1", "numpy==1.26.4", "zhconv==1.4.3", "pandas==2.2.3", "tqdm==4.67.1",
    "typing_extensions==4.12.2",
)
RUNNER = Path(__file__).with_name("released_runner.py")
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cookbook" / "reference_filter"


class HarnessError(Exception):
    """A problem the user must fix; its message is the one line printed."""


def _git(args: list[str]) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()


def checkout_commit(path: Path) -> tuple[str, bool]:
    """(HEAD commit, is_bare) of a git work tree or bare git directory; raises HarnessError otherwise."""
    if not path.exists():
        raise HarnessError(f"reference checkout {path} does not exist: fetch {RELEASED_REPO} at {RELEASED_COMMIT[:7]} "
                           "and pass its path with --reference")
    for args, bare in ((["-C", str(path)], False), ([f"--git-dir={path}"], True)):
        try:
            inside = _git([*args, "rev-parse", "--is-bare-repository"])
            return _git([*args, "rev-parse", "HEAD"]), inside == "true" or bare
        except (subprocess.CalledProcessError, FileNotFoundError):
            continue
    raise HarnessError(f"reference checkout {path} is not a git checkout, so its commit cannot be checked: "
                       f"clone {RELEASED_REPO} and check out {RELEASED_COMMIT[:7]}")


def resolve_checkout(path: Path, cache: Path) -> Path:
    """A work tree of the released commit: `path` itself, or HEAD of a bare git dir exported into the cache."""
    commit, bare = checkout_commit(path)
    if commit != RELEASED_COMMIT:
        raise HarnessError(f"reference checkout {path} is at commit {commit[:12]}, expected {RELEASED_COMMIT[:12]} "
                           f"({RELEASED_REPO}): check that commit out")
    if not bare and (path / "pipeline" / "compute_quality_signals.py").exists():
        return path
    tree = cache / f"checkout-{commit[:12]}"
    if not (tree / "pipeline" / "compute_quality_signals.py").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", f"--git-dir={path}", "archive", commit], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def reference_python(cache: Path) -> Path:
    """The reference virtualenv's python, built once per set of pins (a marker file records success)."""
    key = hashlib.sha1("\n".join(REFERENCE_PINS).encode()).hexdigest()[:10]
    venv = cache / f"venv-{key}"
    python = venv / "bin" / "python"
    marker = venv / ".pins-installed"
    if marker.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", *REFERENCE_PINS], capture_output=True, text=True)
    if pip.returncode != 0:
        last = (pip.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise HarnessError(f"pip could not install the reference pins into {venv}: {last}")
    marker.write_text("\n".join(REFERENCE_PINS) + "\n")
    return python


def list_files(root: Path) -> list[str]:
    """Every regular file under root (relative POSIX paths, sorted), as the notebook's os.walk sees them."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def run_reference(reference: Path, files: Path, output: Path, jobs: int = 1, seed: int = 0, lang: str = "en",
                  cache: Path = DEFAULT_CACHE) -> Path:
    """Run the released filter over every file under `files`; one JSON line per file in `output` (sorted by path)."""
    if not files.is_dir():
        raise HarnessError(f"--files {files} is not a folder: fetch the agreement corpus first "
                           "(python -m tools.agreement_corpus.fetch)")
    cache.mkdir(parents=True, exist_ok=True)
    tree = resolve_checkout(reference, cache)
    python = reference_python(cache)
    paths = list_files(files)
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for j in range(max(1, jobs)):
            share = Path(tmp) / f"list-{j}.txt"
            share.write_text("".join(p + "\n" for p in paths[j::max(1, jobs)]), encoding="utf-8")
            cmd = [str(python), str(RUNNER), "--root", str(files.resolve()), "--list", str(share),
                   "--output", str(Path(tmp) / f"out-{j}.jsonl"), "--seed", str(seed), "--lang", lang]
            procs.append(subprocess.Popen(cmd, cwd=tree, env={**os.environ, "PYTHONHASHSEED": "0"}))
        failed = [p.args for p in procs if p.wait() != 0]
        if failed:
            raise HarnessError(f"the reference runner failed ({failed[0][1]}): see its traceback above")
        records = [json.loads(line) for j in range(len(procs))
                   for line in (Path(tmp) / f"out-{j}.jsonl").read_text(encoding="utf-8").splitlines()]
    records.sort(key=lambda r: r["path"])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help=f"checkout of {RELEASED_REPO}@{RELEASED_COMMIT[:7]}")
    parser.add_argument("--files", type=Path, required=True, help="folder of files to filter")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lang", default="en")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    try:
        out = run_reference(args.reference, args.files, args.output, args.jobs, args.seed, args.lang, args.cache)
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    crashed = [r for r in records if r.get("crash")]
    print(f"{len(records)} files -> {out}; kept (forced draws) {sum(bool(r.get('kept_forced')) for r in records)}; "
          f"crashed {len(crashed)}")
    for r in crashed[:20]:
        print(f"  crash {r['path']}: {r['crash'].strip().splitlines()[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
