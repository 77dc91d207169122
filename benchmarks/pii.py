"""PII redaction quality: precision and recall of `find_pii` per kind on the labelled code snippets.

    python benchmarks/pii.py

Peer: the labelled set itself (tests/clean/data/pii_cases.jsonl: `tune` cases the regexes were developed
against, `holdout` cases never tuned on). Prints a table per split, then one JSON object (overall, all
cases) as the last line.
"""

import json
from pathlib import Path

from tasks.clean.pii_eval import KINDS, load_cases, score

CASES = Path(__file__).resolve().parents[1] / "tests" / "clean" / "data" / "pii_cases.jsonl"


def main() -> None:
    cases = load_cases(CASES)
    for split in ("tune", "holdout", "all"):
        subset = cases if split == "all" else [c for c in cases if c["split"] == split]
        print(f"{split}: {len(subset)} cases")
        for kind, r in score(subset).items():
            print(f"  {kind:<11} tp={r['tp']:<4} fp={r['fp']:<3} fn={r['fn']:<3} precision={r['precision']:.3f} recall={r['recall']:.3f}")
    result = score(cases)
    print(json.dumps({"precision": round(result["overall"]["precision"], 4), "recall": round(result["overall"]["recall"], 4),
                      **{f"{k}_precision": round(result[k]["precision"], 4) for k in KINDS},
                      **{f"{k}_recall": round(result[k]["recall"], 4) for k in KINDS},
                      "num_cases": len(cases)}))


if __name__ == "__main__":
    main()
