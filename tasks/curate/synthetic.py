"""Synthetic data from a teacher model, kept only when its tests pass in the sandbox (spec §6, §8).

Three kinds, each with its prompt in `tasks/curate/prompts/<kind>.txt` (version = kind + the first 8 hex
digits of the file's sha256, so editing a prompt starts a new version and never mixes with old samples):

- snippet (annealing, "high-quality code snippets"): a self-contained function and its asserts, two code blocks;
- textbook (annealing, "code textbooks" / Q&A): an explanation of the seed with code blocks; no tests, so it
  is kept when it has code and every block parses;
- educational (SFT stage 2, "Educational-Instruct"): `### Problem`, `### Solution`, `### Tests` sections.

A sample with tests runs as `solution + tests` in the evaluation sandbox (`execution.py`: timeouts, crashes,
fork/kill attempts and early `sys.exit(0)` all fail) and is kept only when it passes.

Generation goes through any evaluation backend (`generate(prompts, chat=, stops=, n=)`): the seeds are cut
into batches of `batch_size` prompts; after each batch its samples are tested and written, atomically, as
one Parquet file of the persistent `cache_dir`, keyed by (kind, prompt version, teacher, generation seed,
seed document, sample index). A restart reads the store and asks the teacher only for keys it lacks, so a
killed run regenerates nothing it finished, kept or not.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.curate.config import TeacherConfig
from tasks.curate.execution import run_programs

log = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).with_name("prompts")
_CODE_BLOCK = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)```", re.DOTALL)
_SECTION = re.compile(r"^#{2,4}[ \t]*(problem|solution|tests?)[ \t]*:?[ \t]*$", re.IGNORECASE | re.MULTILINE)
_FIELD = re.compile(r"\{(\w+)\}")

SAMPLE_SCHEMA = pa.schema([
    ("key", pa.string()), ("kind", pa.string()), ("prompt_version", pa.string()), ("teacher", pa.string()),
    ("gen_seed", pa.int64()), ("seed_id", pa.string()), ("seed_origin", pa.string()), ("response", pa.string()),
    ("instruction", pa.string()), ("output", pa.string()), ("tests", pa.string()), ("num_tests", pa.int64()),
    ("status", pa.string()), ("detail", pa.string()),
])
"""One finished sample: `status` passed (kept) or why not (no_code, too_few_tests, parse_error, failed,
timeout, exited_early, error)."""


@dataclass(frozen=True)
class Seed:
    id: str
    text: str
    origin: str
    """Where the seed code comes from (repo/path or repo/path::function)."""


@dataclass(frozen=True)
class Prompt:
    kind: str
    template: str

    @property
    def version(self) -> str:
        return f"{self.kind}-{hashlib.sha256(self.template.encode()).hexdigest()[:8]}"

    def render(self, **fields) -> str:
        """Fill `{name}` placeholders in one pass (seed code with braces is inserted verbatim)."""
        return _FIELD.sub(lambda m: str(fields[m.group(1)]) if m.group(1) in fields else m.group(0), self.template)


def load_prompt(kind: str, folder: Path = PROMPTS_DIR) -> Prompt:
    path = folder / f"{kind}.txt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no prompt for synthetic kind '{kind}'")
    return Prompt(kind, path.read_text())


def sample_key(kind: str, version: str, teacher: str, gen_seed: int, seed_id: str, index: int) -> str:
    return hashlib.sha256(f"{kind}|{version}|{teacher}|{gen_seed}|{seed_id}|{index}".encode()).hexdigest()[:20]


def code_blocks(text: str) -> list[str]:
    return [b.strip("\n") for b in _CODE_BLOCK.findall(text)]


def sections(text: str) -> dict[str, str]:
    """`### Problem` / `### Solution` / `### Tests` bodies by lower-cased name (tests for test)."""
    marks = list(_SECTION.finditer(text))
    out = {}
    for m, nxt in zip(marks, marks[1:] + [None]):
        name = m.group(1).lower()
        out["tests" if name.startswith("test") else name] = text[m.end(): nxt.start() if nxt else len(text)].strip()
    return out


def count_asserts(code: str) -> int | None:
    """Assert statements in the code; None when it does not parse."""
    try:
        return sum(isinstance(n, ast.Assert) for n in ast.walk(ast.parse(code)))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def parse_response(kind: str, text: str, min_tests: int) -> dict:
    """instruction / output / tests / num_tests of a response, or a `status` saying why it cannot be used."""
    if kind == "textbook":
        blocks = code_blocks(text)
        if not blocks:
            return {"status": "no_code"}
        if not all(_parses(b) for b in blocks):
            return {"status": "parse_error"}
        return {"output": text.strip(), "tests": None, "num_tests": 0}
    if kind == "snippet":
        blocks = code_blocks(text)
        if len(blocks) < 2:
            return {"status": "no_code"}
        solution, tests, problem = blocks[0], "\n\n".join(blocks[1:]), None
    else:
        parts = sections(text)
        solution_blocks, test_blocks = code_blocks(parts.get("solution", "")), code_blocks(parts.get("tests", ""))
        if not parts.get("problem") or not solution_blocks or not test_blocks:
            return {"status": "no_code"}
        solution, tests, problem = solution_blocks[0], "\n\n".join(test_blocks), parts["problem"]
    if not _parses(solution):
        return {"status": "parse_error"}
    num_tests = count_asserts(tests)
    if num_tests is None:
        return {"status": "parse_error"}
    if num_tests < min_tests:
        return {"status": "too_few_tests", "num_tests": num_tests}
    return {"instruction": problem, "output": solution, "tests": tests, "num_tests": num_tests}


class SampleStore:
    """Finished samples of one kind under `<cache_dir>/<kind>/`, one Parquet file per finished batch."""

    def __init__(self, cache_dir: str | Path, kind: str):
        self.folder = Path(cache_dir) / kind

    def read(self) -> pa.Table:
        files = sorted(self.folder.glob("batch-*.parquet")) if self.folder.exists() else []
        if not files:
            return SAMPLE_SCHEMA.empty_table()
        return pa.concat_tables([pq.read_table(f, schema=SAMPLE_SCHEMA) for f in files])

    def keys(self) -> set[str]:
        return set(self.read()["key"].to_pylist())

    def write(self, rows: list[dict]) -> None:
        """Store one finished batch atomically (a killed run leaves either the whole batch or nothing)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"batch-{time.time_ns():020d}-{uuid.uuid4().hex[:6]}.parquet"
        tmp = self.folder / f".{name}.tmp"
        pq.write_table(pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA), tmp)
        tmp.replace(self.folder / name)


def program_with_tests(solution: str, tests: str) -> str:
    return f"{solution}\n\n{tests}\n"


def judge(kind: str, responses: list[str], cfg: TeacherConfig, num_workers: int | None) -> list[dict]:
    """Parse every response and run those with tests in the sandbox; one result dict per response."""
    parsed = [parse_response(kind, r, cfg.min_tests.get(kind, 1)) for r in responses]
    runnable = [i for i, p in enumerate(parsed) if "status" not in p and p["tests"] is not None]
    verdicts = run_programs([program_with_tests(parsed[i]["output"], parsed[i]["tests"]) for i in runnable],
                            timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb, num_workers=num_workers)
    for i, v in zip(runnable, verdicts):
        parsed[i].update(status=v.status, detail=v.detail)
    for p in parsed:
        if "status" not in p:  # textbook: nothing to execute, every code block parses
            p.update(status="passed", detail="no tests; code blocks parse")
    return parsed


def generate_kind(kind: str, seeds: Sequence[Seed], backend, cfg: TeacherConfig, *, teacher: str,
                  num_workers: int | None = None, prompts_dir: Path = PROMPTS_DIR) -> dict:
    """Generate (what the store lacks), test and store samples of one kind; return the finished rows for these
    seeds and the counts of this run."""
    prompt = load_prompt(kind, prompts_dir)
    store = SampleStore(cfg.cache_dir, kind)
    wanted = [(s, j, sample_key(kind, prompt.version, teacher, cfg.seed, s.id, j))
              for s in seeds for j in range(cfg.samples_per_seed)]
    done = store.keys()
    todo_seeds = list(dict.fromkeys(s for s, _, key in wanted if key not in done))
    generated, seconds = 0, 0.0
    for start in range(0, len(todo_seeds), cfg.batch_size):
        batch = todo_seeds[start:start + cfg.batch_size]
        prompts = [prompt.render(seed=s.text[: cfg.max_seed_chars], min_tests=cfg.min_tests.get(kind, 1)) for s in batch]
        started = time.monotonic()
        responses = backend.generate(prompts, chat=bool(getattr(backend, "has_chat_template", True)), stops=(),
                                     n=cfg.samples_per_seed)
        seconds += time.monotonic() - started
        rows = []
        flat = [(s, j, texts[j]) for s, texts in zip(batch, responses) for j in range(cfg.samples_per_seed)]
        for (s, j, text), result in zip(flat, judge(kind, [t for _, _, t in flat], cfg, num_workers)):
            key = sample_key(kind, prompt.version, teacher, cfg.seed, s.id, j)
            if key in done:
                continue
            rows.append({"key": key, "kind": kind, "prompt_version": prompt.version, "teacher": teacher,
                         "gen_seed": cfg.seed, "seed_id": s.id, "seed_origin": s.origin, "response": text,
                         "instruction": result.get("instruction"), "output": result.get("output"),
                         "tests": result.get("tests"), "num_tests": result.get("num_tests"),
                         "status": result["status"], "detail": result.get("detail")})
        store.write(rows)
        generated += len(rows)
        log.info("%s: %d / %d seeds generated and tested", kind, start + len(batch), len(todo_seeds))
    order = {key: i for i, (_, _, key) in enumerate(wanted)}
    finished = {r["key"]: r for r in store.read().to_pylist() if r["key"] in order}
    rows = sorted(finished.values(), key=lambda r: order[r["key"]])
    keys = set(order)
    return {"kind": kind, "prompt_version": prompt.version, "rows": rows, "generated": generated,
            "generation_seconds": round(seconds, 3), "resumed": len(keys & done)}
