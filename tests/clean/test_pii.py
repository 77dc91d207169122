"""PII redaction against the labelled set tests/clean/data/pii_cases.jsonl (see tasks/clean/pii_eval.py)."""

from pathlib import Path

import pytest

from tasks.clean.pii_eval import load_cases, score
from tasks.clean.transform import find_pii, redact_pii

CASES = load_cases(Path(__file__).parent / "data" / "pii_cases.jsonl")


def test_labelled_set_is_large_and_covers_every_kind():
    assert len(CASES) >= 200
    kinds = {p["kind"] for case in CASES for p in case["pii"]}
    assert kinds == {"email", "ip_address", "key", "password"}
    assert sum(not case["pii"] for case in CASES) >= 50  # hard negatives


@pytest.mark.parametrize("split", ["tune", "holdout"])
def test_precision_and_recall_at_least_095(split):
    overall = score([c for c in CASES if c["split"] == split])["overall"]
    assert overall["precision"] >= 0.95 and overall["recall"] >= 0.95, overall


def test_redaction_replaces_exactly_the_spans():
    text = 'host = "52.14.3.9"  # ops: ann.lee@acme.io\npassword = "s3cr3t!pw"\n'
    redacted, counts = redact_pii(text)
    assert redacted == 'host = "<IP_ADDRESS>"  # ops: <EMAIL>\npassword = "<PASSWORD>"\n'
    assert counts == {"ip_address": 1, "email": 1, "password": 1}


def test_minified_line_stays_linear():
    line = ";".join(f'a{i}.key="v{i}",b.token=x{i}' for i in range(20000))  # one 500 KB line
    assert find_pii(line) == []
