"""Decontamination: literal rows and planted copies against the real benchmark index, clean code survives, and
the stage on local Ray (the workers write the parts) on one folder and over every training part."""

from dataclasses import replace
from functools import cache

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.common.shards import DOC_SCHEMA, read_table
from tasks.common.tracking import NullTracker
from tasks.config import Params, TrackingConfig
from tasks.curate.planted import plants
from tasks.decontaminate.config import DecontaminateConfig
from tasks.decontaminate.index import build_index, decontaminate_batch, match, ngram_hashes
from tasks.decontaminate.stage import run
from tasks.evaluate import benchmarks

from .conftest import doc, write_docs

CFG = DecontaminateConfig()
HE0 = benchmarks.get("humaneval").problems()[0]
MBPP1 = benchmarks.get("mbpp").problems()[0]  # the EvalPlus subset's first task (Mbpp/2)


@cache
def index(cfg: DecontaminateConfig = CFG):
    return build_index(cfg)


def test_generic_function_names_are_kept():
    assert match("def add(a, b):\n    return a + b\n\ndef median(xs):\n    return sorted(xs)[len(xs) // 2]\n", index(), CFG) is None


def test_a_distinctive_entry_point_definition_is_dropped():
    assert match("def has_close_elements(xs, t):\n    return False\n", index(), CFG) == ("benchmark_entry_point", "HumanEval/0")


def test_calling_an_entry_point_without_defining_it_is_not_an_entry_point_hit():
    assert match("x = has_close_elements\n", index(), CFG) is None


def test_a_shared_10_gram_with_a_prompt_is_dropped():
    text = "# notes\n" + " ".join(MBPP1.data["question"].split()[:12]) + "\nfoo = 1\n"
    assert match(text, index(), CFG) == ("benchmark_ngram", MBPP1.task_id)


def test_a_shared_10_gram_with_a_solution_is_dropped():
    body = " ".join(HE0.reference.split())  # whitespace changes do not hide it
    assert match(body, index(), CFG) == ("benchmark_ngram", "HumanEval/0")


def test_nine_shared_words_are_not_enough():
    words = MBPP1.data["question"].split()[:9]
    assert len(words) == 9 and match(" ".join(words) + " zzqx unrelated", index(), CFG) is None


def test_only_the_configured_benchmarks_are_used():
    cfg = DecontaminateConfig(benchmarks=("mbpp",))
    assert match(HE0.prompt, build_index(cfg), cfg) is None
    assert match(HE0.prompt, index(), CFG) is not None


def test_char_ngrams():
    cfg = DecontaminateConfig(ngram=50, ngram_unit="char")
    assert match("xx " + HE0.reference[5:80] + " yy", build_index(cfg), cfg) is not None
    assert len(ngram_hashes("abc", 50, "char")) == 0


def test_batch_function_adds_reason_and_task_columns():
    batch = pa.table({"text": ["def add(a, b):\n    return a + b", "def has_close_elements(x):\n    pass", None]})
    out = decontaminate_batch(batch, index=index(), cfg=CFG)
    assert out["drop_reason"].to_pylist() == [None, "benchmark_entry_point", None]
    assert out["contaminated_by"].to_pylist() == [None, "HumanEval/0", None]


def test_stage_on_local_ray_conserves_rows_and_counts_hits(tmp_path):
    texts = ["def add(a, b):\n    return a + b\n"] * 5 + [HE0.prompt + HE0.reference, MBPP1.data["question"], "print('hello')"]
    src = tmp_path / "dedup"
    src.mkdir()
    pq.write_table(pa.Table.from_pylist([{**doc(t), "id": str(i)} for i, t in enumerate(texts)], schema=DOC_SCHEMA),
                   src / "part-00000.parquet")
    params = replace(Params(), tracking=TrackingConfig(enabled=False), decontaminate=CFG)
    metrics = run(params, src, tmp_path / "out", NullTracker())
    assert (metrics["rows_in"], metrics["rows_kept"], metrics["rows_dropped"]) == (8, 6, 2)
    assert metrics["hits_by_benchmark"] == {"humaneval": 1, "mbpp": 1}
    dropped = read_table(tmp_path / "out" / "dropped")
    assert sorted(dropped["contaminated_by"].to_pylist()) == ["HumanEval/0", MBPP1.task_id]
    assert "contaminated_by" not in read_table(tmp_path / "out").column_names or \
        read_table(tmp_path / "out")["contaminated_by"].null_count == 6


def test_every_planted_copy_is_found():
    missed = [(p["kind"], p["task_id"]) for p in plants() if match(p["text"], index(), CFG) is None]
    assert missed == []


def test_a_renamed_short_solution_is_found_but_the_same_words_elsewhere_are_not():
    assert match("def total(lst):\n    return sum(lst)\n", index(), CFG) == ("benchmark_solution", "Mbpp/105")
    assert match("values = lst\nresult = sum(lst)\n", index(), CFG) is None


def test_clean_installed_code_survives(site_python):
    removed = [path for path, text in site_python if match(text, index(), CFG) is not None]
    assert len(removed) < 0.01 * len(site_python), removed


def test_sft_rows_are_checked_on_instruction_and_output():
    batch = pa.table({"instruction": ["Write a function.", HE0.prompt], "output": ["def f():\n    return 1", "pass"],
                      "source": ["mined", "mined"]})
    out = decontaminate_batch(batch, index=index(), cfg=CFG)
    assert out["contaminated_by"].to_pylist() == [None, "HumanEval/0"]


def test_stage_over_parts_keeps_sft_columns_and_reports_hits_per_part_and_source(tmp_path, params_for):
    write_docs(tmp_path / "sample", [doc("def add(a, b):\n    return a + b\n"), doc(HE0.prompt + HE0.reference)])
    write_docs(tmp_path / "curate" / "algorithmic", [doc("class Solution:\n    pass\n")])
    write_docs(tmp_path / "curate" / "synthetic", [])
    pairs = pa.table({"id": ["a", "b"], "instruction": ["Write f.", MBPP1.data["question"]], "output": ["def f(): pass", "pass"],
                      "source": ["mined", "mbpp-train"]})
    for name in ("sft_stage1", "sft_stage2"):
        (tmp_path / "curate" / name).mkdir(parents=True)
        pq.write_table(pairs if name == "sft_stage2" else pairs.slice(0, 1), tmp_path / "curate" / name / "part-00000.parquet")
    m = run(params_for(), None, tmp_path / "decontaminate", NullTracker())
    assert (m["rows_in"], m["rows_kept"], m["rows_dropped"]) == (6, 4, 2)
    assert m["parts"]["pretrain"]["hits_by_benchmark"] == {"humaneval": 1}
    assert m["hits_by_source"] == {"pretrain/test:humaneval": 1, "sft_stage2/mbpp-train:mbpp": 1}
    kept = read_table(tmp_path / "decontaminate" / "sft_stage2")
    assert kept["instruction"].to_pylist() == ["Write f."]
    assert read_table(tmp_path / "decontaminate" / "sft_stage2" / "dropped")["contaminated_by"].to_pylist() == [MBPP1.task_id]
    assert "instruction" in read_table(tmp_path / "decontaminate" / "synthetic").column_names or \
        read_table(tmp_path / "decontaminate" / "synthetic").num_rows == 0


def test_missing_parts_fail_naming_them(tmp_path, params_for):
    import pytest

    from tasks.common.shards import MissingInputError

    with pytest.raises(MissingInputError, match="pretrain"):
        run(params_for(), None, tmp_path / "out", NullTracker())


def test_the_workers_write_what_the_batch_function_gives_in_one_process_and_a_rerun_is_identical(tmp_path):
    """The stage (slices on Ray, parts written by the workers) against `decontaminate_batch` over the whole input in
    this process: the same kept rows, dropped rows and reasons, in input order; a re-run commits the same parts."""
    from tasks.common.shards import read_manifest
    from tasks.config import ComputeConfig

    texts = [p["text"] for p in plants()[:6]] + [f"def helper_{i}(x):\n    return x + {i}\n" for i in range(30)]
    rows = [doc(t, path=f"f{i}.py") for i, t in enumerate(texts)]
    src = write_docs(tmp_path / "src", rows, rows_per_shard=7)  # several shards, so several slices and parts
    params = replace(Params(), tracking=TrackingConfig(enabled=False), decontaminate=CFG, compute=ComputeConfig(num_workers=2))
    metrics = run(params, src, tmp_path / "out", NullTracker())
    whole = decontaminate_batch(read_table(src), index=index(), cfg=CFG)
    reasons = whole["drop_reason"].to_pylist()
    assert read_table(tmp_path / "out").to_pylist() == whole.filter(pa.array([r is None for r in reasons])).drop_columns(["drop_reason"]).to_pylist()
    assert read_table(tmp_path / "out" / "dropped").to_pylist() == whole.filter(pa.array([r is not None for r in reasons])).to_pylist()
    assert metrics["rows_dropped"] == 6 and len(read_manifest(tmp_path / "out")["parts"]) > 1
    manifest = read_manifest(tmp_path / "out")
    assert run(params, src, tmp_path / "out", NullTracker()) == metrics and read_manifest(tmp_path / "out") == manifest
