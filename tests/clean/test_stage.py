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


WEB_PAGE = "\n".join(
    ["How do I read a file line by line in Python?", "",
     "I want to process a large log file without loading all of it into memory at once. My first attempt reads",
     "everything with read() and then splits the string, which runs out of memory on the production server.", "",
     "Answer: iterate over the file object itself. Python reads one buffered line at a time, so the memory used",
     "stays small whatever the size of the file. The with statement closes the file when the block ends.", "",
     "    with open(path) as handle:", "        for line in handle:", "            process(line)", "",
     "If you need the line numbers as well, wrap the file object in enumerate and start counting at one. For",
     "binary files, open them in binary mode and read fixed-size chunks in a loop until read returns nothing.",
     "Remember that each line keeps its trailing newline, so strip it before comparing it to other strings.", ""])


def web_row(url, text):
    """A recalled web page as tasks/recall writes it: source web, path = URL, lang null, doc_type text."""
    row = doc(url, text)
    return {**row, "repo": url.split("/")[2], "source": "web", "stars": 0, "doc_type": "text"}


def test_recalled_web_pages_are_judged_by_the_text_rules_not_their_url():
    """Web rows from the recall stage route to the natural-language (en) rules whatever their URL ends with:
    a URL without a known extension is not `unknown_language`, one ending in .html or .py is not code."""
    urls = ["https://stackoverflow.com/questions/78758530/read-a-file-line-by-line",  # no extension: was unknown_language
            "https://docs.example.org/en/latest/section-265.html",  # .html: was routed to the HTML code rules
            "https://example.com/snippets/read_lines.py"]  # .py: was routed to the Python code rules
    rows = [web_row(url, WEB_PAGE.replace("memory", f"memory{i}")) for i, url in enumerate(urls)]
    rows.append(web_row("https://example.com/thin", "Too short to be worth training on.\n"))
    rows.append(doc("https://example.com/not-web", WEB_PAGE))  # a repository row keeps the released file routing
    out = clean_batch(pa.Table.from_pylist(rows, schema=DOC_SCHEMA), CleanConfig())
    got = {r["path"]: r for r in out.to_pylist()}
    for url in urls:
        assert (got[url]["lang"], got[url]["doc_type"], got[url]["rule_config"]) == ("web", "text", "en"), url
        assert got[url]["drop_reason"] is None, (url, got[url]["failed_rules"])
    thin = got["https://example.com/thin"]
    assert thin["rule_config"] == "en" and thin["drop_reason"] is not None and thin["drop_reason"].startswith("qsc_doc_")
    assert got["https://example.com/not-web"]["drop_reason"] == "unknown_language"
