"""The algorithmic corpus: files containing the paper's keywords (case-insensitive, configurable)."""

from __future__ import annotations

from tasks.curate.stage import algorithmic_batches

from .conftest import doc, write_docs

TEXTS = [
    "class Solution:\n    def twoSum(self, nums, target):\n        pass\n",
    "# LeetCode 1: two sum\ndef f():\n    pass\n",
    "def solution(a, b):\n    return a + b\n",
    "def solve(a):\n    return a\n",
    "import os\nprint(os.getcwd())\n",
]


def test_keyword_files_are_selected_with_the_keyword_found(tmp_path):
    folder = write_docs(tmp_path / "docs", [doc(t) for t in TEXTS])
    tables = list(algorithmic_batches(folder, ("leetcode", "def solution", "class solution"), 2))
    found = [k for t in tables for k in t["keyword"].to_pylist()]
    assert found == ["class solution", "leetcode", "def solution"]


def test_keywords_are_configurable(tmp_path):
    folder = write_docs(tmp_path / "docs", [doc(t) for t in TEXTS])
    tables = list(algorithmic_batches(folder, ("def solve(",), 100))
    assert [t for tb in tables for t in tb["text"].to_pylist()] == [TEXTS[3]]
