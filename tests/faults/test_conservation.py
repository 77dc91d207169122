"""rows_in == kept + dropped is a check that fails when rows go missing (tokenize, curate count drops directly).

Tokenize counts its input from the shards' metadata and kept/dropped from the workers' rows, so a row a
worker loses (simulated by a task body that drops the last row of its slice) fails the conservation check;
curate counts each candidate where it is made, so a candidate missing from both pools and rejects fails it.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.common.shards import DOC_SCHEMA
from tasks.common.stage import ConservationError, check_conservation
from tasks.common.tracking import NullTracker
from tasks.config import load_params
from tasks.curate.stage import candidate_counts

PARAMS = ["tracking.enabled=false", "compute.num_workers=2", "tokenize.vocab_size=512", "tokenize.seq_len=16",
          "tokenize.batch_size=10"]


def write_corpus(folder, num_docs: int = 40):
    texts = [f"def f{k}(x):\n    return x * {k} + {k * k}\n" for k in range(num_docs)] + [""]  # the last has no text
    rows = [dict(id=f"d{k:03d}", text=t, repo="r", path=f"m{k}.py", lang="python", doc_type="code", source="test", stars=0,
                 commit_date="", size_bytes=len(t), sha256=None) for k, t in enumerate(texts)]
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=DOC_SCHEMA), folder / "part-00000.parquet", row_group_size=10)
    return len(rows)


def encode_slice_losing_a_row(batch, **kwargs):
    """The tokenize task body with the last row of its slice lost."""
    from tasks.tokenize.packing import encode_slice

    return encode_slice(batch.slice(0, batch.num_rows - 1), **kwargs)


def test_tokenize_counts_empty_documents_as_dropped_and_catches_a_lost_batch(tmp_path, monkeypatch):
    import tasks.tokenize.stage as tokenize

    num_rows = write_corpus(tmp_path / "docs")
    params = load_params("params.yaml", PARAMS)
    metrics = tokenize.run(params, tmp_path / "docs", tmp_path / "tok", NullTracker())
    check_conservation("tokenize", metrics)
    assert (metrics["rows_in"], metrics["rows_kept"], metrics["rows_dropped"]) == (num_rows, num_rows - 1, 1)
    assert metrics["dropped_by_reason"] == {"empty_text": 1}

    monkeypatch.setattr(tokenize, "encode_slice", encode_slice_losing_a_row)  # a row lost on a worker
    lossy = tokenize.run(params, tmp_path / "docs", tmp_path / "tok2", NullTracker())
    assert lossy["rows_kept"] + lossy["rows_dropped"] < lossy["rows_in"] == num_rows
    with pytest.raises(ConservationError):
        check_conservation("tokenize", lossy)


def test_curate_counts_candidates_where_they_are_made():
    pools = {"mined": 2, "mbpp-train": 1, "educational": 1}  # pairs per pool, as the workers and writers count them
    rejected = 2  # a mined candidate and a teacher sample that failed their checks
    synthetic = {"counts": {"teacher": "hf:x", "educational": {"finished": 2}, "snippet": {"finished": 1}},
                 "docs": [{"source": "synthetic-snippet"}]}  # mined snippets are written by the workers, apart
    counts = {"mined_candidates": 3, "mbpp_train_candidates": 1}
    metrics = candidate_counts(counts, synthetic, pools, rejected)
    assert metrics == {"rows_in": 7, "rows_kept": 5, "rows_dropped": 2}
    check_conservation("curate", metrics)
    pools["mined"] -= 1  # a validated pair that reached neither the pools nor the rejects
    with pytest.raises(ConservationError):
        check_conservation("curate", candidate_counts(counts, synthetic, pools, rejected))
