"""The algorithmic corpus: files containing the paper's keywords (case-insensitive, configurable)."""

from __future__ import annotations

from tasks.common.shards import read_table
from tasks.curate.scan import algorithmic_rows

from .conftest import doc, write_docs

TEXTS = [
    "class Solution:\n    def twoSum(self, nums, target):\n        pass\n",
    "# LeetCode 1: two sum\ndef f():\n    pass\n",
    "def solution(a, b):\n    return a + b\n",
    "def solve(a):\n    return a\n",
    "import os\nprint(os.getcwd())\n",
]


def test_keyword_files_are_selected_with_the_keyword_found(tmp_path):
    table = read_table(write_docs(tmp_path / "docs", [doc(t) for t in TEXTS]))
    found = algorithmic_rows(table, ("leetcode", "def solution", "class solution"))["keyword"].to_pylist()
    assert found == ["class solution", "leetcode", "def solution"]


def test_keywords_are_configurable(tmp_path):
    table = read_table(write_docs(tmp_path / "docs", [doc(t) for t in TEXTS]))
    assert algorithmic_rows(table, ("def solve(",))["text"].to_pylist() == [TEXTS[3]]
