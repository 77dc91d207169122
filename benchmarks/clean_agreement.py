"""Clean-stage fidelity: our signals and keep/drop decisions against the released filter, run for real.

    python benchmarks/clean_agreement.py --reference PATH [--corpus DIR | --mirror ROOT] [--jobs 2]
    python benchmarks/clean_agreement.py --reference PATH --reference-output ref.jsonl   # reuse a reference run

PATH is a checkout of OpenCoder-llm/opc_data_filtering at the pinned commit (tools/reference_filter). The corpus
is the agreement corpus (`tools/agreement_corpus/manifest.yaml`), exported to `--corpus` (default
`~/.cache/cookbook/agreement_corpus`) from `--mirror` when the folder does not exist yet. The peer is the
released code: `tools.reference_filter.harness` runs it in its own virtualenv (its output is cached next to the
corpus, keyed by the commit and the file list). Our side is `clean_batch`, the function `cookbook clean` maps,
with the p=0.8 rules forced (`drop_probability` empty), every rule evaluated (`evaluate_all_rules`) and the
transformations off (the released filter does not rewrite files), on the text the released notebook reads
(`open(path, 'r')`). Signal values come from the same `Doc` the stage builds.

Printed: per-rule agreement (rules under 1.0), the disagreeing files by rule with both values, per-signal
value agreement, routing mismatches and the files the released code crashed on (with the exception; they are
left out of every ratio). Last line, JSON: decision_agreement, signal_agreement (share of (file, signal)
pairs equal within 1e-6, identical for booleans and None), rules_below_0.98, files, reference_crashes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.clean import routing  # noqa: E402
from tasks.clean.config import CleanConfig  # noqa: E402
from tasks.clean.signals import SIGNALS, Doc, Options, natural_language  # noqa: E402
from tasks.clean.stage import clean_batch  # noqa: E402
from tasks.common.shards import DOC_SCHEMA  # noqa: E402
from tools.agreement_corpus.fetch import CorpusError, fetch  # noqa: E402
from tools.reference_filter.harness import DEFAULT_CACHE, RELEASED_COMMIT, HarnessError, list_files, run_reference  # noqa: E402

DEFAULT_CORPUS = DEFAULT_CACHE.parent / "agreement_corpus"
TOLERANCE = 1e-6


def comparison_config() -> CleanConfig:
    """The released filter's decision rule: every rule scored, p=0.8 draws forced, no rewriting."""
    return CleanConfig(evaluate_all_rules=True, drop_probability={}, remove_copyright=False, redact_pii=False)


def read_like_notebook(path: Path) -> str | None:
    try:
        with open(path, "r", encoding="utf-8") as f:
            return f.read()
    except (UnicodeDecodeError, OSError):
        return None


def our_decisions(corpus: Path, paths: list[str], cfg: CleanConfig) -> dict[str, dict]:
    """path -> {kept, fired, config, signals} from clean_batch (decisions) and the stage's Doc (values)."""
    out = {}
    options = Options(cfg.fix_substring_matching, cfg.fix_var_zero, cfg.fix_prompt_comments_denominator, cfg.fix_alphabet_non_en)
    for start in range(0, len(paths), 256):
        chunk = paths[start:start + 256]
        texts = [read_like_notebook(corpus / p) for p in chunk]
        sizes = [os.path.getsize(corpus / p) for p in chunk]
        table = pa.Table.from_pylist([dict(id=p, path=p, text=t, size_bytes=s) for p, t, s in zip(chunk, texts, sizes)],
                                     schema=DOC_SCHEMA)
        for p, t, s, row in zip(chunk, texts, sizes, clean_batch(table, cfg).to_pylist()):
            lang, kind = routing.route(p)
            natural = natural_language(t) if (t and kind == "text") else "en"
            doc = Doc(text=t or "", path=p, lang=lang, natural_lang=natural, size_bytes=s, options=options)
            out[p] = dict(kept=row["drop_reason"] is None, fired=set(row["failed_rules"] or []), reason=row["drop_reason"],
                          config=row["rule_config"], lang=lang, doc=doc)
    return out


def same_value(ref, ours) -> bool:
    if ref is None or ours is None:
        return ref is None and ours is None
    if isinstance(ref, bool):
        return float(ref) == float(ours)
    return math.isclose(float(ref), float(ours), rel_tol=0, abs_tol=TOLERANCE)


def reference_records(args, corpus: Path) -> list[dict]:
    listing = hashlib.sha1("\n".join(f"{p}:{os.path.getsize(corpus / p)}" for p in list_files(corpus)).encode()).hexdigest()[:12]
    cached = args.reference_output or corpus.parent / f"reference-{RELEASED_COMMIT[:12]}-{listing}.jsonl"
    if not cached.exists() or args.rerun_reference:
        run_reference(args.reference, corpus, cached, jobs=args.jobs)
    elif args.reference:
        from tools.reference_filter.harness import checkout_commit

        commit, _ = checkout_commit(args.reference)
        if commit != RELEASED_COMMIT:
            raise HarnessError(f"reference checkout {args.reference} is at commit {commit[:12]}, expected {RELEASED_COMMIT[:12]}")
    return [json.loads(line) for line in cached.read_text(encoding="utf-8").splitlines()]


def compare(refs: list[dict], ours: dict[str, dict], cfg: CleanConfig, show: int) -> dict:
    crashes = [r for r in refs if r.get("crash") or r.get("signal_errors")]
    usable = [r for r in refs if not (r.get("crash") or r.get("signal_errors"))]
    decisions = sum(r["kept_forced"] == ours[r["path"]]["kept"] for r in usable)
    rule_total, rule_same = Counter(), Counter()
    rule_diffs: dict[str, list] = defaultdict(list)
    sig_total, sig_same = Counter(), Counter()
    sig_diffs: dict[str, list[str]] = defaultdict(list)
    routing_mismatch = []
    for r in usable:
        mine = ours[r["path"]]
        if (r["program_lang"] or "unknown") != mine["lang"]:
            routing_mismatch.append((r["path"], r["program_lang"], mine["lang"]))
            continue
        if mine["config"] is None:  # dropped before the rules (unknown/excluded/empty): only the decision counts
            continue
        fired_ref = set(r["fired_forced"])
        for rule, bounds in cfg.rules_for(mine["config"]).items():
            if bounds is None:
                continue
            rule_total[rule] += 1
            if (rule in fired_ref) == (rule in mine["fired"]):
                rule_same[rule] += 1
            else:
                rule_diffs[rule].append(r["path"])
        for name, ref_value in r["signals"].items():
            if name not in SIGNALS:
                continue
            try:
                value = SIGNALS[name](mine["doc"])
            except Exception as e:  # counted as a disagreement, shown below
                value = f"error: {type(e).__name__}"
            sig_total[name] += 1
            if not isinstance(value, str) and same_value(ref_value, value):
                sig_same[name] += 1
            elif len(sig_diffs[name]) < show:
                sig_diffs[name].append(f"{r['path']}: {ref_value} / {value}")
    rule_agreement = {rule: rule_same[rule] / rule_total[rule] for rule in rule_total}
    print(f"\nrules under 1.0 agreement (files where the rule is active):")
    for rule, share in sorted(rule_agreement.items(), key=lambda kv: kv[1]):
        if share < 1.0:
            print(f"  {share:.4f}  {rule_total[rule] - rule_same[rule]:4d} of {rule_total[rule]:5d}  {rule}")
    print(f"\ndisagreeing files by rule (first {show}; released value / ours):")
    by_path = {r["path"]: r for r in usable}
    for rule, paths in sorted(rule_diffs.items(), key=lambda kv: -len(kv[1])):
        print(f"  {rule}:")
        for p in paths[:show]:
            ref_value = by_path[p]["signals"].get(rule)
            try:
                value = SIGNALS[rule](ours[p]["doc"])
            except Exception as e:
                value = f"error: {type(e).__name__}"
            print(f"    {p}: {ref_value} / {value}")
    print("\nsignals under 1.0 value agreement (first files: released value / ours):")
    for name in sorted(sig_total, key=lambda n: sig_same[n] / sig_total[n]):
        if sig_same[name] < sig_total[name]:
            print(f"  {sig_same[name] / sig_total[name]:.4f}  {sig_total[name] - sig_same[name]:4d} of {sig_total[name]:5d}  {name}")
            for line in sig_diffs[name]:
                print(f"      {line}")
    if routing_mismatch:
        print(f"\nrouting mismatches (released / ours), {len(routing_mismatch)}:")
        for p, a, b in routing_mismatch[:show]:
            print(f"  {p}: {a} / {b}")
    print(f"\nfiles the released code crashed on or raised in a signal ({len(crashes)}, left out of every ratio):")
    for r in crashes[:show * 4]:
        what = r.get("crash") or "; ".join(f"{k}: {v.strip().splitlines()[-1]}" for k, v in r["signal_errors"].items())
        print(f"  {r['path']}: {what.strip().splitlines()[-1][:200]}")
    return dict(
        decision_agreement=round(decisions / max(1, len(usable)), 5),
        signal_agreement=round(sum(sig_same.values()) / max(1, sum(sig_total.values())), 5),
        rules_below_0_98=sorted(rule for rule, share in rule_agreement.items() if share < 0.98),
        files=len(usable), reference_crashes=len(crashes), routing_mismatches=len(routing_mismatch),
        decision_disagreements=len(usable) - decisions,
        kept_released=sum(r["kept_forced"] for r in usable), kept_ours=sum(ours[r["path"]]["kept"] for r in usable),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", type=Path, help="checkout of OpenCoder-llm/opc_data_filtering at the pinned commit")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--mirror", type=Path, help="git directories to export the corpus from when --corpus is missing")
    parser.add_argument("--reference-output", type=Path, help="reuse (or write) the reference run's JSON lines here")
    parser.add_argument("--rerun-reference", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--show", type=int, default=5, help="disagreeing files listed per rule")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        if not args.corpus.is_dir():
            if not args.mirror:
                raise CorpusError(f"corpus {args.corpus} does not exist: pass --mirror ROOT to export it, or --corpus DIR")
            fetch(args.mirror, args.corpus)
        if not args.reference and not args.reference_output:
            raise HarnessError("pass --reference PATH (a checkout of OpenCoder-llm/opc_data_filtering)")
        refs = reference_records(args, args.corpus)
    except (CorpusError, HarnessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cfg = comparison_config()
    ours = our_decisions(args.corpus, [r["path"] for r in refs], cfg)
    figures = compare(refs, ours, cfg, args.show)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    figures["rules_below_0.98"] = figures.pop("rules_below_0_98")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
