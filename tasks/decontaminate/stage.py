"""The `decontaminate` stage (paper §4.4): remove training rows that contain benchmark test data.

    cookbook decontaminate                                        # every part in decontaminate.parts
    cookbook decontaminate --input DIR --output DIR               # one folder of your own

Everything that trains the model is checked: the pretraining mix (data/sample), the annealing high-quality
sources (data/curate/algorithmic, synthetic) and both SFT sets (data/curate/sft_stage1, sft_stage2; their rows
are checked on instruction + output), each written to `<output>/<part>/`, against exactly the benchmarks of
`evaluate.benchmarks` (or `decontaminate.benchmarks` when set). Three rules, in order:

- `benchmark_entry_point`: the row defines a benchmark's entry point as a module-level function, `def NAME(`
  at the start of a line (methods are not benchmark solutions). Only distinctive names are matched (at least
  `entry_point_min_len` characters and containing an underscore, e.g. `has_close_elements`), so clean code
  defining generic names (`add`, `fib`, `median`) is kept.
- `benchmark_solution`: the row defines a function whose parameters and body are, unit for unit, a reference
  solution's (MBPP's code; HumanEval's prompt + canonical body, with or without the docstring), from any of its
  `def`s on, under the same or another name (recursive calls renamed alike): renamed copies and solutions too
  short or too uniform for an informative n-gram (`def count(lst): return sum(lst)`) are caught. Needs at
  least `solution_min_units` units after the name.
- `benchmark_ngram`: the row shares an n-gram (`ngram`, default 10, of lower-cased words, or characters) with a
  benchmark prompt/question or reference solution. Benchmark word n-grams that carry no information (fewer
  than `ngram_min_distinct` distinct words, or mostly numbers and single letters, such as `0 1 2 3 4 5 6 7 8 9`
  from test data) are left out: on the embedded corpus they were 90% of the hits.

What runs where: the benchmark side (`index.build_index`: n-gram hashes, vocabulary, entry points, reference
functions; bounded by the benchmarks, never by the corpus) is built once on the driver and handed to the
workers. Each part is mapped with `runner.map_to_shards`: the workers read their slices, match every row,
write their kept part and `dropped/` part themselves and return only counts (rows, bytes, hits per benchmark
and per row source); the driver commits each part's folder by its manifest, written last. No text and no
per-row object reaches the driver. Dropped rows carry `drop_reason` and `contaminated_by` (the matching task,
e.g. "HumanEval/0"); metrics count hits per benchmark, per part and per part and row source. Folders are
URIs (`/local`, `s3://...`).
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from tasks.common.runner import map_to_shards
from tasks.common.shards import (DROPPED, MissingInputError, commit_parts, filesystem, join, list_shards, open_parquet,
                                 staged_output, write_part)
from tasks.decontaminate.config import DecontaminateConfig
from tasks.decontaminate.index import build_index, decontaminate_batch

CONTAMINATED_BY = "contaminated_by"


def hit_counts(table: pa.Table, benchmark_of: dict[str, str]) -> dict[str, dict[str, int]]:
    """Hits of one mapped slice by benchmark and by `row source:benchmark` (summed over slices by the runner)."""
    hit = table[CONTAMINATED_BY].to_pylist()
    sources = table["source"].to_pylist() if "source" in table.column_names else [None] * len(hit)
    return {"hits_by_benchmark": dict(Counter(benchmark_of[t] for t in hit if t)),
            "hits_by_source": dict(Counter(f"{s}:{benchmark_of[t]}" for s, t in zip(sources, hit) if t))}


def keep_input_columns(input_dir: str | Path, output_dir: str | Path) -> None:
    """An input without rows still gives outputs with its own columns (plus `contaminated_by`), so an empty SFT
    set reads as one downstream."""
    shards = list_shards(input_dir)
    if not shards:
        return
    schema = open_parquet(shards[0]).schema_arrow.append(pa.field(CONTAMINATED_BY, pa.string()))
    dropped = join(output_dir, DROPPED)
    commit_parts(dropped, [write_part(schema.append(pa.field("drop_reason", pa.string())).empty_table(), dropped, 0)], 0)
    commit_parts(output_dir, [write_part(schema.empty_table(), output_dir, 0)], 0)


def decontaminate_folder(params, index: dict, input_dir: str | Path, output_dir: str | Path) -> dict:
    """One folder of rows -> kept and `dropped/` parts written by the workers; its counts and hits by benchmark
    and by row source."""
    compute = params.compute
    metrics = map_to_shards(decontaminate_batch, input_dir, output_dir, fn_kwargs={"index": index, "cfg": params.decontaminate},
                            num_workers=compute.num_workers, batch_size=compute.batch_size, ray_address=compute.ray_address,
                            summarize=partial(hit_counts, benchmark_of=index["benchmark_of"]))
    if metrics["rows_in"] == 0:
        keep_input_columns(input_dir, output_dir)
    hits = metrics.pop("summary")
    return {**metrics, "hits_by_benchmark": dict(sorted(hits.get("hits_by_benchmark", {}).items())),
            "hits_by_source": dict(sorted(hits.get("hits_by_source", {}).items()))}


def exists(uri: str | Path) -> bool:
    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def remove_stale_parts(output: str | Path, parts: dict[str, str]) -> None:
    """Delete sub-folders of the output that no configured part writes (left by a run with other parts)."""
    fs, path = filesystem(output)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return
    for entry in fs.get_file_info(pafs.FileSelector(path)):
        if entry.type == pafs.FileType.Directory and entry.base_name not in parts:
            fs.delete_dir(entry.path)


def run(params, input: Path | None, output: Path, tracker) -> dict:
    cfg: DecontaminateConfig = params.decontaminate
    benchmarks = cfg.benchmarks or params.evaluate.benchmarks
    index = build_index(cfg, benchmarks)
    info = {"benchmarks": list(benchmarks), "benchmark_ngrams": len(index["grams"]),
            "benchmark_entry_points": len(index["entry_points"]),
            "benchmark_solution_sequences": sum(len(v) for v in index["solutions"].values())}
    if input is not None:
        with staged_output(output) as target:
            return {**decontaminate_folder(params, index, input, target), **info}
    missing = [f"{part} ({path})" for part, path in cfg.parts.items() if not exists(path)]
    if missing:
        raise MissingInputError(f"decontaminate: missing input parts {', '.join(missing)}: run `cookbook sample` and "
                                "`cookbook curate` first, or pass --input PATH")
    with staged_output(output) as target:  # the parts replace a previous local output together
        remove_stale_parts(target, cfg.parts)
        parts = {part: decontaminate_folder(params, index, path, join(target, part)) for part, path in cfg.parts.items()}
    return summarize_parts(parts, info)


def summarize_parts(parts: dict[str, dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    """Stage metrics over every part: summed counts, hits by benchmark, by part/source and per part."""
    totals = Counter()
    for m in parts.values():
        totals.update({k: m[k] for k in ("rows_in", "rows_kept", "rows_dropped", "bytes_in", "bytes_kept")})
    return {**totals, **info,
            "dropped_by_reason": dict(sorted(sum((Counter(m["dropped_by_reason"]) for m in parts.values()), Counter()).items())),
            "hits_by_benchmark": dict(sorted(sum((Counter(m["hits_by_benchmark"]) for m in parts.values()), Counter()).items())),
            "hits_by_source": {f"{part}/{k}": v for part, m in parts.items() for k, v in m["hits_by_source"].items()},
            "parts": {part: {k: m[k] for k in ("rows_in", "rows_kept", "rows_dropped", "hits_by_benchmark")} for part, m in parts.items()}}
