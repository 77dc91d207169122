"""Run OpenCoder's released filter (`opc_data_filtering`) over files, one JSON line per file.

This script runs INSIDE the reference virtualenv that `harness.py` builds (the versions of the released
`environment.yml`), with the released checkout as working directory and first on `sys.path`; it imports nothing
from this project. It does what the released example notebook (`examples/data_cleaning_example.ipynb`) does for
each file: read it with `open(path, 'r')`, route it with `utils.preprocessing.get_program_lang` /
`get_doc_type`, call `ComputeCodeQualitySignal.evaluate` and then `CodeFilter.evaluate`. Differences from the
notebook, all on the caller's side: the natural language is forced (`--lang`, default `en`; the notebook asks a
fastText model that is not released), routing uses the full file name (the notebook passes the stem, which
hides `CMakeLists.txt`-style names), and the p=0.8 rules (`random.random() > 0.2` inside the released lambdas)
are evaluated twice: once with `random` seeded per file (`random.seed("<seed>:<path>")`) and once forced
(`random.random()` returns 1.0, so only the rule's deterministic condition decides).

    python released_runner.py --root FILES_DIR --list PATHS.txt --output OUT.jsonl [--seed 0] [--lang en]

Each line: path, program_lang, doc_type, signals (every computed value), signal_errors (the released
`err_msg`: a signal that raised or timed out; the released code then skips the rest of that signal group),
kept_forced / fired_forced and kept_seeded / fired_seeded (fired = the rules whose lambda returned True),
and crash (an exception outside the released code's own handling, e.g. a file that is not UTF-8), else null.
"""

import argparse
import json
import os
import random
import sys
import traceback


class ForcedDraw:
    """Stands in for the `random` module inside `pipeline.compute_filtering`: every draw is 1.0 (> 0.2)."""

    @staticmethod
    def random() -> float:
        return 1.0


def file_attributes(root: str, rel: str, get_program_lang, get_doc_type) -> dict:
    """The notebook's `generate_attributes_df` for one file (full file name for routing, see the module doc)."""
    file_path = os.path.join(root, rel)
    file = os.path.basename(rel)
    ext = os.path.splitext(file)[1][1:]
    with open(file_path, "r", encoding="utf-8") as f:
        text = f.read()
    program_lang = get_program_lang(file, ext)
    return dict(text=text, filename=file, ext=ext, file_size_in_byte=os.path.getsize(file_path),
                program_lang=program_lang, doc_type=get_doc_type(program_lang))


def run_filter(code_filter, compute_filtering, draw, row: dict, lang: str, quality_signal: str) -> tuple[bool, list]:
    compute_filtering.random = draw
    result = json.loads(code_filter.evaluate(doc_type=row["doc_type"], lang=lang, program_lang=row["program_lang"],
                                             quality_signal=quality_signal))
    hits = json.loads(result.get("hit_map", "{}"))
    return result["effective"] == "1", sorted(name for name, hit in hits.items() if hit)


def evaluate_file(root: str, rel: str, seed: int, lang: str, released) -> dict:
    ccqs, code_filter, compute_filtering, get_program_lang, get_doc_type = released
    out = dict(path=rel, program_lang=None, doc_type=None, signals={}, signal_errors={}, crash=None)
    try:
        row = file_attributes(root, rel, get_program_lang, get_doc_type)
    except Exception as e:  # the notebook would stop here; we record it and go on
        out["crash"] = f"read: {type(e).__name__}: {e}"
        return out
    out.update(program_lang=row["program_lang"], doc_type=row["doc_type"])
    qs = json.loads(ccqs.evaluate(text=row["text"], filename=row["filename"], lang=lang, ext=row["ext"],
                                  file_size_in_byte=row["file_size_in_byte"], program_lang=row["program_lang"],
                                  doc_type=row["doc_type"]))
    errors = json.loads(qs.get("err_msg", "{}"))
    if "total_crush" in errors:
        out["crash"] = "compute_qs: " + errors["total_crush"][-2000:]
        return out
    out["signal_errors"] = {name: msg[-600:] for name, msg in errors.items()}
    quality_signal = qs.get("quality_signal", "")
    out["signals"] = json.loads(quality_signal) if quality_signal else {}
    out["kept_forced"], out["fired_forced"] = run_filter(code_filter, compute_filtering, ForcedDraw, row, lang, quality_signal)
    random.seed(f"{seed}:{rel}")
    out["kept_seeded"], out["fired_seeded"] = run_filter(code_filter, compute_filtering, random, row, lang, quality_signal)
    return out


def load_released():
    """Import the released pipeline from the working directory (the checkout)."""
    sys.path.insert(0, os.getcwd())
    import pipeline.compute_filtering as compute_filtering
    from pipeline.compute_filtering import CodeFilter
    from pipeline.compute_quality_signals import ComputeCodeQualitySignal
    from utils.preprocessing import get_doc_type, get_program_lang

    return ComputeCodeQualitySignal(), CodeFilter(), compute_filtering, get_program_lang, get_doc_type


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--list", required=True, help="file with one path (relative to --root) per line")
    parser.add_argument("--output", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lang", default="en")
    args = parser.parse_args()
    released = load_released()
    with open(args.list, encoding="utf-8") as f:
        paths = [line.rstrip("\n") for line in f if line.strip()]
    devnull = open(os.devnull, "w")
    with open(args.output, "w", encoding="utf-8") as out:
        for rel in paths:
            stdout, sys.stdout = sys.stdout, devnull  # the released code prints its warnings
            try:
                record = evaluate_file(args.root, rel, args.seed, args.lang, released)
            except Exception:
                record = dict(path=rel, crash="harness: " + traceback.format_exc()[-2000:])
            finally:
                sys.stdout = stdout
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
