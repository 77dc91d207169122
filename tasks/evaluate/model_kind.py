"""What the evaluated model is, and the settings that follow from it: base or chat prompting, and its preset.

- `read_export_meta(model)`: the `cookbook.json` our training stages write next to an exported model (stage,
  preset, ...), `{}` for any other model.
- `choose_model_type(requested, meta, name)`: base or chat, and why. `evaluate.model_type` base/chat wins; with
  auto, an export of the sft stage is a chat model and one of pretrain/anneal a base model (the exported
  tokenizer carries a chat template either way, so the template says nothing); a model from elsewhere is a chat
  model when its name says instruct/chat (OpenCoder-8B-Instruct, Qwen2.5-Coder-7B-Instruct, ...), else base.
- `apply_model_preset(cfg, meta)`: the `evaluate.model_presets` entry of the export's preset (the embedded
  tiny model: 128 new tokens) replaces the settings still at their OpenCodeEval defaults; a value the user set
  (`--set evaluate.max_new_tokens=16`) wins.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from tasks.evaluate.config import EvaluateConfig

EXPORT_META = "cookbook.json"
"""Written by tasks/train/export.py (`EXPORT_META` there)."""
CHAT_STAGES = frozenset({"sft"})
BASE_STAGES = frozenset({"pretrain", "anneal"})
_CHAT_NAME = re.compile(r"instruct|chat|-it\b|sft", re.IGNORECASE)


def read_export_meta(model: str | Path) -> dict:
    """The export's `cookbook.json` as a dict; `{}` when the model has none (a model from elsewhere, a server)."""
    path = Path(model) / EXPORT_META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def choose_model_type(requested: str, meta: dict, name: str) -> tuple[str, str]:
    """("base" | "chat", the reason in words)."""
    if requested in ("base", "chat"):
        return requested, f"evaluate.model_type={requested}"
    stage = meta.get("stage")
    if stage in CHAT_STAGES:
        return "chat", f"exported by the {stage} stage (chat-tuned)"
    if stage in BASE_STAGES:
        return "base", f"exported by the {stage} stage (no chat tuning)"
    if _CHAT_NAME.search(Path(str(name)).name or str(name)):
        return "chat", f"no cookbook export; the name {Path(str(name)).name!r} says instruct/chat"
    return "base", f"no cookbook export and no instruct/chat in the name {Path(str(name)).name!r}"


def apply_model_preset(cfg: EvaluateConfig, meta: dict) -> tuple[EvaluateConfig, str | None]:
    """`cfg` with the export's preset entry applied to the settings left at their defaults, and the preset's
    name (None when nothing of it applied)."""
    preset = meta.get("preset")
    values = cfg.model_presets.get(preset, {}) if isinstance(preset, str) else {}
    defaults = {f.name: f.default for f in dataclasses.fields(EvaluateConfig)}
    changes = {key: value for key, value in values.items() if getattr(cfg, key) == defaults[key]}
    if not changes:
        return cfg, None
    return dataclasses.replace(cfg, **changes), preset
