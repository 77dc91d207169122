"""Per-row verdicts on a fixed sample of the embedded corpus stay exactly as recorded.

`data/decisions.jsonl.gz` holds 203 rows of data/recall (numpy, mlflow, pip, ... sources under 6 KB,
about two per drop reason and rule config, plus kept rows) with the drop reason, failing rules, rule
config, transforms and a hash of the output text. Re-recorded when the signals were matched to the released
filter by running it (#15): on the transformed texts of these rows the released `opc_data_filtering` (p=0.8 rules
forced) and our rules agree on all 203 keep/drop decisions; 5 recorded verdicts changed. A speed-up must not change
any of them; a deliberate rule or transform change re-records the file.
"""

import gzip
import hashlib
import json
from pathlib import Path

import pyarrow as pa

from tasks.clean.config import CleanConfig
from tasks.clean.stage import PII_KINDS, clean_batch
from tasks.common.shards import DOC_SCHEMA

ROWS = [json.loads(line) for line in gzip.open(Path(__file__).parent / "data" / "decisions.jsonl.gz", "rt", encoding="utf-8")]


def test_recorded_verdicts_are_reproduced():
    table = pa.Table.from_pylist([dict(id=r["id"], path=r["path"], text=r["text"], size_bytes=r["size_bytes"]) for r in ROWS], schema=DOC_SCHEMA)
    out = clean_batch(table, CleanConfig()).to_pylist()
    mismatches = []
    for row, got in zip(ROWS, out):
        actual = dict(drop_reason=got["drop_reason"], failed_rules=got["failed_rules"], rule_config=got["rule_config"],
                      copyright_removed=got["copyright_removed"], pii=[got[f"pii_{k}"] for k in PII_KINDS],
                      text_md5=hashlib.md5((got["text"] or "").encode("utf-8", "surrogatepass")).hexdigest())
        if actual != row["expected"]:
            mismatches.append((row["path"], row["expected"], actual))
    assert not mismatches, mismatches[:3]
    assert len({r["expected"]["drop_reason"] for r in ROWS}) >= 40
