"""Model presets as data: the exact OpenCoder architectures (spec §7, Table 4 / released configs) and `tiny`.

A preset is a frozen `ModelPreset`; `llama_config(preset, vocab_size)` turns it into a
`transformers.LlamaConfig`. `vocab_size=None` (only `tiny`) means "the tokenizer's size, rounded up to
a multiple of 64"; the big presets require the OpenCoder vocabulary (96,640) and the contract check
(`contract.py`) refuses a tokenizer that does not fit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, kw_only=True)
class ModelPreset:
    name: str
    num_layers: int
    """Transformer blocks."""
    hidden_size: int
    """Model dimension."""
    num_heads: int
    """Attention heads (head_dim = hidden_size / num_heads)."""
    num_kv_heads: int
    """Key/value heads (== num_heads: plain MHA; fewer: GQA)."""
    intermediate_size: int
    """SwiGLU FFN width."""
    vocab_size: int | None
    """Embedding rows; None: the tokenizer's size rounded up to a multiple of 64."""
    max_position_embeddings: int
    """Context length."""
    rope_theta: float
    """RoPE base."""
    rms_norm_eps: float = 1e-5
    tie_word_embeddings: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in [
        # OpenCoder-1.5B (§7): 24 layers, 2240 dim, 14 heads of 160, MHA, FFN 6144, RoPE 1e4, context 4096.
        ModelPreset(name="opencoder-1.5b", num_layers=24, hidden_size=2240, num_heads=14, num_kv_heads=14,
                    intermediate_size=6144, vocab_size=96_640, max_position_embeddings=4096, rope_theta=10_000.0),
        # OpenCoder-8B (§7, Llama-3.1-8B shape): 32 layers, 4096 dim, 32 heads, 8 KV heads (GQA), FFN 14336.
        ModelPreset(name="opencoder-8b", num_layers=32, hidden_size=4096, num_heads=32, num_kv_heads=8,
                    intermediate_size=14_336, vocab_size=96_640, max_position_embeddings=8192, rope_theta=500_000.0),
        # tiny: the same family scaled to train on 2 CPU cores in a minute (ours, not the paper's).
        ModelPreset(name="tiny", num_layers=4, hidden_size=128, num_heads=4, num_kv_heads=4,
                    intermediate_size=384, vocab_size=None, max_position_embeddings=1024, rope_theta=10_000.0),
    ]
}


def get_preset(name: str) -> ModelPreset:
    if name not in PRESETS:
        raise KeyError(f"unknown model preset '{name}' (known: {', '.join(PRESETS)})")
    return PRESETS[name]


def resolved_vocab_size(preset: ModelPreset, tokenizer_vocab_size: int) -> int:
    if preset.vocab_size is not None:
        return preset.vocab_size
    return -(-tokenizer_vocab_size // 64) * 64


def llama_config(preset: ModelPreset, tokenizer_vocab_size: int, *, bos_token_id: int, eos_token_id: int, pad_token_id: int):
    """The `LlamaConfig` of a preset: SwiGLU, RMSNorm, RoPE, no biases, untied embeddings (§7)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=resolved_vocab_size(preset, tokenizer_vocab_size),
        hidden_size=preset.hidden_size,
        intermediate_size=preset.intermediate_size,
        num_hidden_layers=preset.num_layers,
        num_attention_heads=preset.num_heads,
        num_key_value_heads=preset.num_kv_heads,
        head_dim=preset.head_dim,
        hidden_act="silu",
        max_position_embeddings=preset.max_position_embeddings,
        rms_norm_eps=preset.rms_norm_eps,
        rope_theta=preset.rope_theta,
        tie_word_embeddings=preset.tie_word_embeddings,
        attention_bias=False,
        mlp_bias=False,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )


def preset_dict(preset: ModelPreset) -> dict:
    return asdict(preset)
