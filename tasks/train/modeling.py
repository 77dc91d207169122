"""Model construction whose host memory per rank does not grow with the model: the training dtype directly,
partitioned at birth under ZeRO-3, never a full fp32 copy per rank.

- ZeRO-3: the model is built inside `deepspeed.zero.Init` (each module's parameters are partitioned across the
  ranks as soon as the module exists, in the training dtype); HF folders load through `HfDeepSpeedConfig`, which
  makes `from_pretrained` do the same.
- ZeRO 0-2: the model is built on the meta device (no memory), then materialised once in the training dtype on
  the training device (`to_empty`); HF folders load with `from_pretrained(dtype=...)`.

Fresh weights come from `init_parameters`: every parameter is drawn from its own generator seeded by (seed,
parameter name), as transformers' Llama init does it (normal(0, initializer_range) for matrices, ones for norms).
The weights therefore do not depend on the world size, the ZeRO stage or the construction order, which is what
lets 1 process and N processes start from the same model. Values are drawn in fixed chunks of rows, so under
ZeRO-3 each rank draws only the chunks overlapping its own shard and writes the shard in place (no gathering,
no communication). Checkpoint weights are written one module at a time through `GatheredParameters`.
"""

from __future__ import annotations

import contextlib
import json
import math
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from tasks.train import checkpoint as ckpt

_HF_DS_CONFIG = None
"""The live `HfDeepSpeedConfig` (transformers reads it through a weak reference while it exists)."""


DRAW_ELEMENTS = 1 << 22
"""Elements drawn per generator (whole rows): a parameter is filled chunk by chunk, never held twice in fp32."""


def parameter_generator(seed: int, name: str) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))


def fill_initial(name: str, tensor: torch.Tensor, *, seed: int, std: float) -> None:
    """Write the fresh value of parameter `name` into `tensor`: ones for RMSNorm weights (the presets have no
    biases), else normal(0, std), drawn in chunks of whole rows, each from its own generator of (seed, name,
    chunk): the values depend on the name and shape only, not on the dtype, device or construction path."""
    if tensor.ndim == 1:
        tensor.fill_(1.0)
        return
    rows = tensor.reshape(tensor.shape[0], -1)
    step = max(1, DRAW_ELEMENTS // rows.shape[1])
    for chunk, start in enumerate(range(0, rows.shape[0], step)):
        part = rows[start:start + step]
        drawn = torch.empty(part.shape, dtype=torch.float32).normal_(0.0, std, generator=parameter_generator(seed, f"{name}#{chunk}"))
        part.copy_(drawn)


def fill_initial_shard(name: str, param: torch.nn.Parameter, *, seed: int, std: float) -> None:
    """Write this rank's ZeRO-3 shard of parameter `name` with the values `fill_initial` gives the full tensor,
    drawing only the chunks that overlap the shard: no gathering, no full-size tensor, no communication.
    DeepSpeed's shard of rank r is elements [r * n, (r + 1) * n) of the flattened parameter (n = the shard size;
    the last one is padded)."""
    import torch.distributed as dist

    shard = param.ds_tensor.data.view(-1)
    start = dist.get_rank(group=param.ds_process_group) * shard.numel()
    end = min(start + shard.numel(), param.ds_numel)
    if end <= start:
        return
    shape = tuple(param.ds_shape)
    if len(shape) == 1:
        shard[:end - start].fill_(1.0)
        return
    cols = math.prod(shape[1:])
    step = max(1, DRAW_ELEMENTS // cols)
    for chunk in range(start // (step * cols), (end - 1) // (step * cols) + 1):
        first = chunk * step * cols
        rows = min(step, shape[0] - chunk * step)
        drawn = torch.empty(rows * cols, dtype=torch.float32).normal_(0.0, std, generator=parameter_generator(seed, f"{name}#{chunk}"))
        lo, hi = max(start, first), min(end, first + drawn.numel())
        shard[lo - start:hi - start].copy_(drawn[lo - first:hi - first])


def initial_value(name: str, shape: torch.Size, dtype: torch.dtype, *, seed: int, std: float) -> torch.Tensor:
    """The fresh value of parameter `name` as a new tensor."""
    value = torch.empty(shape, dtype=dtype)
    fill_initial(name, value, seed=seed, std=std)
    return value


def is_partitioned(param: torch.nn.Parameter) -> bool:
    return hasattr(param, "ds_id")


def assign_parameters(model: torch.nn.Module, write: Callable[[str, torch.Tensor], None], rank: int) -> None:
    """Call `write(name, tensor)` on every parameter's full tensor, one module at a time. Partitioned (ZeRO-3)
    parameters are gathered, written on rank 0 and scattered back by DeepSpeed; plain ones are written on every
    rank."""
    import deepspeed

    for module_name, module in model.named_modules():
        own = list(module.named_parameters(recurse=False))
        if not own:
            continue
        params = [p for _, p in own]
        partitioned = any(is_partitioned(p) for p in params)
        with deepspeed.zero.GatheredParameters(params, modifier_rank=0, enabled=partitioned), torch.no_grad():
            if partitioned and rank != 0:
                continue
            for name, param in own:
                write(f"{module_name}.{name}" if module_name else name, param.data)


def init_parameters(model: torch.nn.Module, *, seed: int, rank: int) -> None:
    """Fresh values for every parameter: ZeRO-3 shards written in place on each rank, plain tensors whole."""
    std = model.config.initializer_range
    with torch.no_grad():
        for name, param in model.named_parameters():
            if is_partitioned(param):
                fill_initial_shard(name, param, seed=seed, std=std)
            else:
                fill_initial(name, param.data, seed=seed, std=std)


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


M_MMAP_THRESHOLD = -3


def _libc():
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextlib.contextmanager
def allocations_returned_to_os(threshold_after: int) -> Iterator[None]:
    """Inside the block glibc serves every allocation of 1 MiB or more with its own mmap, returned to the kernel
    when freed: zero.Init allocates each module's full parameters, broadcasts them and keeps only a shard, and
    from the heap those freed blocks would stay resident (about 1 GiB more per rank for the 1.5B preset on
    CPU). After it: the mmap threshold `threshold_after` (the training setting) and free heap pages released."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)
    try:
        yield
    finally:
        if libc is not None:
            libc.mallopt(M_MMAP_THRESHOLD, threshold_after)
            libc.malloc_trim(0)


def empty_model(config, *, dtype: torch.dtype, device: torch.device, ds_config: dict | None):
    """A Llama with uninitialised weights in `dtype`: partitioned by `zero.Init` when `ds_config` is ZeRO-3
    (weights on `device` as shards), otherwise materialised from the meta device on `device`."""
    from transformers import LlamaForCausalLM
    from transformers.initialization import no_init_weights

    if zero3(ds_config):
        import deepspeed

        # zero.Init takes the dtype from the config (bf16 or fp32); its `dtype` argument is ignored where the
        # accelerator lacks fp16 (DeepSpeed 0.19: the CPU gets bf16 whatever is asked), so it is not passed.
        if (dtype == torch.bfloat16) != bool(ds_config.get("bf16", {}).get("enabled")):
            raise ValueError(f"dtype {dtype} disagrees with the DeepSpeed config's bf16 setting")
        threshold_after = 32 << 20 if device.type == "cpu" else 128 << 10  # loop.retain_freed_memory's / glibc's default
        with allocations_returned_to_os(threshold_after), deepspeed.zero.Init(config_dict_or_path=ds_config), \
                no_init_weights(), default_dtype(dtype):
            model = LlamaForCausalLM(config)
        return model
    with torch.device("meta"), no_init_weights(), default_dtype(dtype):
        model = LlamaForCausalLM(config)
    model.to_empty(device=device)
    restore_rotary_buffers(model, device)
    return model


def restore_rotary_buffers(model, device: torch.device) -> None:
    """RoPE's inverse frequencies are computed buffers, not weights: recompute those `to_empty` left unset."""
    rotary = model.model.rotary_emb
    model.model.rotary_emb = type(rotary)(config=model.config).to(device)


def zero3(ds_config: dict | None) -> bool:
    return bool(ds_config) and ds_config.get("zero_optimization", {}).get("stage") == 3


def fresh_model(config, *, seed: int, dtype: torch.dtype, device: torch.device, ds_config: dict | None, rank: int):
    model = empty_model(config, dtype=dtype, device=device, ds_config=ds_config)
    init_parameters(model, seed=seed, rank=rank)
    return model


def pretrained_model(folder: str, *, dtype: torch.dtype, device: torch.device, ds_config: dict | None):
    """An HF folder in `dtype`; under ZeRO-3 loaded straight into partitioned parameters (HfDeepSpeedConfig)."""
    global _HF_DS_CONFIG
    from transformers import LlamaForCausalLM

    if zero3(ds_config):
        from transformers.integrations import HfDeepSpeedConfig

        _HF_DS_CONFIG = HfDeepSpeedConfig(ds_config)  # kept alive: transformers holds only a weak reference
        try:
            return LlamaForCausalLM.from_pretrained(folder, dtype=dtype)
        finally:
            _HF_DS_CONFIG = None
    return LlamaForCausalLM.from_pretrained(folder, dtype=dtype).to(device)


def checkpoint_model(tag_dir: str, *, dtype: torch.dtype, device: torch.device, ds_config: dict | None, rank: int):
    """The weights of a ZeRO 0-2 checkpoint tag (annealing branches), built without a second full copy."""
    from transformers import LlamaConfig

    config = LlamaConfig.from_dict(json.loads((Path(tag_dir).parent / ckpt.MODEL_CONFIG).read_text()))
    model = empty_model(config, dtype=dtype, device=device, ds_config=ds_config)
    weights = ckpt.load_module_weights(tag_dir)
    missing = sorted(set(dict(model.named_parameters())) - set(weights))
    if missing:
        raise ValueError(f"{tag_dir}: checkpoint lacks parameters {missing[:3]}...; it is not this model's checkpoint")
    assign_parameters(model, lambda name, tensor: tensor.copy_(weights[name]), rank)
    return model


def parameter_count(model) -> int:
    return sum(p.ds_numel if is_partitioned(p) else p.numel() for p in model.parameters())
