"""Export a trained engine as a Hugging Face folder that AutoModelForCausalLM / AutoTokenizer load.

The folder holds the LlamaForCausalLM weights (safetensors) and config, the tokenizer with the
OpenCoder chat template, a generation config (chat models also stop at <|im_end|>) and
`cookbook.json` (stage, phase, steps, tokenizer hash, preset) that later stages check. `log_model`
then logs the folder as an MLflow model (weights and tokenizer) of the stage's run, with the Hugging Face
Hub switched off: MLflow would otherwise look the model's local name (`models/pretrain`) up on the Hub for a
model card and license, with retries (about 25 s a stage offline, and a request to the Hub online).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

EXPORT_META = "cookbook.json"


def export_hf(engine, folder: Path, tokenizer_dir: str, *, zero_stage: int, chat_model: bool, meta: dict, rank: int) -> None:
    from transformers import AutoTokenizer, GenerationConfig

    state = engine._zero3_consolidated_16bit_state_dict() if zero_stage == 3 else None  # collective on every rank
    if rank != 0:
        return
    folder.mkdir(parents=True, exist_ok=True)
    model = engine.module
    model.config.use_cache = True
    model.save_pretrained(str(folder), state_dict=state, safe_serialization=True)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, model_max_length=model.config.max_position_embeddings)
    tokenizer.save_pretrained(str(folder))
    eos = [tokenizer.eos_token_id]
    if chat_model:
        eos.append(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
                     do_sample=False).save_pretrained(str(folder))
    (folder / EXPORT_META).write_text(json.dumps(meta, indent=2, sort_keys=True))


def log_model(folder: Path, tracker_uri: str | None, run_id: str | None, name: str = "model") -> str | None:
    """Log an exported folder as an MLflow `transformers` model (weights and tokenizer) of the stage's run.

    The model appears under the run's logged models in the MLflow UI and loads back with
    `mlflow.transformers.load_model(uri)`. Returns the model URI (None without a tracked run).
    """
    if not (tracker_uri and run_id):
        return None
    import mlflow
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    components = {"model": AutoModelForCausalLM.from_pretrained(str(folder)),
                  "tokenizer": AutoTokenizer.from_pretrained(str(folder))}
    meta = read_meta(folder)
    mlflow.set_tracking_uri(tracker_uri)
    with mlflow.start_run(run_id=run_id), hub_offline():  # re-opens the stage's run; the stage closes it
        info = mlflow.transformers.log_model(
            components, name=name, task="text-generation", model_card=model_card(name, meta),
            # pinned here: MLflow would otherwise infer requirements in a subprocess (slow)
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"transformers=={transformers.__version__}"],
            metadata=meta,
        )
    return info.model_uri


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Hugging Face Hub calls fail at once (no request) inside the block."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def model_card(name: str, meta: dict):
    """The logged model's README: what trained it (from `cookbook.json`)."""
    from huggingface_hub import ModelCard

    lines = "\n".join(f"- {key}: {value}" for key, value in sorted(meta.items()))
    return ModelCard(f"---\ntags: [opencoder-cookbook, {name}]\n---\n# {name}\n\nTrained by OpenCoder Cookbook.\n\n{lines}\n")


def read_meta(folder: str | Path) -> dict:
    path = Path(folder) / EXPORT_META
    return json.loads(path.read_text()) if path.exists() else {}
