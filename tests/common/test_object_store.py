"""Stage folders as `s3://` URIs on a real S3-compatible server (moto in server mode, on loopback).

The runner maps a function from an S3 prefix to another on local Ray: the workers write their parts to
the bucket themselves and the stage commits by its manifest there; a missing prefix fails with one line.
"""

import logging
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from tasks.common.runner import TASKS_PER_WORKER, map_to_shards
from tasks.common.shards import MANIFEST, MissingInputError, filesystem, list_shards, read_manifest, read_table
from tests.common.chain import COMPARED, outcome, run_chain

ROOT = Path(__file__).resolve().parents[2]


def drop_odd(batch: pa.Table) -> pa.Table:
    reasons = ["odd" if x % 2 else None for x in batch.column("x").to_pylist()]
    return batch.append_column("drop_reason", pa.array(reasons, pa.string()))


@pytest.fixture(scope="module")
def s3_bucket():
    """A bucket on a moto S3 server; Ray restarts so that its workers see the endpoint."""
    import boto3
    import ray
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the server's request log is not the CLI's output
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL=f"http://{host}:{port}", AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).create_bucket(Bucket="corpus")
    ray.shutdown()
    yield "s3://corpus"
    ray.shutdown()
    for key, value in saved.items():
        os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    server.stop()


def test_workers_write_parts_to_s3_and_the_manifest_commits_them(s3_bucket):
    fs, path = filesystem(f"{s3_bucket}/in/part-0.parquet")
    pq.write_table(pa.table({"x": list(range(300))}), path, filesystem=fs)
    out = f"{s3_bucket}/stage/out"
    metrics = map_to_shards(drop_odd, f"{s3_bucket}/in", out, num_workers=2, batch_size=50)
    assert (metrics["rows_kept"], metrics["rows_dropped"]) == (150, 150)
    assert read_table(out).column("x").to_pylist() == list(range(0, 300, 2))
    assert read_table(f"{out}/dropped").column("drop_reason").to_pylist() == ["odd"] * 150
    committed = list_shards(out)
    assert read_manifest(out)["num_rows"] == 150 and len(committed) == 2 * TASKS_PER_WORKER and all(p.startswith(f"{out}/part-") for p in committed)
    files = fs.get_file_info(pafs.FileSelector(filesystem(out)[1]))
    parquet = sorted(f"s3://{f.path}" for f in files if f.base_name.endswith(".parquet"))
    assert parquet == committed, "the commit deleted every part it does not list"
    fs.delete_file(f"{filesystem(out)[1]}/{MANIFEST}")
    with pytest.raises(MissingInputError, match="did not finish"):
        list_shards(out)  # parts without a manifest are an unfinished stage, never read


def test_a_missing_prefix_names_itself(s3_bucket):
    with pytest.raises(MissingInputError, match="s3://corpus/nothing-here"):
        list_shards(f"{s3_bucket}/nothing-here")
    with pytest.raises(MissingInputError, match="no-such-bucket"):
        list_shards("s3://no-such-bucket/data")
    fs, path = filesystem(f"{s3_bucket}/small/part-0.parquet")
    pq.write_table(pa.table({"x": [1]}), path, filesystem=fs)
    with pytest.raises(MissingInputError, match="output 's3://no-such-bucket/out' cannot be written"):
        map_to_shards(drop_odd, f"{s3_bucket}/small", "s3://no-such-bucket/out")


def cookbook(*args: str) -> int:
    """`cookbook ARGS` (tracking off) in this process, as a user types it; returns the exit status."""
    from tasks.cli import main

    return main([*args, "--params", str(ROOT / "params.yaml"), "--set", "tracking.enabled=false"])


@pytest.mark.parametrize("args, env, expected", [
    (["--input", "s3://corpus/no-such-prefix", "--output", "s3://corpus/out"], {}, "input 's3://corpus/no-such-prefix' does not exist"),
    (["--input", "s3://no-such-bucket/x", "--output", "s3://corpus/out"], {}, "input 's3://no-such-bucket/x' does not exist"),
    (["--input", "s3://corpus/x", "--output", "s3://no-such-bucket/out"], {}, "output 's3://no-such-bucket/out' cannot be written"),
    (["--input", "s3://corpus/x", "--output", "s3://corpus/out"], {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "input 's3://corpus/x' cannot be read"),
])
def test_the_cli_names_an_unusable_uri_in_one_line_before_any_work(s3_bucket, args, env, expected, monkeypatch, capsys):
    fs, path = filesystem(f"{s3_bucket}/x/part-0.parquet")
    pq.write_table(pa.table({"x": [1]}), path, filesystem=fs)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cookbook("clean", *args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    monkeypatch.undo()
    assert not filesystem(f"{s3_bucket}/out")[0].get_file_info(pafs.FileSelector("corpus/out", allow_not_found=True)), \
        "nothing was written"


def test_ingest_reads_stack_tables_from_a_bucket_and_writes_to_it(s3_bucket):
    """`cookbook ingest --input s3://... --output s3://...`: The Stack-style Parquet and JSONL.gz objects are listed
    and read through pyarrow.fs by the workers, which write the parts to the bucket; the manifest commits them."""
    import gzip
    import json

    fs, root = filesystem(f"{s3_bucket}/stack")
    rows = [{"content": f"def f{i}():\n    return {i}\n", "repo_name": "org/repo", "path": f"m{i}.py", "blob_id": f"b{i}"}
            for i in range(6)]
    pq.write_table(pa.Table.from_pylist(rows[:4]), f"{root}/a.parquet", filesystem=fs)
    with fs.open_output_stream(f"{root}/b.jsonl.gz", compression=None) as f:  # the bytes as given
        f.write(gzip.compress("".join(json.dumps(r) + "\n" for r in rows[4:]).encode() + b"not json\n"))
    assert cookbook("ingest", "--input", f"{s3_bucket}/stack", "--output", f"{s3_bucket}/ingest") == 0
    kept = read_table(f"{s3_bucket}/ingest")
    assert sorted(kept.column("path").to_pylist()) == [f"m{i}.py" for i in range(6)]
    assert len(set(kept.column("id").to_pylist())) == 6
    assert read_table(f"{s3_bucket}/ingest/dropped").column("drop_reason").to_pylist() == ["corrupt_file"]
    assert read_manifest(f"{s3_bucket}/ingest")["num_rows"] == 6
    metrics = json.loads(fs.open_input_stream("corpus/ingest.metrics.json").read())
    assert (metrics["rows_in"], metrics["rows_kept"], metrics["files_listed"]) == (7, 6, 2)


def test_every_data_stage_runs_from_bucket_to_bucket_with_the_answers_of_local_disk(s3_bucket, tmp_path, monkeypatch):
    """ingest -> ... -> tokenize with every --input/--output an s3:// URI: no stage needs a local path, and
    every stage keeps and drops the same ids (reasons, duplicate_of) as the same chain on local disk."""
    monkeypatch.chdir(tmp_path)  # reports of object-store outputs go to ./<name>.reports
    run_chain(f"{s3_bucket}/chain", cookbook)
    run_chain(str(tmp_path / "local"), cookbook)
    for folder in COMPARED:
        assert outcome(f"{s3_bucket}/chain", folder) == outcome(str(tmp_path / "local"), folder), folder
    fs, path = filesystem(f"{s3_bucket}/chain/tokenize")
    local = tmp_path / "local" / "tokenize"
    with fs.open_input_stream(f"{path}/meta.json") as f:
        assert f.read() == (local / "meta.json").read_bytes()
    assert (tmp_path / "dedup.reports" / "dedup_report.json").exists()
