"""The GPU benchmark's training path (`benchmarks/train.py`: synthetic tokens, `throughput`) on CPU, so the script
a lent GPU runs is exercised here: a micro preset, document attention (packed rows), ZeRO-2 and ZeRO-3."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from .conftest import MICRO_PRESET

pytestmark = pytest.mark.usefixtures("single_process_group")


def bench_module():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "train.py"
    spec = importlib.util.spec_from_file_location("bench_train", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("zero", [2, 3])
def test_throughput_path_of_the_gpu_script_runs_on_cpu(tmp_path, zero):
    bench = bench_module()
    job = bench.synthetic_job(tmp_path, MICRO_PRESET, seq_len=64, num=16, micro_batch=2, global_batch=4,
                              attention="document", zero=zero, precision="fp32")
    out = bench.throughput(job, steps=4)
    assert out["device"] == "cpu" and out["attention"] == "packed_sdpa"
    assert len(out["losses"]) == 4 and all(math.isfinite(x) for x in out["losses"])
    assert out["tokens_per_s"] > 0 and 0 < out["mfu"] < 1
