"""The reader's pure functions on literal inputs: every drop reason, table column names, stable ids."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.ingest.read import (
    OUTPUT_SCHEMA, decode, doc_id, read_file, read_files, read_jsonl, read_parquet_part, read_tables, record_row,
)

MAX = 1000


def test_decode_keeps_utf8_text():
    assert decode("héllo = 1\n".encode()) == ("héllo = 1\n", None)


def test_decode_drop_reasons():
    assert decode(b"") == (None, "empty")
    assert decode(b" \n\t\n") == (None, "empty")
    assert decode(b"ELF\x00\x01\x02") == (None, "binary")
    assert decode(b"caf\xe9 latin-1") == (None, "undecodable")


def test_nul_after_the_sniff_window_is_not_binary_but_later_text_is_kept():
    text, reason = decode(b"a" * 9000 + b"\x00")
    assert reason is None and text.endswith("\x00")


def test_read_file_oversized_is_not_read(tmp_path):
    big = tmp_path / "big.py"
    big.write_bytes(b"x" * (MAX + 1))
    assert read_file(str(big), MAX) == {"text": None, "size_bytes": MAX + 1, "sha256": None, "drop_reason": "oversized"}


def test_read_file_unreadable(tmp_path):
    assert read_file(str(tmp_path / "missing.py"), MAX)["drop_reason"] == "unreadable"
    assert read_file(str(tmp_path), MAX)["drop_reason"] == "unreadable"  # a folder


def test_read_files_rows_in_order_with_hash_and_id(tmp_path):
    (tmp_path / "a.py").write_text("print('a')\n")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01")
    batch = pa.Table.from_pylist([
        {"location": str(tmp_path / n), "repo": "r", "path": n, "source": "local", "stars": 3, "commit_date": ""}
        for n in ("a.py", "b.bin")
    ])
    out = read_files(batch, MAX)
    assert out.schema == OUTPUT_SCHEMA
    a, b = out.to_pylist()
    assert a["path"] == "a.py" and a["text"] == "print('a')\n" and a["drop_reason"] is None
    assert a["sha256"] == hashlib.sha256(b"print('a')\n").hexdigest() and a["size_bytes"] == 11
    assert a["id"] == doc_id("local", "r", "a.py", a["sha256"]) and len(a["id"]) == 16
    assert a["commit_date"] is None and a["stars"] == 3 and a["lang"] is None and a["doc_type"] is None
    assert b["path"] == "b.bin" and b["drop_reason"] == "binary" and b["text"] is None


def test_doc_id_is_stable_and_distinguishes_sources_and_versions():
    assert doc_id("git", "r", "a.py", "v1") == hashlib.sha256(b"git|r|a.py|v1").hexdigest()[:16]
    assert doc_id("git", "r", "a.py", "v1") != doc_id("local", "r", "a.py", "v1")
    assert doc_id("git", "r", "a.py", "v1") != doc_id("git", "r", "a.py", "v2")


def test_versions_of_one_file_get_distinct_ids_from_blob_id_else_content():
    stack = {"repo_name": "o/r", "path": "a.py"}
    with_blob = [record_row({**stack, "blob_id": b, "content": c}, "f", f"f:{i}", MAX)
                 for i, (b, c) in enumerate([("b1", "x = 1\n"), ("b2", "x = 2\n"), ("b3", "x = 1\n")])]
    assert len({r["id"] for r in with_blob}) == 3  # the blob id decides, even for equal content
    assert with_blob[0]["id"] == doc_id("stack", "o/r", "a.py", "b1")
    no_blob = [record_row({**stack, "content": c}, "f", f"f:{i}", MAX) for i, c in enumerate(["x = 1\n", "x = 2\n", "x = 1\n"])]
    assert no_blob[0]["id"] == doc_id("stack", "o/r", "a.py", hashlib.sha256(b"x = 1\n").hexdigest())
    assert no_blob[0]["id"] != no_blob[1]["id"] and no_blob[0]["id"] == no_blob[2]["id"]  # byte-identical records: one id
    big = [record_row({**stack, "content": c * (MAX + 1)}, "f", f"f:{i}", MAX) for i, c in enumerate("yz")]
    assert [r["drop_reason"] for r in big] == ["oversized"] * 2 and big[0]["id"] != big[1]["id"]
    textless = [record_row(stack, "f", f"f:{i}", MAX) for i in range(2)]
    assert [r["drop_reason"] for r in textless] == ["missing_text"] * 2 and textless[0]["id"] != textless[1]["id"]


def test_record_row_stack_v2_columns():
    row = record_row({
        "content": "def f():\n    return 1\n", "repo_name": "o/r", "path": "src/f.py", "language": "Python",
        "gha_language": "Jupyter", "star_events_count": 12, "revision_date": dt.datetime(2023, 5, 1, 12, tzinfo=dt.timezone.utc),
        "blob_id": "abc", "length_bytes": 22,
    }, "file.parquet", "file.parquet:0", MAX)
    assert (row["repo"], row["path"], row["source"], row["source_lang"], row["stars"]) == ("o/r", "src/f.py", "stack", "Python", 12)
    assert row["commit_date"] == "2023-05-01T12:00:00+00:00"
    assert row["size_bytes"] == 22 and row["drop_reason"] is None


def test_record_row_stack_v1_columns_and_binary_content():
    row = record_row({"content": b"\x00\x00bin", "max_stars_repo_name": "a/b", "max_stars_repo_path": "x.c",
                      "max_stars_count": None, "lang": "C", "hexsha": "ff"}, "f", "f:1", MAX)
    assert (row["repo"], row["path"], row["stars"], row["source_lang"], row["drop_reason"]) == ("a/b", "x.c", 0, "C", "binary")


def test_record_row_missing_text_and_fallbacks():
    row = record_row({"repo_name": "o/r", "blob_id": "b1"}, "f.jsonl", "f.jsonl:3", MAX)
    assert row["drop_reason"] == "missing_text" and row["path"] == "b1"
    row = record_row({"text": "x = 1\n"}, "f.jsonl", "f.jsonl:3", MAX)
    assert (row["repo"], row["path"], row["drop_reason"]) == ("f.jsonl", "f.jsonl:3", None)


def test_record_row_oversized_text():
    assert record_row({"content": "y" * (MAX + 1), "repo_name": "r", "path": "p"}, "f", "f:1", MAX)["drop_reason"] == "oversized"


def test_read_jsonl_bad_line_is_one_corrupt_row_naming_the_line(tmp_path):
    f = tmp_path / "v1.jsonl"
    lines = [json.dumps({"content": "a = 1\n", "max_stars_repo_name": "o/r", "max_stars_repo_path": "a.py"}),
             "{not json", "", json.dumps([1, 2]), json.dumps({"content": "", "max_stars_repo_name": "o/r", "max_stars_repo_path": "e.py"})]
    f.write_text("\n".join(lines) + "\n")
    rows = read_jsonl(str(f), MAX)
    assert [r["drop_reason"] for r in rows] == [None, "corrupt_file", "corrupt_file", "empty"]
    assert rows[1]["path"] == f"{f}:2" and rows[2]["path"] == f"{f}:4"


def test_read_jsonl_truncated_gzip_keeps_read_rows_and_adds_a_corrupt_row(tmp_path):
    f = tmp_path / "t.jsonl.gz"
    data = gzip.compress(("\n".join(json.dumps({"text": f"x = {i}\n", "repo": "r", "path": f"{i}.py"}) for i in range(2000)) + "\n").encode())
    f.write_bytes(data[: len(data) // 2])
    rows = read_jsonl(str(f), MAX)
    assert rows[0]["drop_reason"] is None and rows[-1]["drop_reason"] == "corrupt_file" and rows[-1]["path"] == str(f)


def test_corrupt_parquet_is_one_dropped_row_naming_the_file(tmp_path):
    f = tmp_path / "bad.parquet"
    f.write_bytes(b"PAR1 this is not parquet")
    rows = read_parquet_part(str(f), -1, MAX)
    assert len(rows) == 1 and rows[0]["drop_reason"] == "corrupt_file" and rows[0]["path"] == str(f)


def test_read_tables_parquet_row_groups(tmp_path):
    f = tmp_path / "v2.parquet"
    table = pa.table({"content": [f"v = {i}\n" for i in range(6)], "repo_name": ["o/r"] * 6, "path": [f"{i}.py" for i in range(6)]})
    pq.write_table(table, f, row_group_size=2)
    batch = pa.Table.from_pylist([{"location": str(f), "format": "parquet", "row_group": g} for g in (2, 0)])
    out = read_tables(batch, MAX)
    assert out.column("path").to_pylist() == ["4.py", "5.py", "0.py", "1.py"]
    assert set(out.column("source").to_pylist()) == {"stack"}


def test_json_lone_surrogates_and_odd_values_never_break_the_batch(tmp_path):
    f = tmp_path / "odd.jsonl"
    f.write_text('{"content": "ok = 1\\n", "repo_name": "o/\\ud800", "path": 7, "star_events_count": 1e30}\n'
                 '{"content": "bad = \\"\\udc80\\"\\n", "repo_name": "o/r", "path": "s.py", "star_events_count": "many"}\n')
    out = read_tables(pa.Table.from_pylist([{"location": str(f), "format": "jsonl", "row_group": -1}]), MAX).to_pylist()
    assert (out[0]["repo"], out[0]["path"], out[0]["stars"], out[0]["drop_reason"]) == ("o/\\xed\\xa0\\x80", "7", 2**63 - 1, None)
    assert (out[1]["stars"], out[1]["drop_reason"]) == (0, "undecodable")


def test_the_record_reader_reads_only_the_columns_asked_for_and_numbers_jsonl_lines(tmp_path):
    """`parquet_records` and `jsonl_lines` are the one reader of Parquet/JSONL inputs (ingest tables and recall's
    web pages): only the columns asked for, every line with its number, gzip by name."""
    from tasks.ingest.read import jsonl_lines, parquet_records

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"url": ["u1", "u2"], "content": ["a", "b"], "other": [1, 2]}), path)
    assert parquet_records(str(path), -1, ("url", "content")) == [{"url": "u1", "content": "a"}, {"url": "u2", "content": "b"}]
    assert parquet_records(str(path), 0) == [{"content": "a"}, {"content": "b"}]  # ingest's columns by default
    lines = tmp_path / "t.jsonl.gz"
    with gzip.open(lines, "wb") as f:
        f.write(b'{"a": 1}\n\n{"a": 2}\n')
    assert list(jsonl_lines(str(lines))) == [(1, b'{"a": 1}\n'), (2, b"\n"), (3, b'{"a": 2}\n')]
