"""The recall stage end to end on local Ray: counts conserved, bad input dropped with reasons, rounds kept."""

from __future__ import annotations

import pyarrow.compute as pc

from tasks.common.shards import read_table
from tasks.common.stage import check_conservation
from tasks.common.tracking import MlflowTracker, NullTracker
from tasks.recall.stage import run, web_budget


def test_stage_recalls_web_drops_bad_rows_and_conserves_counts(repo_dir, web_file, params_factory, tmp_path):
    params = params_factory(web_path=str(web_file), rounds=2, vocab_size=500, web_share=0.5,
                            include_patterns=("%pyforum.dev/q/%",))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with MlflowTracker.start("recall-test", "recall", uri=uri) as tracker:
        metrics = run(params, repo_dir, tmp_path / "out", tracker)
        children = tracker.client.search_runs([tracker.client.get_run(tracker.run_id).info.experiment_id],
                                              f"tags.mlflow.parentRunId = '{tracker.run_id}'")
    check_conservation("recall", metrics)
    num_records = sum(1 for _ in open(web_file, "rb"))
    assert metrics["rows_in"] == 5 + metrics["num_web_pages"] == 5 + num_records
    reasons = metrics["dropped_by_reason"]
    assert reasons["empty_text"] == 1 and reasons["missing_url"] == 1
    assert reasons["undecodable"] == 1 and reasons["malformed_record"] == 1
    assert reasons["not_code_related"] >= 140
    assert sorted(r.info.run_name for r in children) == ["round-0", "round-1"]

    out = read_table(tmp_path / "out")
    web = out.filter(pc.equal(out["source"], "web"))
    assert set(web["repo"].to_pylist()) <= {"devanswers.net", "pyforum.dev"}
    assert web.num_rows > 50 and set(web["doc_type"].to_pylist()) == {"text"}
    assert int(pc.sum(web["size_bytes"]).as_py()) <= web_budget(metrics["repo_bytes"], 0.5)
    repo = out.filter(pc.not_equal(out["source"], "web"))
    assert repo.num_rows == 5
    flags = dict(zip(repo["path"].to_pylist(), repo["code_related_text"].to_pylist()))
    assert flags["README.md"] is True and flags["src/app.py"] is None
    assert flags["poem.txt"] is False
    dropped = read_table(tmp_path / "out" / "dropped")
    assert dropped.num_rows == metrics["rows_dropped"]
    for i in range(2):
        assert (tmp_path / "out" / "rounds" / str(i) / "model.bin").exists()
    assert [r["round"] for r in metrics["rounds"]] == [0, 1]

    again = run(params, repo_dir, tmp_path / "out2", NullTracker())
    assert again["rounds"] == metrics["rounds"] and again["rows_kept"] == metrics["rows_kept"]


def test_web_share_caps_recalled_bytes(repo_dir, web_file, params_factory, tmp_path):
    params = params_factory(web_path=str(web_file), rounds=1, vocab_size=500, web_share=0.1)
    metrics = run(params, repo_dir, tmp_path / "out", NullTracker())
    assert metrics["dropped_by_reason"].get("over_web_share", 0) > 0
    assert metrics["web_share_of_bytes"] <= 0.1


def test_disabled_passes_input_through_without_web_rows(repo_dir, params_factory, tmp_path):
    metrics = run(params_factory(enabled=False), repo_dir, tmp_path / "out", NullTracker())
    assert metrics["rows_in"] == metrics["rows_kept"] == 5 and metrics["rows_dropped"] == 0
    out = read_table(tmp_path / "out")
    assert set(out["source"].to_pylist()) == {"local"}


def test_input_rows_are_what_the_flagging_function_gives_in_one_process_and_a_rerun_is_identical(repo_dir, web_file, params_factory,
                                                                                                 tmp_path):
    """The workers write the input rows' parts: they equal `flag_text_files` over the whole input in this process,
    followed by the web rows; a re-run with the same rounds commits the same manifest."""
    from tasks.common.shards import read_manifest
    from tasks.recall.stage import flag_text_files

    params = params_factory(web_path=str(web_file), rounds=1, vocab_size=500, web_share=0.5)
    metrics = run(params, repo_dir, tmp_path / "out", NullTracker())
    model = tmp_path / "out" / "rounds" / "0"
    whole = flag_text_files(read_table(repo_dir), str(model / "model.bin"), str(model / "tokenizer.json"),
                            params.recall.threshold, params.recall.max_seed_chars).drop_columns(["drop_reason"])
    out = read_table(tmp_path / "out")
    assert out.slice(0, whole.num_rows).to_pylist() == whole.to_pylist()
    assert set(out.slice(whole.num_rows)["source"].to_pylist()) == {"web"} and out.num_rows == metrics["rows_kept"]
    manifest = read_manifest(tmp_path / "out")
    again = run(params, repo_dir, tmp_path / "out", NullTracker())
    assert read_manifest(tmp_path / "out") == manifest and again["rows_kept"] == metrics["rows_kept"]
