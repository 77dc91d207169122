"""The clean stage on batches: bad input dropped with a reason, counts conserved, and one real Ray run."""

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.clean.config import CleanConfig
from tasks.clean.stage import clean_batch, run
from tasks.common.shards import DOC_SCHEMA, read_table
from tasks.common.tracking import NullTracker
from tasks.config import ComputeConfig, Params, TrackingConfig



def doc(path, text):
    data = (text or "").encode("utf-8", "surrogatepass")
    return dict(id=hashlib.sha256(path.encode()).hexdigest()[:16], text=text, repo="r", path=path, lang=None, doc_type=None,
                source="test", stars=1, commit_date=None, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())


BAD = [
    doc("empty.py", ""),
    doc("nul.py", "abc\x00\x01\x02" * 20),
    doc("none.py", None),
    doc("huge.py", "x = 1\n" * (9 * 1024 * 1024 // 6)),
    doc("bad_utf8.py", b"\xff\xfe caf\xe9 ".decode("utf-8", "replace") * 40),
    doc("deep.py", "x = " + "[" * 100_000 + "]" * 100_000 + "\n" + "y = 1\n" * 12),
    doc("deep.js", "var x = " + "[" * 50_000 + "]" * 50_000 + ";\n" + "var y = 1;\n" * 12),
    doc("photo.svg", "<svg></svg>" * 20),
    doc("blob.xyz", "unknown type " * 20),
]


def test_bad_input_is_dropped_with_reason_and_counts_conserved(good_py):
    table = pa.Table.from_pylist(BAD + [doc("good.py", good_py)], schema=DOC_SCHEMA)
    out = clean_batch(table, CleanConfig(rule_timeout_s=5.0))
    assert out.num_rows == table.num_rows
    reasons = dict(zip(out["path"].to_pylist(), out["drop_reason"].to_pylist()))
    assert reasons["empty.py"] == "empty"
    assert reasons["nul.py"] == "binary"
    assert reasons["none.py"] == "undecodable"
    assert reasons["huge.py"] == "oversized"
    assert reasons["bad_utf8.py"] == "qsc_code_frac_chars_replacement_symbols"
    assert reasons["deep.py"] is not None
    assert reasons["deep.js"] is not None
    assert reasons["photo.svg"] == "excluded"
    assert reasons["blob.xyz"] == "unknown_language"
    assert reasons["good.py"] is None
    kept = out.filter(pa.compute.is_null(out["drop_reason"]))
    assert kept["lang"].to_pylist() == ["python"] and kept["doc_type"].to_pylist() == ["code"]


def test_transform_counts_reach_rows(good_py):
    text = "# Copyright 2021 ACME Inc.\n# All rights reserved.\n" + good_py + 'ADMIN = "ops.lead@acme.io"\n'
    out = clean_batch(pa.Table.from_pylist([doc("m.py", text)], schema=DOC_SCHEMA), CleanConfig())
    row = out.to_pylist()[0]
    assert row["copyright_removed"] and row["pii_email"] == 1
    assert "Copyright" not in row["text"] and "<EMAIL>" in row["text"]


def test_stage_runs_on_real_ray(tmp_path: Path, good_py):
    src = tmp_path / "in"
    src.mkdir()
    rows = [doc(f"pkg/m{i}.py", good_py.replace("total_size", f"total_size_{i}")) for i in range(6)] + BAD[:3] + BAD[7:]
    pq.write_table(pa.Table.from_pylist(rows[:5], schema=DOC_SCHEMA), src / "part-00000.parquet")
    pq.write_table(pa.Table.from_pylist(rows[5:], schema=DOC_SCHEMA), src / "part-00001.parquet")
    params = Params(compute=ComputeConfig(num_workers=2, batch_size=4), tracking=TrackingConfig(enabled=False))
    out = tmp_path / "clean"
    metrics = run(params, src, out, NullTracker())
    assert metrics["rows_in"] == len(rows) == metrics["rows_kept"] + metrics["rows_dropped"]
    assert metrics["rows_kept"] == 6
    assert metrics["dropped_by_reason"] == {"binary": 1, "empty": 1, "excluded": 1, "undecodable": 1, "unknown_language": 1}
    assert read_table(out).num_rows == 6
    assert Path(metrics["report_chart"]).stat().st_size > 0
    assert metrics["removed_by_lang"]["python"]["files_in"] == 9
