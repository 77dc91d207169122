"""The single-process `sample` rule as it was before the stage ran on workers: every (id, lang, size) in one
pandas frame, each capped language ranked by (priority, id) and kept while the running total fits. The
distributed stage must choose exactly the same documents."""

from __future__ import annotations

import pandas as pd

from tasks.sample import ranking
from tasks.sample.config import SampleConfig
from tasks.sample.stage import language_caps


def sampled_out_ids(docs: pd.DataFrame, cfg: SampleConfig) -> set[str]:
    """Ids of the documents (columns id, lang, size_bytes) that do not fit under their language's cap."""
    sizes = docs["size_bytes"].fillna(0).astype("int64")
    caps = language_caps(sizes.groupby(docs["lang"]).sum().to_dict(), cfg)
    out: set[str] = set()
    for lang, cap in caps.items():
        group = docs[docs["lang"] == lang].assign(size=sizes[docs["lang"] == lang])
        if group["size"].sum() <= cap:
            continue
        group = group.assign(rank=[ranking.priority(i, cfg.seed) for i in group["id"]]).sort_values(["rank", "id"])
        fits = group["size"].cumsum() <= cap
        out.update(group.loc[~fits, "id"])
    return out
