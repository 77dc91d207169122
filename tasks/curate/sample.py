"""The `sample` stage (spec §4): keep the language distribution, except per-language byte caps.

    cookbook sample --input data/dedup --output data/sample [--set 'sample.caps={java: 0.05}']

The paper downsamples high-volume, low-value languages (Java ~449 -> 200 GB, HTML ~474 -> 64 GB) and keeps
every other language as it is. Here a cap is a share of the input corpus bytes (`sample.caps`, defaults
scaled from the paper's targets) or an absolute byte count (`sample.caps_bytes`). For a language over its
cap, documents are ranked by `blake2b(seed, id)` and kept, in that order, while they fit under the cap:
the choice depends only on document ids and the seed, never on shard layout or run order.

Two passes over the input: the first reads only `id`, `lang` and `size_bytes` and decides which ids go;
the second streams the documents and writes kept shards and `dropped/` (`drop_reason` = `sampled_out`).
`reports/sample/languages.{md,csv}` holds the before/after table.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pyarrow as pa

from tasks.common.shards import iter_batches, read_table
from tasks.common.stage import split_and_write
from tasks.curate.config import SampleConfig



def priority(doc_id: str, seed: int) -> int:
    """The document's rank key inside its language (lower = kept first)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest(), "big")


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


def sampled_out_ids(docs: pd.DataFrame, cfg: SampleConfig) -> set[str]:
    """Ids of the documents (columns id, lang, size_bytes) that do not fit under their language's cap."""
    sizes = docs["size_bytes"].fillna(0).astype("int64")
    caps = language_caps(sizes.groupby(docs["lang"]).sum().to_dict(), cfg)
    out: set[str] = set()
    for lang, cap in caps.items():
        group = docs[docs["lang"] == lang].assign(size=sizes[docs["lang"] == lang])
        if group["size"].sum() <= cap:
            continue
        group = group.assign(rank=[priority(i, cfg.seed) for i in group["id"]]).sort_values(["rank", "id"])
        fits = group["size"].cumsum() <= cap
        out.update(group.loc[~fits, "id"])
    return out


def language_table(before: pd.DataFrame, after: pd.DataFrame, caps: dict[str, int]) -> pd.DataFrame:
    """Files, bytes and byte share per language, before and after sampling, with the caps."""
    def summarise(df: pd.DataFrame, tag: str) -> pd.DataFrame:
        g = df.groupby("lang")["size_bytes"].agg(["count", "sum"]).rename(columns={"count": f"files_{tag}", "sum": f"bytes_{tag}"})
        g[f"share_{tag}"] = (g[f"bytes_{tag}"] / max(1, g[f"bytes_{tag}"].sum())).round(5)
        return g

    table = summarise(before, "before").join(summarise(after, "after"), how="left").fillna(0)
    table["cap_bytes"] = [caps.get(lang) for lang in table.index]
    table = table.astype({"files_after": "int64", "bytes_after": "int64"})
    return table.sort_values("bytes_before", ascending=False).reset_index()


def report_dir(output: Path) -> Path:
    """`reports/sample` for the pipeline's default output, else a folder next to the output."""
    if Path(output) == Path("data/sample"):
        return Path("reports/sample")
    return Path(output).with_name(Path(output).name + ".reports")


def write_report(table: pd.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "languages.csv", index=False)
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("-" if pd.isna(v) else str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    (folder / "languages.md").write_text("# Language sampling: before and after\n\n" + "\n".join(lines) + "\n")


def _mark(batch: pa.RecordBatch, out_ids: set[str]) -> pa.Table:
    reason = pa.array(["sampled_out" if i in out_ids else None for i in batch.column("id").to_pylist()], pa.string())
    return pa.Table.from_batches([batch]).append_column("drop_reason", reason)


def run(params, input: Path | None, output: Path, tracker) -> dict:
    cfg: SampleConfig = params.sample
    docs = read_table(input, columns=["id", "lang", "size_bytes"]).to_pandas()
    docs["size_bytes"] = docs["size_bytes"].fillna(0).astype("int64")
    out_ids = sampled_out_ids(docs, cfg)
    caps = language_caps(docs.groupby("lang")["size_bytes"].sum().to_dict(), cfg)
    batches = (_mark(b, out_ids) for b in iter_batches(input, batch_size=params.compute.batch_size))
    metrics = split_and_write(batches, output)
    table = language_table(docs, docs[~docs["id"].isin(out_ids)], caps)
    reports = report_dir(output)
    write_report(table, reports)
    tracker.log_artifact(reports / "languages.md")
    capped = table[table["cap_bytes"].notna()]
    return {**metrics, "caps_bytes": {r.lang: int(r.cap_bytes) for r in capped.itertuples()},
            "sampled_out_by_lang": {r.lang: int(r.files_before - r.files_after) for r in capped.itertuples()},
            "languages": int(len(table))}
