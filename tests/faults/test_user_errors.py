"""Every error a user can cause ends `cookbook` with exit 2 and one line naming the key or path (no traceback).

Each case runs the installed `cookbook` entry point in a scratch folder holding a copy of params.yaml:
bad values (including checks that used to raise a plain ValueError), unknown keys, a missing params file,
missing inputs, an input that is not a usable source, a damaged Parquet shard, a model folder that does not
load. Nothing is written: every check happens before a stage starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
COOKBOOK = Path(sys.executable).with_name("cookbook")


def make_inputs(root: Path) -> None:
    (root / "shards").mkdir()
    (root / "shards" / "part-00000.parquet").write_bytes(b"PAR1 truncated by a full disk")
    (root / "model").mkdir()
    (root / "model" / "config.json").write_text('{"model_type": "llama", "hidden_size": ')  # cut short
    (root / "model" / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    (root / "weightless").mkdir()
    (root / "weightless" / "config.json").write_text('{"model_type": "llama"}')
    (root / "notes.py").write_text("x = 1\n")
    (root / "samples.jsonl").write_text('{"task_id": "HumanEval/0", "completion": "    return False\\n"}\n')


CASES = {  # name: (arguments, text the one error line must contain)
    "value check that raised ValueError": (["clean", "--input", "shards", "--set", "clean.min_stars=-1"], "clean.min_stars"),
    "evaluate backend": (["evaluate", "--samples", "s.jsonl", "--set", "evaluate.backend=foo"], "evaluate.backend"),
    "negative max_files": (["ingest", "--input", "shards", "--set", "ingest.max_files=-1"], "ingest.max_files"),
    "unknown key": (["dedup", "--input", "shards", "--set", "dedup.nope=1"], "dedup.nope"),
    "wrong type": (["tokenize", "--set", "tokenize.seq_len=long"], "tokenize.seq_len"),
    "missing params file": (["clean", "--params", "absent.yaml"], "absent.yaml"),
    "missing input": (["clean", "--input", "nowhere", "--output", "out", "--set", "tracking.enabled=false"], "nowhere"),
    "single non-table file": (["ingest", "--input", "notes.py", "--output", "out", "--set", "tracking.enabled=false"], "notes.py"),
    "damaged shard": (["clean", "--input", "shards", "--output", "out"], "part-00000.parquet"),
    "model that does not load": (["evaluate", "--model", "model", "--output", "out"], "'model'"),
    "model without weights": (["sft", "--input", "weightless", "--output", "out"], "no weights"),
    "unknown benchmark": (["evaluate", "--samples", "samples.jsonl", "--benchmarks", "humaneval,nope", "--output", "out",
                           "--set", "tracking.enabled=false"], "unknown benchmark 'nope'"),
}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("user_errors")
    shutil.copy(PROJECT / "params.yaml", root / "params.yaml")
    make_inputs(root)
    return root


@pytest.mark.parametrize("case", list(CASES))
def test_user_error_is_one_line_and_exit_2(scratch, case, monkeypatch, capsys):
    """`cookbook`'s main in this process (the console script only adds `sys.exit`), tracking to a scratch store."""
    from tasks.cli import main

    monkeypatch.chdir(scratch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{scratch}/{case.replace(' ', '_')}.db")
    args, expected = CASES[case]
    assert main(args) == 2
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], output[-3000:]
    assert not (scratch / "out").exists() and not (scratch / "metrics").exists()


def test_the_installed_command_exits_2_with_one_line(scratch):
    proc = subprocess.run([str(COOKBOOK), "clean", "--input", "shards", "--output", "out"], cwd=scratch,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: input shard 'shards/part-00000.parquet' is not readable Parquet")


def test_sft_set_errors_are_the_kinds_cookbook_reports(tmp_path):
    """The sft stage loads its sets after the model check; each bad set entry raises an error `cookbook` prints as one line."""
    from tasks.common.config import ConfigError
    from tasks.common.inputs import InputError
    from tasks.common.shards import MissingInputError
    from tasks.curate.sft_sets import load_sets

    good = '{"instruction": "Add.", "output": "def f(a, b):\\n    return a + b\\n"}\n'
    (tmp_path / "pairs.jsonl").write_text(good + '{"instruction": "No output."}\n')
    with pytest.raises(InputError, match=r"pairs.jsonl: line 2 "):
        load_sets([f"jsonl:{tmp_path / 'pairs.jsonl'}"])
    with pytest.raises(MissingInputError, match="absent.jsonl"):
        load_sets([f"jsonl:{tmp_path / 'absent.jsonl'}"])
    with pytest.raises(ConfigError, match="unknown SFT set 'alpaca'"):
        load_sets(["alpaca"])
    (tmp_path / "ok.jsonl").write_text(good)
    assert load_sets([f"jsonl:{tmp_path / 'ok.jsonl'}"])[0]["instruction"] == "Add."


def test_a_full_disk_is_recognised_however_it_is_raised():
    """ENOSPC from Python, pyarrow's message-only OSError, and the line `cookbook` prints (the real full disk runs
    in benchmarks/faults.py on a small tmpfs)."""
    import errno

    from tasks.common.inputs import disk_full_line, is_disk_full

    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device", "/small/out/part-00000.parquet"))
    assert is_disk_full(OSError("IOError: [Errno 28] No space left on device. Detail: [errno 28]"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied")) and not is_disk_full(ValueError("No space"))
    assert is_disk_full(RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 11456 vs 11350"))
    assert is_disk_full(RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file data/3: file write failed"))
    line = disk_full_line(OSError(errno.ENOSPC, "No space left on device", "/small/out/x.parquet"), Path("/small/out"))
    assert "'/small/out/x.parquet'" in line and "\n" not in line
    assert "'/small/out'" in disk_full_line(OSError("No space left on device"), Path("/small/out"))
    try:  # a worker's ENOSPC re-raised by Ray Data inside its own error type
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/small/out/part-00003.parquet")
        except OSError as cause:
            raise RuntimeError("Failed to write block; retried 3 times") from cause
    except RuntimeError as wrapped:
        assert is_disk_full(wrapped) and "'/small/out/part-00003.parquet'" in disk_full_line(wrapped, Path("/small/out"))
