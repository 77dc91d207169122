"""Teacher-free instruction pairs: module-level Python functions with docstrings become 'write a function' tasks.

For every Python document, `mine_batch` parses the file with `ast` and looks at each module-level `def` that
has a docstring. A candidate becomes a pair

    instruction: "Write a Python function `name(args) -> ret` that <docstring summary>." + the docstring's
                 details (parameters, examples), cut to `max_instruction_chars`
    output:      the import lines the function needs (from its module) + the function's source

when it is not decorated, not a test, its summary has `min_summary_words`, its body `min_body_lines` after the
docstring, it is at most `max_function_lines` long, and it uses at most `max_free_names` names that are
neither its own, builtins nor imported by its module (0 = self-contained given its imports). The output must
parse. Candidates with doctest examples (`>>>`) also get a `program` that runs them with the stdlib
`doctest` runner; the stage executes those in the evaluation sandbox and keeps only the passing ones
(`validation` = doctest), the others are kept on the parse check alone (`validation` = parsed).

Rejected candidates carry `drop_reason` (decorated, test_function, short_docstring, short_body,
long_function, free_names, parse_error; doctest_* are added by the stage).
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import warnings

import pyarrow as pa

from tasks.curate.config import CurateConfig

BUILTINS = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__builtins__"}

CANDIDATE_SCHEMA = pa.schema([
    ("id", pa.string()), ("instruction", pa.string()), ("output", pa.string()), ("source", pa.string()),
    ("origin", pa.string()), ("validation", pa.string()), ("program", pa.string()), ("drop_reason", pa.string()),
])
"""A candidate instruction pair: `origin` says where it came from (repo/path::function, mbpp/601, seed id),
`program` is what the sandbox must pass (null: nothing to execute)."""

VERBS = frozenset("""
accept add append apply ask attach build cache calculate call check clean collect compare compile compute construct convert copy count create
decode decorate detect determine emit encode ensure escape evaluate expand extract fetch filter find format
generate get guess handle import infer initialise initialize insert inspect iterate join list load locate look make map
mark match merge move normalise
normalize open pack parse prepare print process produce quote raise read register remove render replace resolve
restore retrieve return reverse rewrite run save scan search select send serialize set show skip sort split start
stop store strip take test transform translate truncate try turn unpack unquote unwrap update use validate verify
visit walk wrap write yield
""".split())
"""Imperative verbs a docstring summary often starts with ('Return the ...' -> 'that returns the ...')."""


def third_person(verb: str) -> str:
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def as_clause(summary: str) -> str | None:
    """'Return the sum.' -> 'returns the sum.'; None when the summary does not start with a known verb."""
    first, _, rest = summary.partition(" ")
    word = first.lower()
    if word in VERBS:
        verb = third_person(word)
    elif word.endswith("s") and word[:-1] in VERBS or word.endswith("es") and word[:-2] in VERBS or \
            word.endswith("ies") and word[:-3] + "y" in VERBS:
        verb = word
    else:
        return None
    return f"{verb} {rest}".strip()


def signature(fn: ast.FunctionDef) -> str:
    sig = f"{fn.name}({ast.unparse(fn.args)})"
    return f"{sig} -> {ast.unparse(fn.returns)}" if fn.returns is not None else sig


def instruction_for(fn: ast.FunctionDef, docstring: str, max_chars: int) -> str:
    summary, _, details = docstring.strip().partition("\n\n")
    summary = " ".join(summary.split()).rstrip(".") + "."
    clause = as_clause(summary)
    head = f"Write a Python function `{signature(fn)}` that {clause}" if clause else \
        f"Write a Python function `{signature(fn)}` as documented: {summary}"
    details = details.strip()
    if details:
        head += "\n\n" + (details if len(details) <= max_chars else details[:max_chars].rsplit("\n", 1)[0] + "\n...")
    return head


def module_imports(tree: ast.Module) -> dict[str, str]:
    """Name bound by each absolute module-level import -> the import line binding just that name."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                found.setdefault(bound, ast.unparse(ast.Import(names=[alias])))
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module != "__future__":
            for alias in node.names:
                if alias.name != "*":
                    found.setdefault(alias.asname or alias.name, ast.unparse(ast.ImportFrom(module=node.module, names=[alias], level=0)))
    return found


def free_names(fn: ast.FunctionDef) -> set[str]:
    """Names the function reads but neither binds (parameters, assignments, inner defs, imports) nor gets from
    builtins, and the names it declares `global` or `nonlocal` (module state it depends on)."""
    bound = {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)} | {fn.name}
    loaded: set[str] = set()
    declared: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not fn:
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared.update(node.names)
    return (loaded - bound - BUILTINS) | (declared - BUILTINS)


def doctest_program(name: str, output: str) -> str:
    """A program that defines the function and runs its docstring examples; exits 1 when one fails or none ran."""
    return (f"{output}\n\n"
            "import doctest as _doctest, sys as _sys\n"
            "_runner = _doctest.DocTestRunner(optionflags=_doctest.ELLIPSIS | _doctest.NORMALIZE_WHITESPACE)\n"
            f"for _test in _doctest.DocTestFinder(recurse=False).find({name}, {name!r}, module=False, globs=dict(globals())):\n"
            "    _runner.run(_test)\n"
            "_result = _runner.summarize(verbose=False)\n"
            "if _result.failed or not _result.attempted:\n"
            "    _sys.exit(1)\n")


def reject_reason(fn: ast.FunctionDef, docstring: str, imports: dict[str, str], cfg: CurateConfig) -> str | None:
    if fn.decorator_list:
        return "decorated"
    if fn.name.startswith("test"):
        return "test_function"
    if len(docstring.strip().partition("\n\n")[0].split()) < cfg.min_summary_words:
        return "short_docstring"
    if fn.end_lineno - fn.body[0].end_lineno < cfg.min_body_lines:
        return "short_body"
    if fn.end_lineno - fn.lineno + 1 > cfg.max_function_lines:
        return "long_function"
    if len(free_names(fn) - set(imports)) > cfg.max_free_names:
        return "free_names"
    return None


def _parses(code: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(code)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def pair_id(doc_id: str, fn_name: str, lineno: int) -> str:
    """Id of a mined pair: its document's id (which tells versions of one file apart), the function and its line
    (a module may define one name twice)."""
    return hashlib.sha256(f"{doc_id}::{fn_name}:{lineno}".encode("utf-8", "surrogateescape")).hexdigest()[:16]


def mine_text(text: str, origin: str, cfg: CurateConfig, doc_id: str = "") -> list[dict]:
    """Candidate rows of one Python file (empty when it does not parse); `doc_id` is the document's id."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    imports = module_imports(tree)
    lines = text.split("\n")
    rows = []
    for fn in tree.body:
        docstring = ast.get_docstring(fn) if isinstance(fn, ast.FunctionDef) else None
        if not docstring:
            continue
        reason = reject_reason(fn, docstring, imports, cfg)
        needed = sorted({imports[n] for n in free_names(fn) if n in imports})
        source = "\n".join(lines[fn.lineno - 1:fn.end_lineno]).rstrip()  # module level: starts at column 0
        output = "\n".join(needed) + ("\n\n" if needed else "") + source
        if reason is None and not _parses(output):
            reason = "parse_error"
        has_doctest = reason is None and ">>>" in docstring
        key = f"{origin}::{fn.name}"
        rows.append({"id": pair_id(doc_id or origin, fn.name, fn.lineno),
                     "instruction": instruction_for(fn, docstring, cfg.max_instruction_chars), "output": output,
                     "source": "mined", "origin": key, "validation": None if has_doctest else "parsed",
                     "program": doctest_program(fn.name, output) if has_doctest else None, "drop_reason": reason})
    return rows


def mine_batch(batch: pa.Table, *, cfg: CurateConfig) -> pa.Table:
    """Candidate rows of the Python documents of a batch (columns id, text, repo, path, lang)."""
    rows: list[dict] = []
    for doc_id, text, repo, path, lang in zip(*(batch[c].to_pylist() for c in ("id", "text", "repo", "path", "lang"))):
        if lang == "python" and text:
            rows += mine_text(text, f"{repo}/{path}", cfg, doc_id)
    return pa.Table.from_pylist(rows, schema=CANDIDATE_SCHEMA)
