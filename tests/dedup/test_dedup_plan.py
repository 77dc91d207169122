"""Keep policy, exact and near duplicates, levels, verification, determinism and conservation on literal rows,
through the distributed passes (`stage.plan_dedup`) run in this process on a one-shard folder cut into slices."""

import dataclasses
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.common.shards import DOC_SCHEMA
from tasks.common.shuffle import Tasks
from tasks.dedup.config import DedupConfig
from tasks.dedup.keys import key_name, rank_key
from tasks.dedup.passes import EXACT, NEAR, load_decisions
from tasks.dedup.report import summarize
from tasks.dedup.stage import decisions_path, plan_dedup

CFG = DedupConfig()


def long_text(seed: int, num_tokens: int = 1200) -> str:
    """Code-like text of distinct tokens (so single edits change few 5-grams)."""
    rng = np.random.default_rng(seed)
    return "\n".join(f"x{v} = f{w}(y{seed}_{i})" for i, (v, w) in enumerate(rng.integers(0, 10**6, size=(num_tokens // 3, 2))))


def edited(text: str, num_edits: int) -> str:
    """The text with `num_edits` tokens replaced, spread over the file."""
    lines = text.split("\n")
    step = max(1, len(lines) // (num_edits + 1))
    for k in range(num_edits):
        lines[(k + 1) * step] = lines[(k + 1) * step].replace("x", "zz", 1)
    return "\n".join(lines)


def docs(rows: list[dict]) -> pa.Table:
    base = dict(lang="python", doc_type="code", source="test", stars=0, commit_date=None, size_bytes=1, sha256=None, repo="r", path="p.py")
    full = [{**base, "path": f"{r['id']}.py", **r} for r in rows]
    return pa.Table.from_pylist(full, schema=DOC_SCHEMA)


def plan_folder(folder: Path, cfg: DedupConfig, num_workers: int = 2):
    """`plan_dedup` in this process; the plan with `decisions`: {id: (drop_reason, duplicate_of)} of all slices."""
    scratch = str(folder.parent / "scratch")
    Path(scratch).mkdir(exist_ok=True)
    plan = plan_dedup(folder, scratch, cfg, num_workers, Tasks.in_process())
    decisions = {}
    for i in range(plan.slices):
        load_decisions.cache_clear()
        decisions.update(load_decisions(decisions_path(scratch, i)))
    load_decisions.cache_clear()
    return SimpleNamespace(**vars(plan), decisions=decisions)


def dedup(table: pa.Table, cfg: DedupConfig = CFG):
    """Plan `table` (written as one shard of small row groups, so it is cut into several slices) and mark it."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "input"
        folder.mkdir()
        pq.write_table(table, folder / "part-00000.parquet", row_group_size=3)
        plan = plan_folder(folder, cfg)
    found = [plan.decisions.get(i) for i in table.column("id").to_pylist()]
    marked = table.append_column("duplicate_of", pa.array([f[1] if f else None for f in found], pa.string()))
    return plan, marked.append_column("drop_reason", pa.array([f[0] if f else None for f in found], pa.string()))


def verdicts(marked: pa.Table) -> dict[str, tuple]:
    return {i: (r, d) for i, r, d in zip(*(marked.column(c).to_pylist() for c in ("id", "drop_reason", "duplicate_of")))}


def test_keep_policy_stars_then_latest_commit_then_smallest_id():
    ids = ["d", "c", "b", "a", "e"]
    stars = [5, 9, 9, 9, None]
    dates = ["2024-01-01", "2023-05-01", None, "2023-05-01", "2025-01-01"]
    keys = [rank_key(s, d, i) for s, d, i in zip(stars, dates, ids)]
    # most stars first; among the 9-star ones the latest commit; equal dates -> smallest id; null date oldest
    assert [key_name(k) for k in sorted(keys)] == ["a", "c", "b", "d", "e"]


def test_exact_duplicates_keep_the_best_copy():
    text = "print('hello world')\n"
    table = docs([
        {"id": "low", "text": text, "stars": 1},
        {"id": "high_old", "text": text, "stars": 50, "commit_date": "2020-01-01"},
        {"id": "high_new", "text": text, "stars": 50, "commit_date": "2021-06-01"},
        {"id": "other", "text": "print('something else entirely')\n", "stars": 0},
    ])
    plan, marked = dedup(table)
    assert verdicts(marked) == {
        "low": (EXACT, "high_new"),
        "high_old": (EXACT, "high_new"),
        "high_new": (None, None),
        "other": (None, None),
    }
    assert plan.stats["units_exact_dropped"] == 2


def test_near_duplicates_removed_and_distinct_files_kept():
    base = long_text(1)
    table = docs([
        {"id": "orig", "text": base, "stars": 10},
        {"id": "one_edit", "text": edited(base, 1), "stars": 3},
        {"id": "many_edits", "text": edited(base, 60), "stars": 3},
        {"id": "unrelated", "text": long_text(2), "stars": 3},
    ])
    plan, marked = dedup(table)
    assert verdicts(marked) == {
        "orig": (None, None),
        "one_edit": (NEAR, "orig"),
        "many_edits": (None, None),
        "unrelated": (None, None),
    }
    assert plan.stats["merged_pairs"] == 1


def test_exact_copy_of_a_near_duplicate_points_to_the_kept_row():
    base = long_text(3)
    near = edited(base, 1)
    table = docs([
        {"id": "best", "text": base, "stars": 100},
        {"id": "n1", "text": near, "stars": 5},
        {"id": "n2", "text": near, "stars": 1},
    ])
    _, marked = dedup(table)
    assert verdicts(marked) == {"best": (None, None), "n1": (NEAR, "best"), "n2": (EXACT, "best")}


def test_verification_counts_false_positives():
    base = long_text(4)
    table = docs([{"id": "a", "text": base, "stars": 2}, {"id": "b", "text": edited(base, 1), "stars": 1}])
    plan, marked = dedup(table, dataclasses.replace(CFG, verify_threshold=1.0))
    assert plan.stats["candidate_pairs"] == 1 and plan.stats["false_positive_pairs"] == 1
    assert marked.column("drop_reason").null_count == 2
    plan, _ = dedup(table, dataclasses.replace(CFG, verify=False))
    assert plan.stats["merged_pairs"] == 1 and plan.stats["false_positive_pairs"] == 0


def test_exact_and_fuzzy_switches():
    text = long_text(5)
    table = docs([{"id": "a", "text": text}, {"id": "b", "text": text}, {"id": "c", "text": edited(text, 1)}])
    _, marked = dedup(table, dataclasses.replace(CFG, exact=False, fuzzy=False))
    assert marked.column("drop_reason").null_count == 3
    _, marked = dedup(table, dataclasses.replace(CFG, fuzzy=False))
    assert verdicts(marked)["b"] == (EXACT, "a") and verdicts(marked)["c"] == (None, None)
    _, marked = dedup(table, dataclasses.replace(CFG, exact=False))
    assert {k: v[0] for k, v in verdicts(marked).items()} == {"a": None, "b": NEAR, "c": NEAR}


def test_repo_level_drops_every_file_of_a_duplicate_repo():
    files = {f"m{k}.py": long_text(10 + k, 300) for k in range(3)}
    rows = [{"id": f"up-{p}", "repo": "upstream", "path": p, "text": t, "stars": 100} for p, t in files.items()]
    rows += [{"id": f"fork-{p}", "repo": "fork", "path": p, "text": t, "stars": 1} for p, t in files.items()]
    rows[-1]["text"] = edited(rows[-1]["text"], 1)  # the fork edited one file: still a near-duplicate repo
    rows.append({"id": "own", "repo": "mine", "path": "m0.py", "text": files["m0.py"], "stars": 0})
    cfg = dataclasses.replace(CFG, level="repo")
    plan, marked = dedup(docs(rows), cfg)
    got = verdicts(marked)
    assert {k: v for k, v in got.items() if k.startswith("fork")} == {f"fork-{p}": (NEAR, f"up-{p}") for p in files}
    assert got["own"] == (None, None) and all(got[f"up-{p}"] == (None, None) for p in files)
    assert plan.stats["units_in"] == 3
    # file level on the same rows removes only the exact copies: the edited 300-token file alone is
    # below the 0.98 threshold, the repo as a whole is above it
    _, marked = dedup(docs(rows), CFG)
    assert sorted(k for k, v in verdicts(marked).items() if v[0]) == ["fork-m0.py", "fork-m1.py", "own"]


def test_chunk_level_drops_a_file_only_when_all_its_chunks_are_duplicates():
    part_a, part_b = long_text(20, 600), long_text(21, 600)
    cfg = dataclasses.replace(CFG, level="chunk", chunk_tokens=600)
    table = docs([
        {"id": "a", "text": part_a, "stars": 5},
        {"id": "b", "text": part_b, "stars": 5},
        {"id": "ab", "text": part_a + "\n" + part_b, "stars": 1},  # both chunks seen elsewhere
        {"id": "ac", "text": part_a + "\n" + long_text(22, 600), "stars": 9},  # one new chunk
    ])
    plan, marked = dedup(table, cfg)
    got = verdicts(marked)
    assert got["ab"][0] == EXACT and got["ab"][1] in {"a", "ac"}
    assert got["a"] == (EXACT, "ac")  # a's only chunk is an exact copy of ac's first chunk, which has more stars
    assert got["b"] == (None, None) and got["ac"] == (None, None)
    assert plan.stats["units_in"] == 6  # a, b: one chunk each; ab, ac: two each


def test_deterministic_and_conserving_over_shuffled_input():
    base = [long_text(30 + k) for k in range(4)]
    rows = [{"id": f"d{k}", "text": base[k % 4] if k % 3 else edited(base[k % 4], 1), "stars": k % 5} for k in range(24)]
    table = docs(rows)
    _, first = dedup(table)
    perm = np.random.default_rng(0).permutation(len(rows))
    _, shuffled = dedup(table.take(perm))
    assert verdicts(first) == verdicts(shuffled)
    kept = first.column("drop_reason").null_count
    assert kept + (len(first) - kept) == len(rows) and first.num_rows == len(rows)
    assert kept == 4  # one survivor per family
    kept_ids = {i for i, (r, _) in verdicts(first).items() if r is None}
    assert all(d in kept_ids for r, d in verdicts(first).values() if r)


def test_empty_and_tokenless_texts_are_not_near_duplicates():
    table = docs([{"id": "a", "text": "(((  )))"}, {"id": "b", "text": "[[ ]]"}, {"id": "c", "text": ""}, {"id": "d", "text": ""}])
    _, marked = dedup(table)
    assert verdicts(marked) == {"a": (None, None), "b": (None, None), "c": (None, None), "d": (EXACT, "c")}


def test_guardrail_flags_sources_losing_too_much():
    text = "same content\n"
    rows = [{"id": f"s{k}", "text": text, "source": "mirror", "repo": f"r{k}"} for k in range(4)]
    rows += [{"id": f"t{k}", "text": f"unique {k}", "source": "main", "repo": f"q{k}"} for k in range(4)]
    table = docs(rows)
    cfg = dataclasses.replace(CFG, guardrail_share=0.5, guardrail_min_rows=3)
    plan, _ = dedup(table, cfg)
    assert plan.flagged == [{"group": "source", "name": "mirror", "rows": 4, "removed": 3, "share": 0.75}]
    summary = summarize(cfg, plan.stats, plan.clusters, plan.by_lang, plan.flagged, plan.num_flagged)
    assert summary["clusters"]["size_histogram"] == {"4": 1}
    assert summary["removal_by_language"]["python"]["rows_exact_duplicate"] == 3
    assert "guardrail_flagged" not in summary
    plan, _ = dedup(table, dataclasses.replace(cfg, report_top_flagged=0))  # the list is cut, the count is not
    assert plan.flagged == [] and plan.num_flagged == 1
    assert summarize(cfg, plan.stats, plan.clusters, plan.by_lang, plan.flagged, plan.num_flagged)["guardrail_flagged"] == 1


def test_config_rejects_inconsistent_bands():
    from tasks.common.config import ConfigError

    with pytest.raises(ConfigError, match="bands"):
        DedupConfig(bands=16, rows=100)
    assert abs(DedupConfig().lsh_threshold - 0.9786) < 1e-3


def test_verify_split_candidates_are_a_superset_of_the_paper_bands():
    from tasks.common.config import ConfigError
    from tasks.dedup import minhash as mh

    assert CFG.candidate_bands == (32, 64) and dataclasses.replace(CFG, verify=False).candidate_bands == (16, 128)
    with pytest.raises(ConfigError, match="verify_split"):
        DedupConfig(verify_split=3)
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.integers(0, 2**32, size=2048, dtype=np.uint64).astype(np.uint32)
        b = rng.integers(0, 2**32, size=2048, dtype=np.uint64).astype(np.uint32)
        band = int(rng.integers(16))
        b[band * 128 : (band + 1) * 128] = a[band * 128 : (band + 1) * 128]  # one paper band in common
        paper = mh.band_keys(np.stack([a, b]), 16, 128, CFG.seed)
        split = mh.band_keys(np.stack([a, b]), *CFG.candidate_bands, CFG.seed)
        assert (paper[0] == paper[1]).sum() == 1
        assert (split[0] == split[1]).tolist() == [k // 2 == band for k in range(32)]


def test_pairs_just_above_the_threshold_are_all_found_with_verify_split():
    """Eight pairs at Jaccard 0.979-0.985: 16 x 128 alone finds each with probability 0.65-0.92 (all
    eight about 0.2), the 32 x 64 candidates with probability > 0.9999 each."""
    from tasks.dedup import minhash as mh

    rows, expected = [], {}
    for k in range(8):
        base = long_text(100 + k, num_tokens=3000)
        for num_edits in range(1, 40):
            near = edited(base, num_edits)
            j = mh.jaccard(mh.text_shingles(base, "word", 5), mh.text_shingles(near, "word", 5))
            if j < 0.985:
                break
        assert CFG.lsh_threshold <= j < 0.985
        rows += [{"id": f"a{k}", "text": base, "stars": 5}, {"id": f"b{k}", "text": near}]
        expected[f"b{k}"] = (NEAR, f"a{k}")
    plan, _ = dedup(docs(rows))
    assert plan.decisions == expected
