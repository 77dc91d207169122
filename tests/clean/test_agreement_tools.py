"""The fidelity tooling on real git repositories and literal records: the reference harness refuses a wrong
checkout with one line, the corpus export is pinned and deterministic, the comparison counts what it says,
and run_all checks bars as its table says. (The reference virtualenv itself is built by
`benchmarks/clean_agreement.py`, which needs PyPI and minutes; it is not run here.)"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.clean.signals import Doc
from tools.agreement_corpus.fetch import CorpusError, export_repo, git_dir, select
from tools.reference_filter.harness import RELEASED_COMMIT, HarnessError, list_files, main as harness_main, resolve_checkout

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import clean_agreement  # noqa: E402
import run_all  # noqa: E402


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "HOME": str(repo)}
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "owner+name" / "repo"
    (root / "src").mkdir(parents=True)
    for i in range(5):
        (root / "src" / f"m{i}.py").write_text(f"x = {i}\n")
    (root / "README.md").write_text("# readme\n")
    (root / "bin.py").write_bytes(b"a\x00b")
    (root / "latin.c").write_bytes(b"char *s = \"\xe9\";\n")
    (root / "photo.unknownext").write_text("?")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "c")
    return root


def test_harness_stops_on_a_missing_or_wrong_checkout(tmp_path, repo, capsys):
    with pytest.raises(HarnessError, match="does not exist"):
        resolve_checkout(tmp_path / "nope", tmp_path / "cache")
    commit = _git(repo, "rev-parse", "HEAD")
    with pytest.raises(HarnessError, match=f"at commit {commit[:12]}, expected {RELEASED_COMMIT[:12]}"):
        resolve_checkout(repo, tmp_path / "cache")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(HarnessError, match="not a git checkout"):
        resolve_checkout(plain, tmp_path / "cache")
    code = harness_main(["--reference", str(repo), "--files", str(repo), "--output", str(tmp_path / "o.jsonl"),
                         "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "expected 44b857e837a5" in err[0]


def test_corpus_export_is_pinned_and_selects_routable_utf8_files(tmp_path, repo):
    commit = _git(repo, "rev-parse", "HEAD")
    gdir = git_dir(tmp_path, "owner/name")
    written = export_repo(gdir, "owner/name", commit, tmp_path / "out", max_bytes=1000, cap=3)
    files = list_files(tmp_path / "out")
    assert written == len(files) == 4  # 3 of 5 Python files (cap), the README; no NUL, no Latin-1, no unknown type
    assert sum(f.endswith(".py") for f in files) == 3 and "owner+name/README.md" in files
    again = tmp_path / "again"
    export_repo(gdir, "owner/name", commit, again, max_bytes=1000, cap=3)
    assert list_files(again) == files
    with pytest.raises(CorpusError, match="commit 0+ is not in"):
        export_repo(gdir, "owner/name", "0" * 40, tmp_path / "x", max_bytes=1000, cap=3)
    with pytest.raises(CorpusError, match="no git directory"):
        git_dir(tmp_path, "other/repo")
    assert [p for p, _ in select([("a.py", "1", 10), ("b.py", "2", 0), ("c.py", "3", 5000)], 1000, 9)] == ["a.py"]


def _ours(path: str, kept: bool, fired: set, text: str, lang: str, config: str) -> dict:
    return dict(kept=kept, fired=fired, reason=None if kept else next(iter(fired), "x"), config=config, lang=lang,
                doc=Doc(text=text, path=path, lang=lang))


def test_comparison_counts_decisions_rules_and_values(capsys):
    text = "\n".join(f"value_{i} = compute({i})" for i in range(12)) + "\n"
    ours = {"a.py": _ours("a.py", True, set(), text, "python", "python"),
            "b.py": _ours("b.py", False, {"qsc_code_num_words"}, text, "python", "python"),
            "c.py": _ours("c.py", True, set(), text, "python", "python")}
    num_lines = float(text.count("\n"))
    refs = [dict(path="a.py", program_lang="python", kept_forced=True, fired_forced=[], signals={"qsc_code_num_lines": num_lines}),
            dict(path="b.py", program_lang="python", kept_forced=True, fired_forced=[], signals={"qsc_code_num_lines": num_lines + 1}),
            dict(path="c.py", program_lang="python", crash="read: UnicodeDecodeError: ...")]
    figures = clean_agreement.compare(refs, ours, clean_agreement.comparison_config(), show=3)
    out = capsys.readouterr().out
    assert figures["decision_agreement"] == 0.5 and figures["files"] == 2 and figures["reference_crashes"] == 1
    assert figures["signal_agreement"] == 0.5 and "qsc_code_num_words" in figures["rules_below_0_98"]
    assert "c.py: read: UnicodeDecodeError" in out and "b.py" in out
    assert clean_agreement.same_value(True, 1.0) and clean_agreement.same_value(0.1, 0.1000000004)
    assert not clean_agreement.same_value(None, 0.0) and not clean_agreement.same_value(0.1, 0.1001)


def test_run_all_bars():
    bars = {(b.script, b.figure): b for b in run_all.BARS}
    assert run_all.check(bars[("clean", "mb_per_s_per_core")], {"mb_per_s_per_core": 1.2}) == "pass"
    assert run_all.check(bars[("clean", "speedup_2_workers")], {"speedup_2_workers": 0.97}) == "FAIL"
    assert run_all.check(bars[("clean_agreement", "rules_below_0.98")], {"rules_below_0.98": []}) == "pass"
    assert run_all.check(bars[("faults", "runs_identical")], {"runs_identical": 50, "faults_injected": 50}) == "pass"
    assert run_all.check(bars[("scale", "time_exponent")], {}) == "missing"
    assert {b.script for b in run_all.BARS} >= {"clean", "clean_agreement", "scale", "faults", "train", "evaluate", "ablation_cache"}
    assert json.loads(json.dumps([b.figure for b in run_all.BARS]))  # every figure is a plain name
