"""Generation backends behind one interface: `generate(prompts, chat=..., stops=..., n=...) -> [[text]*n]`.

- `HFBackend`: transformers on CPU or GPU; prompts sorted by length and batched (left padding), greedy or
  sampled, stopped per sequence at the stop strings; prompts longer than the model's context keep their end.
- `VLLMBackend`: vLLM's offline `LLM` with `SamplingParams(n=k, stop=...)`, all prompts in one `generate`
  call, `tensor_parallel_size` from params (GPU machines only; vLLM is imported lazily).
- `OpenAIBackend`: any OpenAI-compatible server (`vllm serve`, TGI, ...): `/completions` for base prompts,
  `/chat/completions` for chat turns.

With `chat=True` the prompts are user messages: HF and vLLM render them with the tokenizer's chat template,
the HTTP backend sends them as messages. Every backend cuts each text at its first stop string.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from tasks.evaluate.config import EvaluateConfig
from tasks.evaluate.prompts import chat_prompt, truncate_at_stop

log = logging.getLogger(__name__)


class Backend(Protocol):
    has_chat_template: bool

    def generate(self, prompts: list[str], *, chat: bool, stops: tuple[str, ...], n: int) -> list[list[str]]: ...


class _StopOnStrings:
    """Stopping criterion: a sequence is done once its generated text contains a stop string."""

    def __init__(self, tokenizer, prompt_len: int, stops: tuple[str, ...]):
        self.tokenizer, self.prompt_len, self.stops = tokenizer, prompt_len, stops

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len:], skip_special_tokens=False)
        return torch.tensor([any(s in t for s in self.stops) for t in texts], device=input_ids.device)


class HFBackend:
    def __init__(self, model_path: str, cfg: EvaluateConfig, seed: int = 0):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(seed)
        if cfg.num_threads and not torch.cuda.is_available():
            torch.set_num_threads(cfg.num_threads)
        self.cfg, self.name_or_path = cfg, str(model_path)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.tokenizer.padding_side, self.tokenizer.truncation_side = "left", "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        dtype = {"auto": torch.float32 if not torch.cuda.is_available() else torch.bfloat16, "float32": torch.float32,
                 "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.dtype]
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(self.device).eval()
        self.has_chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        context = getattr(self.model.config, "max_position_embeddings", None) or 1 << 30
        self.max_prompt_tokens = max(16, context - cfg.max_new_tokens)

    def _batch(self, prompts: list[str], stops: tuple[str, ...], n: int) -> list[list[str]]:
        import torch
        from transformers import StoppingCriteriaList

        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, truncation=True,
                             max_length=self.max_prompt_tokens, add_special_tokens=True).to(self.device)
        width = enc["input_ids"].shape[1]
        sample = self.cfg.temperature > 0
        with torch.no_grad():
            out = self.model.generate(
                **enc, max_new_tokens=self.cfg.max_new_tokens, do_sample=sample, num_return_sequences=n,
                temperature=self.cfg.temperature if sample else None, top_p=self.cfg.top_p if sample else None,
                top_k=None, pad_token_id=self.tokenizer.pad_token_id,
                stopping_criteria=StoppingCriteriaList([_StopOnStrings(self.tokenizer, width, stops)]))
        texts = self.tokenizer.batch_decode(out[:, width:], skip_special_tokens=False)
        pad = self.tokenizer.pad_token or ""
        texts = [truncate_at_stop(t, stops).replace(pad, "") if pad else truncate_at_stop(t, stops) for t in texts]
        return [texts[i * n:(i + 1) * n] for i in range(len(prompts))]

    def generate(self, prompts: list[str], *, chat: bool, stops: tuple[str, ...], n: int) -> list[list[str]]:
        if chat:
            prompts = [chat_prompt(p, self.tokenizer, self.name_or_path) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: len(self.tokenizer(prompts[i])["input_ids"]))
        results: list[list[str]] = [[] for _ in prompts]
        size = self.cfg.batch_size
        for start in range(0, len(order), size):
            idx = order[start:start + size]
            for i, texts in zip(idx, self._batch([prompts[i] for i in idx], stops, n)):
                results[i] = texts
            log.info("generated %d / %d prompts", min(start + size, len(order)), len(order))
        return results


class VLLMBackend:
    def __init__(self, model_path: str, cfg: EvaluateConfig, seed: int = 0):
        from vllm import LLM

        self.cfg, self.name_or_path = cfg, str(model_path)
        self.llm = LLM(model=str(model_path), tensor_parallel_size=cfg.tensor_parallel_size,
                       dtype="bfloat16" if cfg.dtype == "auto" else cfg.dtype, seed=seed)
        self.tokenizer = self.llm.get_tokenizer()
        self.has_chat_template = bool(getattr(self.tokenizer, "chat_template", None))

    def generate(self, prompts: list[str], *, chat: bool, stops: tuple[str, ...], n: int) -> list[list[str]]:
        from vllm import SamplingParams

        if chat:
            prompts = [chat_prompt(p, self.tokenizer, self.name_or_path) for p in prompts]
        params = SamplingParams(n=n, temperature=self.cfg.temperature, top_p=self.cfg.top_p,
                                max_tokens=self.cfg.max_new_tokens, stop=list(stops))
        outputs = self.llm.generate(prompts, params)
        return [[truncate_at_stop(o.text, stops) for o in out.outputs] for out in outputs]


class OpenAIBackend:
    has_chat_template = True

    def __init__(self, model: str, cfg: EvaluateConfig, seed: int = 0, batch_size: int = 16):
        import httpx

        self.cfg, self.model, self.seed, self.batch_size = cfg, cfg.openai_model or str(model), seed, batch_size
        key = os.environ.get(cfg.openai_api_key_env, "")
        self.client = httpx.Client(base_url=cfg.openai_base_url.rstrip("/"), timeout=600.0,
                                   headers={"Authorization": f"Bearer {key}"} if key else {})

    def _body(self, stops: tuple[str, ...], n: int) -> dict:
        return {"model": self.model, "max_tokens": self.cfg.max_new_tokens, "temperature": self.cfg.temperature,
                "top_p": self.cfg.top_p, "n": n, "stop": list(stops), "seed": self.seed}

    def _complete(self, prompts: list[str], stops: tuple[str, ...], n: int) -> list[list[str]]:
        resp = self.client.post("/completions", json={**self._body(stops, n), "prompt": prompts})
        resp.raise_for_status()
        out: list[list[str]] = [[] for _ in prompts]
        for choice in sorted(resp.json()["choices"], key=lambda c: c["index"]):
            out[choice["index"] // n].append(truncate_at_stop(choice["text"], stops))
        return out

    def _chat(self, prompt: str, stops: tuple[str, ...], n: int) -> list[str]:
        body = {**self._body(stops, n), "messages": [{"role": "user", "content": prompt}]}
        resp = self.client.post("/chat/completions", json=body)
        resp.raise_for_status()
        choices = sorted(resp.json()["choices"], key=lambda c: c["index"])
        return [truncate_at_stop(c["message"]["content"] or "", stops) for c in choices]

    def generate(self, prompts: list[str], *, chat: bool, stops: tuple[str, ...], n: int) -> list[list[str]]:
        with ThreadPoolExecutor(4) as pool:
            if chat:
                return list(pool.map(lambda p: self._chat(p, stops, n), prompts))
            batches = [prompts[i:i + self.batch_size] for i in range(0, len(prompts), self.batch_size)]
            return [texts for batch in pool.map(lambda b: self._complete(b, stops, n), batches) for texts in batch]


def make_backend(model: str, cfg: EvaluateConfig, seed: int = 0) -> Backend:
    return {"hf": HFBackend, "vllm": VLLMBackend, "openai": OpenAIBackend}[cfg.backend](model, cfg, seed)
