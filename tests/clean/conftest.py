"""Shared literal inputs of the clean tests."""

import pytest

GOOD_PY = "\n".join(
    ["import os", "", "", "def total_size(paths):", '    """Sum file sizes."""', "    size = 0", "    for path in paths:",
     "        if os.path.exists(path):", "            size += os.path.getsize(path)", "    return size", "",
     "", "class Walker:", "    def __init__(self, root):", "        self.root = root", "        self.seen = set()", "",
     "    def run(self):", "        for name in os.listdir(self.root):", "            self.seen.add(name)",
     "        return len(self.seen)", ""]
)


@pytest.fixture
def good_py() -> str:
    return GOOD_PY
