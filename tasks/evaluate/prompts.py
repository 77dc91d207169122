"""Prompting and post-processing, as OpenCodeEval does it (spec §10), as small pure functions.

- `refine_text`: tabs to 4 spaces, CRLF to LF, stripped, one trailing newline.
- `stop_strings(model_type)`: base models stop at the general stops plus the completion stops; chat models
  at the general stops only.
- `chat_prompt`: one user turn through the tokenizer's chat template (the `### Instruction:` template for
  checkpoint paths, as OpenCodeEval); completion-type tasks asked of a chat model are wrapped in the
  "self-contained Python script in a markdown code block" instruction first (`wrap_completion_task`).
- `sanitize(text, entry_point)`: markdown code-block extraction, the longest syntactically valid snippet,
  then only imports and the definitions reachable from the entry point (so trailing junk, test code and
  `if __name__` blocks are cut after the entry point's end).

Deviations from OpenCodeEval, chosen on purpose: functions without a `return` are kept (OpenCodeEval drops
them); for instruction-type prompts of a base model only the generated text is sanitized, not prompt +
generation (otherwise the longest valid snippet could be a few-shot example instead of the answer).
"""

from __future__ import annotations

import ast
import re
import warnings

GENERAL_STOPS = ("<|endoftext|>", "<|endofmask|>", "</s>", "\nif __name__", "\ndef main(", "\nprint(", "\n```\n")
COMPLETION_STOPS = ("\ndef ", "\nclass ", "\nimport ", "\nfrom ", "\nassert ")
CHAT_PREFIX = "Please provide a self-contained Python script that solves the following problem in a markdown code block:\n```python\n"
CHAT_SUFFIX = "\n```\n"
IMPORT_HEADER = (
    "import math\nimport re\nimport sys\nimport copy\nimport datetime\nimport itertools\nimport collections\n"
    "import heapq\nimport functools\nimport hashlib\nimport numpy\nimport numpy as np\nimport string\n"
    "from typing import *\nfrom collections import *\n"
)
"""OpenCodeEval's fixed import header, prepended to every program before execution."""

_CODE_BLOCK = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)(?:\n```|$)", re.DOTALL)
MAX_SNIPPET_LINES = 200
MAX_PARSES = 400


def refine_text(text: str) -> str:
    return text.replace("\t", "    ").replace("\r\n", "\n").replace("\r", "\n").strip() + "\n"


def stop_strings(model_type: str) -> tuple[str, ...]:
    return GENERAL_STOPS + COMPLETION_STOPS if model_type == "base" else GENERAL_STOPS


def truncate_at_stop(text: str, stops: tuple[str, ...]) -> str:
    """The prefix of a generation that ends at its first stop string."""
    cut = min((i for i in (text.find(s) for s in stops) if i != -1), default=len(text))
    return text[:cut]


def wrap_completion_task(prompt: str) -> str:
    return refine_text(CHAT_PREFIX + prompt + CHAT_SUFFIX)


def chat_prompt(prompt: str, tokenizer, name_or_path: str = "") -> str:
    """One user turn rendered with the tokenizer's chat template (BOS stripped: the tokenizer adds it)."""
    if any(key in name_or_path for key in ("ckpt", "checkpoint", "ckp")):
        return f"### Instruction:\n{prompt.strip()}\n### Response:\n"
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    bos = getattr(tokenizer, "bos_token", None)
    return text[len(bos):] if bos and text.startswith(bos) else text


def extract_code_block(text: str) -> str:
    """The first markdown code block's body, or the text itself when it has none."""
    if "```" not in text:
        return text
    match = _CODE_BLOCK.search(text)
    return match.group(1) if match else text.replace("```", "")


def _parses(code: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and literals in generated text are not our news
            ast.parse(code)
        return True
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False


def longest_valid_code(text: str) -> str:
    """The contiguous run of lines with the most non-blank lines that parses (whole text first).

    OpenCodeEval searches every (start, end) pair (quadratic in parses); we only start at top-level lines
    (no indentation: `def`, `class`, `import`, statements) and scan ends downwards, pruning runs that cannot beat
    the best so far, within a budget of `MAX_PARSES` parses: the same answer on model output, in milliseconds.
    """
    if _parses(text):
        return text
    lines = text.splitlines()[:MAX_SNIPPET_LINES]
    nonblank = [0]
    for ln in lines:
        nonblank.append(nonblank[-1] + bool(ln.strip()))
    best, best_count, budget = "", 0, MAX_PARSES
    for start, first in enumerate(lines):
        if not first.strip() or first[0] in " \t":
            continue
        for end in range(len(lines), start, -1):
            count = nonblank[end] - nonblank[start]
            if count <= best_count:
                break
            budget -= 1
            if budget < 0:
                return best
            snippet = "\n".join(lines[start:end])
            if _parses(snippet):
                best, best_count = snippet, count
                break
    return best


def _names_used(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def _definition_name(node: ast.stmt) -> str | None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    return None


def sanitize(text: str, entry_point: str | None = None) -> str:
    """Clean generated code: code block, longest valid snippet, imports + definitions reachable from the entry point."""
    try:
        return _sanitize(text, entry_point)
    except (RecursionError, ValueError, SyntaxError, MemoryError):
        return ""


def _sanitize(text: str, entry_point: str | None) -> str:
    code = longest_valid_code(refine_text(extract_code_block(text)))
    if not code.strip():
        return ""
    tree = ast.parse(code)
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    definitions: dict[str, ast.stmt] = {}
    for node in tree.body:
        name = _definition_name(node)
        if name:
            definitions[name] = node
    keep = set(definitions)
    if entry_point and entry_point in definitions:
        keep, todo = set(), [entry_point]
        while todo:
            name = todo.pop()
            if name in keep or name not in definitions:
                continue
            keep.add(name)
            todo.extend(_names_used(definitions[name]) - keep)
    parts = [ast.unparse(n) for n in imports] + [ast.unparse(n) for name, n in definitions.items() if name in keep]
    return "\n".join(parts)
