"""Prompting and post-processing exactly as OpenCodeEval (OpenCoder-llm/OpenCoder-llm 6131c47) does it.

- `refine_text`: tabs to 4 spaces, CRLF to LF, stripped, one trailing newline.
- `stop_strings(model_type)`: base models stop at the general stops plus the completion stops; chat models
  at the general stops only.
- `chat_prompt`: one user turn through the tokenizer's chat template (the `### Instruction:` template for
  checkpoint paths, as OpenCodeEval); completion-type tasks asked of a chat model are wrapped in the
  "self-contained Python script in a markdown code block" instruction first (`wrap_completion_task`).
- `cut_at_end_of_sequence`: generated text ends at the first end-of-sequence token text (`<|im_end|>`, ...),
  which vLLM never returns and HF and some servers do; every backend applies it.
- `sanitize(text, entry_point)`: OpenCodeEval's `sanitize.py` rule for rule: within the first 100 lines, the
  contiguous run of lines with the most non-blank lines that parses (the earliest such run; markdown fences are
  not extracted first, so the longest parsing run wins over the first fenced block), then its top-level imports,
  classes, assignments to a name and functions that contain a `return` (functions without one are dropped), and
  with an entry point only the definitions reachable from it through OpenCodeEval's dependency walk (names and
  attribute names, not descending into an attribute's object).

Deviation from OpenCodeEval, chosen on purpose: for instruction-type prompts of a base model only the generated
text is sanitized, not prompt + generation (OpenCodeEval's longest valid snippet is then often a few-shot
example, so a short answer is replaced by the first shot's solution).
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
MAX_SNIPPET_LINES = 100
"""OpenCodeEval's `extract_longest_valid_code` looks at the first 100 lines only."""
END_OF_SEQUENCE_TEXTS = ("<|im_end|>", "<|endoftext|>", "<|end_of_text|>", "<|eot_id|>", "<|EOT|>", "</s>")
"""Texts of the usual end-of-sequence tokens (chat turn ends included)."""


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


def cut_at_end_of_sequence(text: str, extra: tuple[str, ...] = ()) -> str:
    """The text before the first end-of-sequence token text (`END_OF_SEQUENCE_TEXTS` plus a tokenizer's own)."""
    cut = min((i for i in (text.find(s) for s in END_OF_SEQUENCE_TEXTS + tuple(t for t in extra if t)) if i != -1),
              default=len(text))
    return text[:cut]


def extract_code_block(text: str) -> str:
    """The first markdown code block's body, or the text itself when it has none (not used by `sanitize`:
    OpenCodeEval does not extract blocks)."""
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
    """OpenCodeEval's `extract_longest_valid_code`, same answer, fewer parses.

    OpenCodeEval tries every (start, end) pair of the first 100 lines, start then end ascending, and keeps a run
    only when it has strictly more non-blank lines than the best so far: the answer is the parsing run with the
    most non-blank lines, the earliest one among equals. Blank lines at either end of a run change neither
    whether it parses nor its tree, so we try runs between non-blank lines only, by decreasing count and then by
    start, and stop at the first that parses: usually a handful of parses instead of ~5,000.
    """
    lines = text.splitlines()[:MAX_SNIPPET_LINES]
    rows = [i for i, ln in enumerate(lines) if ln.strip()]
    for count in range(len(rows), 0, -1):
        for a in range(len(rows) - count + 1):
            snippet = "\n".join(lines[rows[a]:rows[a + count - 1] + 1])
            if _parses(snippet):
                return snippet
    return ""


def _dependencies(node: ast.AST) -> set[str]:
    """OpenCodeEval's `get_deps` for one definition: Name ids and Attribute attrs, not descending into either."""
    deps, stack = set(), [node]
    while stack:
        for child in ast.iter_child_nodes(stack.pop()):
            if isinstance(child, ast.Name):
                deps.add(child.id)
            elif isinstance(child, ast.Attribute):
                deps.add(child.attr)
            else:
                stack.append(child)
    return deps


def _definition_name(node: ast.stmt) -> str | None:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Assign) and node.targets and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    return None


def _has_return(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Return) for n in ast.walk(node))


def reachable(entry_point: str, definitions: dict[str, ast.stmt]) -> set[str]:
    """Names reachable from the entry point through the definitions' dependencies (the entry point included)."""
    graph = {name: _dependencies(node) for name, node in definitions.items()}
    seen, todo = set(), [entry_point]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, set()) - seen)
    return seen


def sanitize(text: str, entry_point: str | None = None) -> str:
    """OpenCodeEval's `sanitize(text, entrypoint)`: longest parsing run, then imports + kept definitions."""
    try:
        return _sanitize(text, entry_point)
    except (RecursionError, ValueError, SyntaxError, MemoryError):
        return ""


def _sanitize(text: str, entry_point: str | None) -> str:
    code = longest_valid_code(refine_text(text))
    tree = ast.parse(code)
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    definitions: dict[str, ast.stmt] = {}
    for node in tree.body:
        name = _definition_name(node)
        if name and (not isinstance(node, ast.FunctionDef) or _has_return(node)):
            definitions[name] = node
    keep = reachable(entry_point, definitions) if entry_point else set(definitions)
    return "\n".join([ast.unparse(n) for n in imports] + [ast.unparse(n) for name, n in definitions.items() if name in keep])
