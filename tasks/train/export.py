"""Export a trained engine as a Hugging Face folder that AutoModelForCausalLM / AutoTokenizer load.

The folder holds the LlamaForCausalLM weights (safetensors) and config, the tokenizer with the
OpenCoder chat template, a generation config (chat models also stop at <|im_end|>) and
`cookbook.json` (stage, phase, steps, tokenizer hash, preset) that later stages check.
"""

from __future__ import annotations

import json
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


def read_meta(folder: str | Path) -> dict:
    path = Path(folder) / EXPORT_META
    return json.loads(path.read_text()) if path.exists() else {}
