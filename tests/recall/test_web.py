"""Web input from Parquet: every record becomes a row, unusable ones with their reason (none is lost)."""

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.recall.stage import usable_pages
from tasks.recall.web import read_web


def test_parquet_records_keep_counts_and_carry_drop_reasons(tmp_path):
    urls = ["https://a.dev/q/1", "https://a.dev/q/2", None, "https://a.dev/q/4", "https://a.dev/q/1", "  ", "https://a.dev/q/1"]
    texts = [b"def f():\n    return 1\n", b"caf\xe9 latin-1", b"no url here", b"   ", b"same url again", b"text",
             b"def f():\n    return 1\n"]
    path = tmp_path / "web.parquet"
    pq.write_table(pa.table({"url": pa.array(urls, pa.string()), "content": pa.array(texts, pa.binary())}), path)
    web = read_web(path)
    assert web.num_rows == len(urls)
    assert web["drop_reason"].to_pylist() == [None, "undecodable", "missing_url", "empty_text", None, "missing_url", None]
    ids = web["id"].to_pylist()
    assert ids[0] != ids[4] and ids[0] == ids[6] and len(set(ids)) == 6  # a URL crawled twice with new text: two documents
    pages, web = usable_pages(web)
    assert web["drop_reason"].to_pylist()[6] == "duplicate_id" and pages.urls == ["https://a.dev/q/1", "https://a.dev/q/1"]
    assert pages.ids == [ids[0], ids[4]]
    assert len(pages.ids) + sum(r is not None for r in web["drop_reason"].to_pylist()) == len(urls)
