"""A tiny randomly initialised Llama + byte-level BPE tokenizer, built locally (no downloads).

Used by the evaluate tests and `benchmarks/evaluate.py` to exercise generation end to end on CPU. The
tokenizer is trained on the benchmark prompts themselves and carries an OpenCoder-style chat template
(`<|im_start|>role\\n...<|im_end|>`).
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_tiny_model(folder: str | Path, *, vocab_size: int = 1024, hidden_size: int = 64, num_layers: int = 2,
                     context: int = 1024, chat_template: bool = False, seed: int = 0,
                     corpus_benchmarks: tuple[str, ...] = ("humaneval", "mbpp")) -> Path:
    """Write a random LlamaForCausalLM and its tokenizer to `folder`; return the folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from tasks.evaluate import benchmarks

    folder = Path(folder)
    corpus = [p.prompt + p.reference for name in corpus_benchmarks for p in benchmarks.get(name).problems()]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   bos_token="<|endoftext|>")
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden_size, intermediate_size=hidden_size * 4,
                         num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=context, eos_token_id=fast.eos_token_id,
                         bos_token_id=fast.bos_token_id, pad_token_id=fast.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder
