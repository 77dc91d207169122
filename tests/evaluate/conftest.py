"""Fixtures: a tiny random Llama with a small tokenizer (built locally, no downloads), and params."""

from dataclasses import replace

import pytest

from tasks.config import Params, TrackingConfig
from tasks.evaluate.config import EvaluateConfig
from tasks.evaluate.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_base"), vocab_size=400, hidden_size=32, num_layers=1,
                            context=512, corpus_benchmarks=("humaneval",))


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_chat"), vocab_size=400, hidden_size=32, num_layers=1,
                            context=512, chat_template=True, corpus_benchmarks=("humaneval",))


def make_params(**evaluate) -> Params:
    return replace(Params(), tracking=TrackingConfig(enabled=False), evaluate=EvaluateConfig(**evaluate))
