"""Literal-input tests of ablations as data, the DVC override syntax and the comparison report."""

from pathlib import Path

import pytest
import yaml

from tasks.ablate.compare import data_counts, final_losses, render, scores, write_report
from tasks.ablate.experiments import VariantResult, experiment_revs, parse_loss_csv, stage_metrics
from tasks.ablate.spec import Ablation, available, dvc_set_args, hydra_value, load_ablation, parse_ablation
from tasks.common.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
PAPER_ABLATIONS = {"dedup_level", "ruleset", "anneal_hq", "star_filter", "sft_strategy", "web_recall"}


def test_every_paper_ablation_is_shipped_and_valid_against_params_yaml():
    assert PAPER_ABLATIONS <= set(available(ROOT))
    for name in available(ROOT):
        ablation = load_ablation(name, ROOT)  # every variant's overrides pass the strict params loader
        assert len(ablation.variants) >= 2 and ablation.description
        keys = {k for o in ablation.variants.values() for k in o}
        assert keys and all(len({yaml.safe_dump(o.get(k)) for o in ablation.variants.values()}) > 1 for k in keys), name


def test_base_and_extra_overrides_reach_every_variant(tmp_path):
    (tmp_path / "ablations").mkdir()
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "ablations" / "x.yaml").write_text(
        "description: d\nbase: {pretrain.steps: 3}\nvariants:\n  a: {dedup.level: file}\n  b: {dedup.level: repo}\n")
    ablation = load_ablation("x", tmp_path, ["evaluate.limit=2"])
    assert ablation.variants["b"] == {"pretrain.steps": 3, "dedup.level": "repo", "evaluate.limit": 2}
    assert ablation.experiment_name("b") == "x-b"


def test_a_typo_in_a_variant_names_the_file_variant_and_key(tmp_path):
    (tmp_path / "ablations").mkdir()
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "ablations" / "x.yaml").write_text("description: d\nvariants:\n  a: {dedup.levl: file}\n  b: {}\n")
    with pytest.raises(ConfigError, match=r"x\.yaml: variant 'a': .*dedup\.levl"):
        load_ablation("x", tmp_path)


@pytest.mark.parametrize("raw,match", [
    ({"variants": {"a": {}}}, "at least two"),
    ({"variants": {"a": {}, "b": {"level": 1}}}, "dotted"),
    ({"variants": {"a b": {}, "b": {}}}, "variant name"),
    ({"variants": {"a": {}, "b": {}}, "stages": ["nope"]}, "stages"),
    ({"varients": {}}, "unknown key 'varients'"),
])
def test_malformed_ablations_fail_with_one_clear_line(raw, match):
    with pytest.raises(ConfigError, match=match):
        parse_ablation("x", raw)


def test_missing_ablation_lists_the_available_ones():
    with pytest.raises(ConfigError, match="available: .*dedup_level"):
        load_ablation("nope", ROOT)


@pytest.mark.parametrize("value,text", [
    ("two-stage", "'two-stage'"), ("1.0", "'1.0'"), (True, "true"), (None, "null"), (5, "5"), (0.5, "0.5"),
    (["humaneval", "mbpp"], "['humaneval','mbpp']"), ({"java": 0.1}, "{java:0.1}"), ("it's", "'it\\'s'"),
])
def test_hydra_values_keep_their_type(value, text):
    assert hydra_value(value) == text


def test_hydra_mapping_keys_must_be_identifiers():
    with pytest.raises(ConfigError, match="data/tokenize"):
        hydra_value({"data/tokenize": 1.0})
    assert dvc_set_args({"sft.variant": "mix", "recall.enabled": False}) == ["-S", "sft.variant='mix'", "-S", "recall.enabled=false"]


def test_dvc_exp_show_entries_become_stage_metrics_and_revs():
    data = {"metrics": {"metrics/clean.json": {"data": {"rows_kept": 5}},
                        "metrics/evaluate.json": {"error": {"type": "FileNotFoundError"}}}}
    assert stage_metrics(data) == {"clean": {"rows_kept": 5}}
    exps = [{"name": "x-a", "revs": [{"rev": "1" * 40, "name": "x-a", "data": data, "error": None}]},
            {"name": "x-b", "revs": [{"rev": "2" * 40, "name": "x-b", "data": None, "error": {"msg": "failed"}}]}]
    assert list(experiment_revs(exps)) == ["x-a"]
    assert parse_loss_csv("step,loss,lr\n1,9.5,0.1\n2,8.25,0.1\nbad,row,\n") == [(1, 9.5), (2, 8.25)]


def _results():
    def metrics(kept, loss, he):
        return {"ingest": {"rows_kept": 100}, "clean": {"rows_kept": kept}, "pretrain": {"final_loss": loss},
                "evaluate": {"humaneval": {"pass@1": he, "passed": 1, "total": 2}, "seconds": 3.0}}
    return {
        "file": VariantResult("file", "x-file", "a" * 40, {}, metrics(60, 5.5, 0.5), {"pretrain": [(1, 9.0), (2, 5.5)]}),
        "repo": VariantResult("repo", "x-repo", "b" * 40, {}, metrics(70, 5.0, 0.0), {"pretrain": [(1, 9.1), (2, 5.0)]}),
        "chunk": VariantResult("chunk", "x-chunk", error="stage 'dedup' failed"),
    }


def test_comparison_tables_and_plots(tmp_path):
    ablation = Ablation("x", "Dedup levels.", {v: {"dedup.level": v} for v in ("file", "repo", "chunk")})
    results = _results()
    assert data_counts(results["file"].metrics) == {"ingest": 100, "clean": 60}
    assert final_losses(results["repo"].metrics) == {"pretrain": 5.0}
    assert scores(results["file"].metrics) == {"humaneval": 0.5}
    files = write_report(ablation, results, tmp_path)
    text = files["comparison"].read_text()
    assert "| file | x-file | aaaaaaaaaa | file |" in text and "| repo | 100 | 70 |" in text
    assert "| chunk | x-chunk | FAILED | chunk |" in text and "stage 'dedup' failed" in text
    for kind in ("counts", "loss", "scores"):
        assert files[kind].read_bytes()[:4] == b"\x89PNG"
    assert render(ablation, {"file": results["file"]}, {}).count("## ") == 4
