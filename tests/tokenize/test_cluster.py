"""`cookbook sample` then `cookbook tokenize` on a real 2-node Ray cluster on this machine (`infra/ray/local_cluster.py`):
both nodes run tasks, sample drops exactly the documents the single-process rule drops, and tokenize's
shards hold the ids of one process encoding the sampled documents in input order."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tasks.common.shards import read_table
from tasks.config import load_params
from tasks.tokenize.packing import PackedTokens, encode_batch, flat_ids
from tests.ops.servers import BIN, ROOT, base_env, sh
from tests.ops.test_ray_cluster import CLUSTER, nodes_with_workers
from tests.sample.conftest import write_docs
from tests.sample.reference import sampled_out_ids
from tests.sample.test_sample import frame, mixed_corpus

SAMPLE = ["sample.caps={java: 0.1, rust: 0.9}", "sample.caps_bytes={html: 20000, go: 0}", "sample.seed=5"]
TOKENIZE = ["tokenize.vocab_size=600", "tokenize.seq_len=16", "tokenize.batch_size=50"]


def cookbook(stage: str, source: Path, out: Path, address: str, cwd: Path, sets: list[str]) -> dict:
    args = [str(BIN / "cookbook"), stage, "--params", str(ROOT / "params.yaml"), "--input", str(source), "--output", str(out),
            "--set", f"compute.ray_address={address}", "--set", "compute.num_workers=2", "--set", "tracking.enabled=false"]
    sh(args + [a for s in sets for a in ("--set", s)], cwd, base_env(PYTHONPATH=str(ROOT), RAY_AUTH_MODE="token"), timeout=600)
    return json.loads(out.with_name(out.name + ".metrics.json").read_text())


def test_sample_and_tokenize_run_on_a_two_node_cluster(tmp_path):
    rows = mixed_corpus(5, n=900)
    write_docs(tmp_path / "dedup", rows, rows_per_shard=300, row_group_rows=100)
    folder = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # Unix socket paths must stay short
    env = base_env(PYTHONPATH=str(ROOT))
    try:
        address = sh([str(BIN / "python"), str(CLUSTER), "start", "--dir", str(folder), "--nodes", "2"], tmp_path, env,
                     timeout=300).stdout.split()[-1]
        sample = cookbook("sample", tmp_path / "dedup", tmp_path / "sample", address, tmp_path, SAMPLE)
        tokenize = cookbook("tokenize", tmp_path / "sample", tmp_path / "tokenize", address, tmp_path, TOKENIZE)
        assert nodes_with_workers(folder / "ray") == 2, "both nodes ran tasks of the stages"
    finally:
        sh([str(BIN / "python"), str(CLUSTER), "stop", "--dir", str(folder)], tmp_path, env, timeout=120, check=False)
        shutil.rmtree(folder, ignore_errors=True)
    expected_out = sampled_out_ids(frame(rows), load_params("params.yaml", SAMPLE).sample)
    assert set(read_table(tmp_path / "sample" / "dropped")["id"].to_pylist()) == expected_out
    kept = read_table(tmp_path / "sample")
    assert kept["id"].to_pylist() == [r["id"] for r in rows if r["id"] not in expected_out]  # input order
    assert sample["rows_kept"] == tokenize["rows_in"] == tokenize["rows_kept"] == kept.num_rows
    stream = flat_ids(encode_batch(kept, str(tmp_path / "tokenize" / "tokenizer")), np.dtype(np.uint16))
    packed = PackedTokens(tmp_path / "tokenize")
    n = len(stream) // 16
    assert len(packed) == n and np.array_equal(packed.take(np.arange(n)), stream[: n * 16].reshape(n, 16))
