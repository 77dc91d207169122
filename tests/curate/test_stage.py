"""The curate stage end to end on a small corpus (local Ray: the workers write the parts; a scripted teacher; the real
sandbox), then decontamination of its parts and the SFT loader reading the result."""

from __future__ import annotations

import json
import textwrap

from tasks.common.shards import read_manifest, read_table
from tasks.common.tracking import NullTracker
from tasks.curate.sft_sets import load_sets
from tasks.curate.stage import curate
from tasks.decontaminate import stage as decontaminate
from tasks.evaluate import benchmarks
from tasks.stages import STAGES

from .conftest import doc, write_docs
from .test_synthetic import SOLUTION

HE0 = benchmarks.get("humaneval").problems()[0]

LIB = textwrap.dedent('''
    import re


    def slugify(text):
        """Convert a title to a lower-case slug with dashes.

        >>> slugify("Hello World")
        'hello-world'
        """
        words = re.findall(r"\\w+", text.lower())
        return "-".join(words)


    def wrong_total(values):
        """Compute the total of the values (buggy on purpose).

        >>> wrong_total([1, 2])
        3
        """
        total = 0
        return total


    def clamp(x, low, high):
        """Return x limited to the closed interval from low to high."""
        if x < low:
            return low
        return min(x, high)
''')
CLAMP = LIB[LIB.index("def clamp"):]
LEETCODE = "class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n        return seen\n"


class EducationalTeacher:
    """A teacher double for every kind: a passing snippet, a textbook section, an educational sample."""

    has_chat_template = True

    def __init__(self):
        self.calls = 0

    def generate(self, prompts, *, chat, stops, n):
        self.calls += 1
        snippet = f"```python\n{SOLUTION}```\n```python\nassert add(1, 2) == 3\n```"
        textbook = "## Adding\nWe add numbers.\n```python\nprint(1 + 2)\n```\n"
        educational = ("### Problem\nWrite `add(a, b)` returning the sum.\n### Solution\n```python\n" + SOLUTION + "```\n"
                       "### Tests\n```python\nassert add(1, 2) == 3\nassert add(2, 2) == 4\nassert add(0, 0) == 0\n```\n")
        text = snippet if "two code blocks" in prompts[0] else textbook if "textbook" in prompts[0] else educational
        return [[text] * n for _ in prompts]


def test_curate_decontaminate_and_load_sets(tmp_path, params_for):
    rows = [doc(LIB, path="lib/text.py"), doc("import os\n\n\n" + CLAMP, path="vendored/clamp.py"), doc(LEETCODE, path="algo/two_sum.py"), doc(HE0.prompt + HE0.reference, path="leak.py"),
            doc("# Notes\nSome words.\n", lang="markdown", path="README.md")]
    write_docs(tmp_path / "dedup", rows)
    params = params_for("curate.teacher.max_seeds=2", "curate.mbpp_train=true")
    STAGES["sample"].load()(params, tmp_path / "dedup", tmp_path / "sample", NullTracker())
    teacher = EducationalTeacher()
    m = curate(params, tmp_path / "sample", tmp_path / "curate", NullTracker(), teacher_backend=teacher)

    assert m["rows_in"] == m["rows_kept"] + m["rows_dropped"] and m["files_scanned"] == 5
    assert m["algorithmic_files"] == 1 and m["algorithmic_by_keyword"] == {"class solution": 1}
    # slugify (doctest), has_close_elements (the leak, doctest), clamp twice; wrong_total fails its doctest
    assert m["mined_pairs"] == 4 and m["mined_doctest_validated"] == 2 and m["dropped_by_reason"]["doctest_failed"] == 1
    assert m["mbpp_train_pairs"] >= 370 and m["synthetic"]["snippet"]["kept"] == 2
    assert m["synthetic_docs"] == 6 and m["mined_snippet_docs"] == 2  # 2 seeds x (snippet, textbook) + 2 doctested functions
    assert m["sft_stage1"]["duplicates_dropped"] == 1 and m["sft_stage1"]["rows"] == 3
    assert m["sft_stage2"]["by_source"]["educational"] == 1  # two seeds, one identical sample: deduplicated
    stage1 = read_table(tmp_path / "curate" / "sft_stage1")
    assert {"instruction", "output", "source", "validation"} <= set(stage1.column_names)
    assert read_table(tmp_path / "curate" / "dropped").num_rows == m["rows_dropped"]
    assert json.dumps(m)  # metrics are JSON

    calls = teacher.calls
    folders = ["algorithmic", "synthetic", "instructions", "dropped", "sft_stage1", "sft_stage1/dropped", "sft_stage2"]
    manifests = {f: read_manifest(tmp_path / "curate" / f) for f in folders}
    again = curate(params, tmp_path / "sample", tmp_path / "curate", NullTracker(), teacher_backend=teacher)
    assert teacher.calls == calls and again["synthetic"]["snippet"]["resumed"] == 2  # nothing regenerated
    # a re-run is deterministic: the same content-addressed parts, so the same rows in the same order
    assert {f: read_manifest(tmp_path / "curate" / f) for f in folders} == manifests
    assert {k: v for k, v in again.items() if k != "synthetic"} == {k: v for k, v in m.items() if k != "synthetic"}

    d = decontaminate.run(params, None, tmp_path / "decontaminate", NullTracker())
    assert d["parts"]["pretrain"]["rows_dropped"] == 1 and d["hits_by_benchmark"]["humaneval"] >= 1
    assert d["parts"]["algorithmic"]["rows_kept"] == 1 and d["parts"]["synthetic"]["rows_in"] == 6
    assert d["parts"]["synthetic"]["rows_dropped"] == 1  # the leaked has_close_elements, also a mined snippet
    sets = load_sets([f"parquet:{tmp_path / 'decontaminate' / 'sft_stage1'}"])
    assert len(sets) == 2 and all(set(r) == {"instruction", "output"} for r in sets)
