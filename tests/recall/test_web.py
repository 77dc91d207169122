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


def test_labelled_files_are_read_with_their_labels_by_the_same_reader(tmp_path):
    from tasks.recall.stage import labelled_table

    from .conftest import write_jsonl

    rows = [{"url": "https://a.dev/1", "text": "def f(): pass", "label": "code"}, {"text": "a poem about rain", "label": 0},
            {"url": "https://a.dev/3", "text": "no label"}, {"url": "https://a.dev/4", "text": "  ", "label": 1}]
    path = write_jsonl(tmp_path / "seeds.jsonl", rows, raw_lines=[b"{not json"])
    seeds = labelled_table(path)
    assert seeds["text"].to_pylist() == ["def f(): pass", "a poem about rain"]  # a missing URL is fine for a seed
    assert seeds["label"].to_pylist() == [1, 0] and set(seeds["origin"].to_pylist()) == {"seed_path"}
    parquet = tmp_path / "seeds.parquet"
    pq.write_table(pa.table({"content": ["x = 1", "words"], "URL": ["https://b.dev/1", "https://b.dev/2"], "label": [1, 0]}), parquet)
    assert labelled_table(parquet)["label"].to_pylist() == [1, 0]
