"""SFT example encoding with the OpenCoder chat template and response-only loss (spec §8, [R-OC] finetune.py).

prompt = apply_chat_template([user: instruction], add_generation_prompt=True); target = output + "\\n<|im_end|>";
input_ids = prompt + target, truncated at `max_len`; labels = -100 on the prompt tokens, the ids elsewhere.
"""

from __future__ import annotations

IGNORE = -100


def encode_example(tokenizer, instruction: str, output: str, max_len: int) -> tuple[list[int], list[int]]:
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": instruction}], add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(output + "\n<|im_end|>", add_special_tokens=False)["input_ids"]
    input_ids = (prompt_ids + target_ids)[:max_len]
    labels = ([IGNORE] * len(prompt_ids) + target_ids)[:max_len]
    return input_ids, labels
