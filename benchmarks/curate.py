"""Curation figures: validated SFT pairs from the embedded corpus, decontamination recall on planted copies and
the share of clean rows it removes, its speed against naive n-gram matching, and (with a teacher) generation
throughput and the share of samples kept after their tests.

    python benchmarks/curate.py                                    # ~1-2 minutes on 2 cores
    python benchmarks/curate.py --teacher hf --model PATH          # plus synthetic generation with a local model
    python benchmarks/curate.py --teacher hf --model tiny          # a tiny random Llama built here (smoke test)

1. Corpus: data/sample if present (the pipeline's pretraining mix), else data/dedup sampled here, else the
   Python files of the embedded distributions (`ingest.distributions`) read directly.
2. Mining: the curate stage without a teacher (its mined pairs and MBPP-train checks, sandboxed doctests and
   tests, and the SFT stage-1 set built from them; `mining_seconds` is the whole stage). `validated_sft_pairs` = mined pairs from the corpus that remain after the set's
   exact dedup and after decontamination.
3. Decontamination: every plant of `tasks/curate/planted.py` (HumanEval prompts, prompt + solution, renamed
   copies with and without docstring; MBPP prompts, solutions, renamed solutions: 2,156 in all) is inserted at a
   line boundary in the middle of a clean corpus file (one not flagged itself), and the decontaminate stage runs
   over the clean files, the planted files and the SFT pairs. `decontam_recall` = planted files removed /
   planted files; `clean_rows_removed_share` = corpus files and mined pairs removed / all of them. MBPP-train is
   reported on its own (`mbpp_train_removed_share`): it shares MBPP's templates and authors with the test split.
4. Peer: naive matching that hashes every word 10-gram of a row (no vocabulary pre-filter) and looks it up, on the
   same rows; `decontam_speedup_vs_naive` = naive seconds / ours, and `ngram_only_recall` what n-grams alone find.
5. Teacher (optional): snippet and educational samples from the first `--seeds` mined functions; throughput in
   samples/s and the kept-after-tests rate per kind (null without a teacher).
Last line: one JSON object, the three headline figures first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tasks.common.shards import DOC_SCHEMA, list_shards, read_table  # noqa: E402
from tasks.common.tracking import NullTracker  # noqa: E402
from tasks.config import load_params  # noqa: E402
from tasks.curate.planted import plants  # noqa: E402
from tasks.curate.scan import PAIR_SCHEMA  # noqa: E402
from tasks.curate.stage import curate  # noqa: E402
from tasks.decontaminate import stage as decontaminate  # noqa: E402
from tasks.decontaminate.index import build_index, match, ngram_hashes  # noqa: E402
from tasks.stages import STAGES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def installed_corpus(params, folder: Path) -> Path:
    """The Python files of the embedded distributions as document shards (no cleaning or dedup)."""
    from tasks.ingest.listing import list_installed

    rows = []
    for d in list_installed(params.ingest.distributions, params.ingest.exclude):
        if not d["path"].endswith(".py"):
            continue
        text = Path(d["location"]).read_text(errors="replace")
        digest = hashlib.sha256(text.encode()).hexdigest()
        rows.append({"id": digest[:16], "text": text, "repo": d["repo"], "path": d["path"], "lang": "python", "doc_type": "code",
                     "source": "installed", "stars": 0, "commit_date": "", "size_bytes": len(text.encode()), "sha256": digest})
    rows = list({r["id"]: r for r in rows}.values())
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=DOC_SCHEMA), folder / "part-00000.parquet")
    return folder


def corpus(params, tmp: Path) -> tuple[Path, str]:
    if (ROOT / "data/sample").exists() and list_shards(ROOT / "data/sample"):
        return ROOT / "data/sample", "data/sample"
    if (ROOT / "data/dedup").exists() and list_shards(ROOT / "data/dedup"):
        STAGES["sample"].load()(params, ROOT / "data/dedup", tmp / "sample", NullTracker())
        return tmp / "sample", "data/dedup, sampled here"
    return installed_corpus(params, tmp / "installed"), "installed distributions (Python files, unfiltered)"


def plant_into(host: str, plant: str, rng: random.Random) -> str:
    lines = host.split("\n")
    at = rng.randrange(len(lines) // 4, max(len(lines) // 4 + 1, 3 * len(lines) // 4))
    return "\n".join(lines[:at]) + "\n\n" + plant + "\n\n" + "\n".join(lines[at:])


def planted_rows(clean: list[dict], index: dict, cfg) -> list[dict]:
    """Each plant hidden in a clean file that decontamination leaves alone."""
    rng = random.Random(0)
    hosts = [r for r in clean if r["text"] and r["text"].count("\n") > 20 and match(r["text"], index, cfg) is None]
    rows = []
    for i, p in enumerate(plants()):
        host = rng.choice(hosts)
        text = plant_into(host["text"], p["text"], rng)
        rows.append({**host, "id": f"plant-{i:05d}", "text": text, "source": f"planted:{p['kind']}",
                     "path": f"{host['path']}#{p['task_id']}", "size_bytes": len(text.encode())})
    return rows


def naive_seconds(texts: list[str], index: dict, cfg) -> tuple[float, int]:
    """Peer: hash every word n-gram of each row and look it up (no vocabulary pre-filter, n-grams only)."""
    grams = index["grams"]
    started = time.monotonic()
    found = sum(any(int(h) in grams for h in ngram_hashes(t, cfg.ngram, cfg.ngram_unit)) for t in texts)
    return time.monotonic() - started, found


def teacher_figures(params, args, mined: list[dict], tmp: Path) -> dict | None:
    if not args.teacher:
        return None
    import dataclasses

    from tasks.curate.stage import make_teacher
    from tasks.curate.synthetic import Seed, generate_kind

    model = args.model
    if model == "tiny":
        from tasks.evaluate.tiny_model import build_tiny_model

        model = str(build_tiny_model(tmp / "tiny-teacher", chat_template=True))
    params = dataclasses.replace(params, curate=dataclasses.replace(params.curate, teacher=dataclasses.replace(
        params.curate.teacher, backend=args.teacher, model=model, cache_dir=str(tmp / "teacher-cache"),
        max_new_tokens=args.max_new_tokens)))
    backend = make_teacher(params)
    seeds = [Seed(r["id"], r["output"], r["origin"]) for r in sorted(mined, key=lambda r: r["id"])[: args.seeds]]
    out = {}
    for kind in ("snippet", "educational"):
        res = generate_kind(kind, seeds, backend, params.curate.teacher, teacher=f"{args.teacher}:{args.model}")
        kept = sum(r["status"] == "passed" for r in res["rows"])
        out[kind] = {"samples": len(res["rows"]), "kept_after_tests_rate": round(kept / max(1, len(res["rows"])), 4),
                     "samples_per_s": round(res["generated"] / res["generation_seconds"], 3) if res["generation_seconds"] else None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", choices=["hf", "vllm", "openai"], help="generation backend of the teacher")
    parser.add_argument("--model", help="teacher model folder or served name ('tiny': a random Llama built here)")
    parser.add_argument("--seeds", type=int, default=16, help="seeds per kind for the teacher run")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    args = parser.parse_args()

    params = load_params(ROOT / "params.yaml", ["tracking.enabled=false"])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        docs_dir, corpus_name = corpus(params, tmp)
        started = time.monotonic()  # the curate stage without a teacher: corpus pass (mining, doctests), MBPP-train, sets
        counts = curate(params, docs_dir, tmp / "curate", NullTracker())
        mining_s = time.monotonic() - started
        instructions = read_table(tmp / "curate" / "instructions").to_pylist()
        pools = {name: [r for r in instructions if r["source"] == name] for name in ("mined", "mbpp-train")}
        stage1 = read_table(tmp / "curate" / "sft_stage1").to_pylist()

        cfg = params.decontaminate
        benches = cfg.benchmarks or params.evaluate.benchmarks
        index = build_index(cfg, benches)
        clean = read_table(docs_dir).to_pylist()
        planted = planted_rows(clean, index, cfg)
        (tmp / "docs").mkdir()
        pq.write_table(pa.Table.from_pylist([{c: r[c] for c in DOC_SCHEMA.names} for r in clean + planted], schema=DOC_SCHEMA),
                       tmp / "docs" / "part-00000.parquet")
        (tmp / "pairs").mkdir()
        pairs = stage1 + pools["mbpp-train"]
        pq.write_table(pa.Table.from_pylist(pairs, schema=PAIR_SCHEMA), tmp / "pairs" / "part-00000.parquet")
        parts = f"decontaminate.parts={{pretrain: {tmp / 'docs'}, sft: {tmp / 'pairs'}}}"
        dparams = load_params(ROOT / "params.yaml", ["tracking.enabled=false", parts])
        started = time.monotonic()
        metrics = decontaminate.run(dparams, None, tmp / "out", NullTracker())
        decontam_s = time.monotonic() - started
        dropped_docs = set(read_table(tmp / "out" / "pretrain" / "dropped")["id"].to_pylist())
        dropped_pairs = set(read_table(tmp / "out" / "sft" / "dropped")["id"].to_pylist())

        texts = [r["text"] for r in clean + planted]
        ours_started = time.monotonic()
        ours_found = sum(match(t, index, cfg) is not None for t in texts)
        ours_s = time.monotonic() - ours_started
        naive_s, _ = naive_seconds(texts, index, cfg)
        _, ngram_found = naive_seconds([r["text"] for r in planted], index, cfg)

        planted_hit = sum(r["id"] in dropped_docs for r in planted)
        missed = [r["source"] + " " + r["path"].rsplit("#", 1)[1] for r in planted if r["id"] not in dropped_docs]
        clean_removed = sum(r["id"] in dropped_docs for r in clean)
        mined_removed = sum(r["id"] in dropped_pairs for r in stage1)
        mbpp_removed = sum(r["id"] in dropped_pairs for r in pools["mbpp-train"])
        teacher = teacher_figures(params, args, pools["mined"], tmp)

    figures = {
        "validated_sft_pairs": len(stage1) - mined_removed,
        "decontam_recall": round(planted_hit / len(planted), 4),
        "clean_rows_removed_share": round((clean_removed + mined_removed) / (len(clean) + len(stage1)), 5),
        "corpus": corpus_name, "corpus_files": len(clean), "mined_candidates": counts["mined_candidates"],
        "mined_pairs_validated": counts["mined_pairs"], "mined_doctest_validated": counts["mined_doctest_validated"],
        "doctest_pass_rate": counts["doctest_pass_rate"], "mining_seconds": round(mining_s, 2),
        "sft_stage1_after_exact_dedup": len(stage1), "mbpp_train_pairs": len(pools["mbpp-train"]),
        "mbpp_train_removed_share": round(mbpp_removed / max(1, len(pools["mbpp-train"])), 4),
        "planted_rows": len(planted), "planted_missed": missed[:20], "clean_files_removed": clean_removed,
        "mined_pairs_removed": mined_removed, "hits_by_reason": metrics["dropped_by_reason"],
        "decontam_stage_seconds": round(decontam_s, 2), "decontam_rows_per_s": round(len(texts) / ours_s, 1),
        "decontam_speedup_vs_naive": round(naive_s / ours_s, 2), "ngram_only_recall": round(ngram_found / len(planted), 4),
        "ours_rows_flagged": ours_found,
        "teacher": teacher,
    }
    for key, value in figures.items():
        if key != "teacher":
            print(f"{key}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
