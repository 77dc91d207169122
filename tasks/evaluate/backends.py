"""Generation backends behind one interface: `generate(prompts, chat=..., stops=..., n=...) -> [[text]*n]`.

- `HFBackend`: transformers on CPU or GPU; prompts sorted by length and batched (left padding), greedy or
  sampled, stopped per sequence at the stop strings or when prompt + generation reach `max_total_tokens`
  (OpenCodeEval's vLLM `max_model_len`); prompts longer than that keep their end.
- `VLLMBackend`: vLLM's offline `LLM(max_model_len=max_total_tokens)` with `SamplingParams(n=k, stop=...)`,
  all prompts in one `generate` call, `tensor_parallel_size` from params (GPU machines only; lazy import).
- `OpenAIBackend`: any OpenAI-compatible server (`vllm serve`, TGI, ...): `/completions` for base prompts,
  `/chat/completions` for chat turns, `concurrent_requests` requests in flight.
- `DataParallelBackend` (`data_parallel > 1`, hf or vllm): that many engine processes, each loading the model
  (one GPU, or `tensor_parallel_size` GPUs, each; CPU processes without GPUs) and generating a contiguous share
  of the prompts; the shares' results are concatenated, so the output order is the prompts' order.

With `chat=True` the prompts are user messages: HF and vLLM render them with the tokenizer's chat template,
the HTTP backend sends them as messages. Every backend cuts each text at its first stop string and at the first
end-of-sequence token text (`<|im_end|>`, the tokenizer's EOS/pad), so no end-of-sequence text reaches the
sanitizer (vLLM never returns it; HF decodes it and some servers do).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Protocol

from tasks.evaluate.config import EvaluateConfig
from tasks.evaluate.prompts import chat_prompt, cut_at_end_of_sequence, truncate_at_stop

log = logging.getLogger(__name__)


class Backend(Protocol):
    has_chat_template: bool

    def generate(self, prompts: list[str], *, chat: bool, stops: tuple[str, ...], n: int) -> list[list[str]]: ...


def finish_text(text: str, stops: tuple[str, ...], end_texts: tuple[str, ...] = ()) -> str:
    """A generation as every backend returns it: cut at its first stop string and end-of-sequence text."""
    return cut_at_end_of_sequence(truncate_at_stop(text, stops), end_texts)


class _StopOnStrings:
    """Stopping criterion: a sequence is done once its generated text contains a stop string or an
    end-of-sequence text, or its prompt + generated tokens reach the total limit."""

    def __init__(self, tokenizer, width: int, stops: tuple[str, ...], prompt_lens, total_limit: int):
        self.tokenizer, self.width, self.stops = tokenizer, width, stops
        self.prompt_lens, self.total_limit = prompt_lens, total_limit

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.width:], skip_special_tokens=False)
        full = (self.prompt_lens + (input_ids.shape[1] - self.width)) >= self.total_limit
        hit = torch.tensor([any(s in t for s in self.stops) for t in texts], device=input_ids.device)
        return hit | full.to(input_ids.device)


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
        self.total_limit = min(context, cfg.max_total_tokens or context)
        self.max_prompt_tokens = max(1, self.total_limit - 1)
        self.end_texts = tuple(t for t in (self.tokenizer.eos_token, self.tokenizer.pad_token) if t)

    def _batch(self, prompts: list[str], stops: tuple[str, ...], n: int) -> list[list[str]]:
        import torch
        from transformers import StoppingCriteriaList

        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, truncation=True,
                             max_length=self.max_prompt_tokens, add_special_tokens=True).to(self.device)
        width = enc["input_ids"].shape[1]
        prompt_lens = enc["attention_mask"].sum(dim=1).repeat_interleave(n)
        new_tokens = min(self.cfg.max_new_tokens, max(1, self.total_limit - int(prompt_lens.min())))
        stopping = _StopOnStrings(self.tokenizer, width, stops + self.end_texts, prompt_lens, self.total_limit)
        sample = self.cfg.temperature > 0
        with torch.no_grad():
            out = self.model.generate(
                **enc, max_new_tokens=new_tokens, do_sample=sample, num_return_sequences=n,
                temperature=self.cfg.temperature if sample else None, top_p=self.cfg.top_p if sample else None,
                top_k=None, pad_token_id=self.tokenizer.pad_token_id, stopping_criteria=StoppingCriteriaList([stopping]))
        texts = [finish_text(t, stops, self.end_texts)
                 for t in self.tokenizer.batch_decode(out[:, width:], skip_special_tokens=False)]
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
                       dtype="bfloat16" if cfg.dtype == "auto" else cfg.dtype, seed=seed,
                       **({"max_model_len": cfg.max_total_tokens} if cfg.max_total_tokens else {}))
        self.tokenizer = self.llm.get_tokenizer()
        self.has_chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.end_texts = tuple(t for t in (self.tokenizer.eos_token, self.tokenizer.pad_token) if t)

    def generate(self, prompts: list[str], *, chat: bool, stops: tuple[str, ...], n: int) -> list[list[str]]:
        from vllm import SamplingParams

        if chat:
            prompts = [chat_prompt(p, self.tokenizer, self.name_or_path) for p in prompts]
        params = SamplingParams(n=n, temperature=self.cfg.temperature, top_p=self.cfg.top_p,
                                max_tokens=self.cfg.max_new_tokens, stop=list(stops))
        outputs = self.llm.generate(prompts, params)
        return [[finish_text(o.text, stops, self.end_texts) for o in out.outputs] for out in outputs]


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
            out[choice["index"] // n].append(finish_text(choice["text"], stops))
        return out

    def _chat(self, prompt: str, stops: tuple[str, ...], n: int) -> list[str]:
        body = {**self._body(stops, n), "messages": [{"role": "user", "content": prompt}]}
        resp = self.client.post("/chat/completions", json=body)
        resp.raise_for_status()
        choices = sorted(resp.json()["choices"], key=lambda c: c["index"])
        return [finish_text(c["message"]["content"] or "", stops) for c in choices]

    def generate(self, prompts: list[str], *, chat: bool, stops: tuple[str, ...], n: int) -> list[list[str]]:
        with ThreadPoolExecutor(self.cfg.concurrent_requests) as pool:
            if chat:
                return list(pool.map(lambda p: self._chat(p, stops, n), prompts))
            batches = [prompts[i:i + self.batch_size] for i in range(0, len(prompts), self.batch_size)]
            return [texts for batch in pool.map(lambda b: self._complete(b, stops, n), batches) for texts in batch]


BACKENDS = {"hf": HFBackend, "vllm": VLLMBackend, "openai": OpenAIBackend}


def split_evenly(items: list, parts: int) -> list[list]:
    """`items` cut into `parts` contiguous near-equal shares, in order (empty shares left out)."""
    bounds = [len(items) * k // parts for k in range(parts + 1)]
    return [items[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _device_groups(engines: int, per_engine: int) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES of each engine: consecutive groups of `per_engine` GPUs; None without GPUs."""
    try:
        import torch

        gpus = torch.cuda.device_count()
    except ImportError:
        gpus = 0
    if gpus == 0:
        return [None] * engines
    if gpus < engines * per_engine:
        raise ValueError(f"evaluate.data_parallel={engines} x tensor_parallel_size={per_engine} needs "
                         f"{engines * per_engine} GPUs; this machine has {gpus}")
    return [",".join(str(g) for g in range(i * per_engine, (i + 1) * per_engine)) for i in range(engines)]


def _generate_share(kind: str, model: str, cfg: EvaluateConfig, seed: int, devices: str | None,
                    prompts: list[str], chat: bool, stops: tuple[str, ...], n: int) -> list[list[str]]:
    """One engine process: its own model on its own devices, generating its share of the prompts."""
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
    return BACKENDS[kind](model, cfg, seed).generate(prompts, chat=chat, stops=stops, n=n)


class DataParallelBackend:
    """`cfg.data_parallel` engine processes (spawned, each loading the model), prompts split among them in
    contiguous shares, results merged in prompt order."""

    def __init__(self, model_path: str, cfg: EvaluateConfig, seed: int = 0):
        from transformers import AutoTokenizer

        self.model, self.cfg, self.seed = str(model_path), cfg, seed
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        per_engine = cfg.tensor_parallel_size if cfg.backend == "vllm" else 1
        self.devices = _device_groups(cfg.data_parallel, per_engine)

    def generate(self, prompts: list[str], *, chat: bool, stops: tuple[str, ...], n: int) -> list[list[str]]:
        shares = split_evenly(prompts, len(self.devices))
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(len(shares), mp_context=context) as pool:
            futures = [pool.submit(_generate_share, self.cfg.backend, self.model, self.cfg, self.seed, devices, share,
                                   chat, stops, n) for devices, share in zip(self.devices, shares)]
            return [texts for future in futures for texts in future.result()]


def make_backend(model: str, cfg: EvaluateConfig, seed: int = 0) -> Backend:
    if cfg.data_parallel > 1 and cfg.backend in ("hf", "vllm"):
        return DataParallelBackend(model, cfg, seed)
    return BACKENDS[cfg.backend](model, cfg, seed)
