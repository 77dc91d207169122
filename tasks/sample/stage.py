"""The `sample` stage (spec §4): keep the language distribution, except per-language byte caps.

    cookbook sample --input data/dedup --output data/sample [--set 'sample.caps={java: 0.05}']

The paper downsamples high-volume, low-value languages (Java ~449 -> 200 GB, HTML ~474 -> 64 GB) and keeps
every other language as it is. Here a cap is a share of the input corpus bytes (`sample.caps`, defaults
scaled from the paper's targets) or an absolute byte count (`sample.caps_bytes`). For a language over its
cap, documents are ranked by `(blake2b(seed, id), id)` and kept, in that order, while the running byte total
stays within the cap: the first document that does not fit and every one ranked after it are sampled out
(a prefix, not a knapsack). The choice depends only on document ids and the seed, never on shard layout or
run order.

Everything runs on the Ray workers through `tasks/common/runner.py`; the driver holds per-language numbers
and one bucket of boundary rows per capped language, never a row per document (`ranking.py` has the steps):
per-language totals and priority histograms -> the bucket where each cap falls -> that bucket's rows -> a
threshold key per language -> `map_to_shards` marks `drop_reason: sampled_out` (ids repeated in the input
go to `dropped/` as `duplicate_id`). `reports/sample/languages.{md,csv}` holds the before/after table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tasks.common.runner import map_batches, map_to_shards
from tasks.common.shards import report_folder
from tasks.common.stage import DROP_REASON
from tasks.sample.config import SampleConfig
from tasks.sample.ranking import (BUCKET_BITS, MAX_BOUNDARY_ROWS, PRIORITY_BITS, Boundary, boundary_bucket, boundary_rows,
                                  language_histograms, sampled_out_mask, threshold_in)

SAMPLED_OUT = "sampled_out"
WHOLE_SLICE = 1 << 40
"""`batch_size` of the aggregation passes: one aggregate per slice, not per batch."""
KEY_COLUMNS = ["id", "lang", "size_bytes"]

RunPass = Callable[[Callable, dict], Iterable[pa.Table]]
"""Maps an aggregation function (with keyword arguments) over the input's `KEY_COLUMNS`; yields its tables."""


def language_caps(bytes_by_lang: dict[str, int], cfg: SampleConfig) -> dict[str, int]:
    """Cap in bytes of every capped language present in the corpus."""
    total = sum(bytes_by_lang.values())
    caps: dict[str, int] = {}
    for lang in bytes_by_lang:
        limits = []
        if lang in cfg.caps:
            limits.append(int(cfg.caps[lang] * total))
        if lang in cfg.caps_bytes:
            limits.append(cfg.caps_bytes[lang])
        if limits:
            caps[lang] = min(limits)
    return caps


def dense_histograms(tables: Iterable[pa.Table], langs: Iterable[str]) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Sum `language_histograms` outputs: ({lang: (files, bytes)} from the totals rows, {lang: (files by bucket,
    bytes by bucket)} for `langs`)."""
    totals: dict[str, tuple[int, int]] = {}
    hists = {lang: (np.zeros(1 << BUCKET_BITS, np.int64), np.zeros(1 << BUCKET_BITS, np.int64)) for lang in langs}
    for table in tables:
        is_total = pc.equal(table["bucket"], -1)
        for row in table.filter(is_total).to_pylist():
            files, nbytes = totals.get(row["lang"], (0, 0))
            totals[row["lang"]] = (files + row["files"], nbytes + row["bytes"])
        for lang, (files, nbytes) in hists.items():
            rows = table.filter(pc.and_(pc.invert(is_total), pc.equal(table["lang"], lang)))
            buckets = rows["bucket"].to_numpy()
            np.add.at(files, buckets, rows["files"].to_numpy())
            np.add.at(nbytes, buckets, rows["bytes"].to_numpy())
    return totals, hists


def find_thresholds(run_pass: RunPass, cfg: SampleConfig) -> tuple[dict[str, tuple[int, int]], dict[str, int], dict[str, tuple[int, str]]]:
    """({lang: (files, bytes)}, {lang: cap}, {lang: first sampled-out key (priority, id)}) of the input.

    A language within its cap has no threshold. Histogram passes narrow each over-cap language to a bucket
    of at most `MAX_BOUNDARY_ROWS` files (or one priority value), whose rows decide the exact key."""
    candidates = set(cfg.caps) | set(cfg.caps_bytes)
    first = {lang: (0, 0) for lang in candidates}
    totals, hists = dense_histograms(run_pass(language_histograms, {"seed": cfg.seed, "prefixes": first, "totals": True}), candidates)
    caps = language_caps({lang: nbytes for lang, (_, nbytes) in totals.items()}, cfg)
    pending = {lang: Boundary(0, 0, 0) for lang, cap in caps.items() if totals[lang][1] > cap}
    ready: dict[str, Boundary] = {}
    while pending:
        narrower = {}
        for lang, boundary in pending.items():
            files, nbytes = hists[lang]
            bucket, before = boundary_bucket(files, nbytes, caps[lang] - boundary.bytes_before)
            narrowed = boundary.refine(bucket, before)
            full = files[bucket] > MAX_BOUNDARY_ROWS and narrowed.bits < PRIORITY_BITS
            (narrower if full else ready)[lang] = narrowed
        pending = narrower
        if pending:
            prefixes = {lang: (b.prefix, b.bits) for lang, b in pending.items()}
            _, hists = dense_histograms(run_pass(language_histograms, {"seed": cfg.seed, "prefixes": prefixes, "totals": False}), pending)
    thresholds = {}
    if ready:
        prefixes = {lang: (b.prefix, b.bits) for lang, b in ready.items()}
        rows = pa.concat_tables(list(run_pass(boundary_rows, {"seed": cfg.seed, "prefixes": prefixes})))
        for lang, boundary in ready.items():
            thresholds[lang] = threshold_in(rows.filter(pc.equal(rows["lang"], lang)), boundary.bytes_before, caps[lang])
    return totals, caps, thresholds


def mark_sampled_out(batch: pa.Table, seed: int, thresholds: dict[str, tuple[int, str]]) -> pa.Table:
    """The batch with `drop_reason` `sampled_out` where a document is at or after its language's threshold."""
    out = sampled_out_mask(batch, seed, thresholds)
    return batch.append_column(DROP_REASON, pa.array(np.where(out, SAMPLED_OUT, None), pa.string()))


def kept_by_language(table: pa.Table) -> dict:
    """Files and bytes kept per language in one marked batch (summed over batches by the runner)."""
    kept = table.filter(pc.and_(pc.is_null(table[DROP_REASON]), pc.is_valid(table["lang"])))
    grouped = pa.table({"lang": kept["lang"], "size": pc.fill_null(kept["size_bytes"], 0)}).group_by("lang").aggregate(
        [("size", "count"), ("size", "sum")])
    langs = grouped["lang"].to_pylist()
    return {"files_after": dict(zip(langs, grouped["size_count"].to_pylist())),
            "bytes_after": dict(zip(langs, grouped["size_sum"].to_pylist()))}


def language_table(before: dict[str, tuple[int, int]], after: dict, caps: dict[str, int]) -> pd.DataFrame:
    """Files, bytes and byte share per language, before and after sampling, with the caps."""
    table = pd.DataFrame({"lang": list(before), "files_before": [f for f, _ in before.values()],
                          "bytes_before": [b for _, b in before.values()]}, columns=["lang", "files_before", "bytes_before"])
    table["share_before"] = (table["bytes_before"] / max(1, table["bytes_before"].sum())).round(5)
    table["files_after"] = [int(after.get("files_after", {}).get(lang, 0)) for lang in table["lang"]]
    table["bytes_after"] = [int(after.get("bytes_after", {}).get(lang, 0)) for lang in table["lang"]]
    table["share_after"] = (table["bytes_after"] / max(1, table["bytes_after"].sum())).round(5)
    table["cap_bytes"] = [caps.get(lang) for lang in table["lang"]]
    return table.sort_values("bytes_before", ascending=False, kind="stable").reset_index(drop=True)


def report_dir(output: str | Path) -> Path:
    """`reports/sample` for the pipeline's default output, else `<output>.reports` (`shards.report_folder`)."""
    return report_folder(output, "data/sample", "reports/sample")


def write_report(table: pd.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "languages.csv", index=False)
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("-" if pd.isna(v) else str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    (folder / "languages.md").write_text("# Language sampling: before and after\n\n" + "\n".join(lines) + "\n")


def run(params, input: Path | None, output: Path, tracker) -> dict:
    cfg: SampleConfig = params.sample
    compute = params.compute

    def run_pass(fn: Callable, kwargs: dict) -> Iterable[pa.Table]:
        return map_batches(fn, input, fn_kwargs=kwargs, num_workers=compute.num_workers, batch_size=WHOLE_SLICE,
                           ray_address=compute.ray_address, columns=KEY_COLUMNS)

    totals, caps, thresholds = find_thresholds(run_pass, cfg)
    metrics = map_to_shards(mark_sampled_out, input, output, fn_kwargs={"seed": cfg.seed, "thresholds": thresholds},
                            num_workers=compute.num_workers, batch_size=compute.batch_size, ray_address=compute.ray_address,
                            summarize=kept_by_language)
    table = language_table(totals, metrics.pop("summary"), caps)
    reports = report_dir(output)
    write_report(table, reports)
    tracker.log_artifact(reports / "languages.md")
    capped = table[table["cap_bytes"].notna()]
    return {**metrics, "caps_bytes": {r.lang: int(r.cap_bytes) for r in capped.itertuples()},
            "sampled_out_by_lang": {r.lang: int(r.files_before - r.files_after) for r in capped.itertuples()},
            "languages": int(len(table))}
