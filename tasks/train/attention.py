"""Packed attention without dense masks: documents packed into one row attend only within themselves.

A packed micro-batch is one row of tokens (`packed_inputs`): the sequences (packed pretraining rows cut at
their documents' boundaries, or SFT examples without padding) laid end to end, with `position_ids` restarting
at 0 for every document and the cumulative document lengths `cu_seq_lens_q/k` (as FlashAttention's varlen
kernels take them). Two attention implementations read them, and neither builds an L x L mask:

- `flash_attention_2` (Hugging Face's, when the `flash_attn` package is installed, on CUDA in bf16/fp16): the
  varlen kernel, given `cu_seq_lens_*` and `max_length_*`;
- `packed_sdpa` (ours, registered in transformers' `AttentionInterface`): torch's scaled-dot-product attention
  with `is_causal=True` over the documents, stacked by length bucket and right-padded (CPU and GPU; the fused
  SDPA kernels, no mask tensor). Without `cu_seq_lens_q` it is plain causal SDPA over each row.

`packed_sdpa` is not registered in transformers' mask interface, so the model builds no mask for it at all.
The choice is not saved with an exported model (transformers keeps `_attn_implementation` out of config.json),
so exports load anywhere with transformers' default attention.
"""

from __future__ import annotations

import importlib.util

import torch

PACKED_SDPA = "packed_sdpa"
FLASH_ATTENTION_2 = "flash_attention_2"
IGNORE = -100


def packed_sdpa_attention(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask=None,
                          dropout: float = 0.0, scaling: float | None = None, cu_seq_lens_q: torch.Tensor | None = None,
                          **kwargs) -> tuple[torch.Tensor, None]:
    """Causal attention within each document of (batch, heads, length, head_dim) inputs; returns (batch, length,
    heads, head_dim) as transformers' attention functions do. `cu_seq_lens_q` holds the document boundaries of
    the flattened batch x length tokens; without it every row is one causal sequence.

    Documents of similar length (the same power-of-two bucket) are stacked into one (documents, heads, longest,
    head_dim) batch, right-padded, and attended with `is_causal=True`: a real query only sees keys at or before
    it, all inside its own document, so the padding needs no mask (its outputs are dropped)."""
    if attention_mask is not None:
        raise ValueError("packed_sdpa takes document boundaries (cu_seq_lens_q), not a mask")
    gqa = query.shape[1] != key.shape[1]
    if cu_seq_lens_q is None:
        out = torch.nn.functional.scaled_dot_product_attention(query, key, value, dropout_p=dropout, scale=scaling,
                                                               is_causal=True, enable_gqa=gqa)
        return out.transpose(1, 2).contiguous(), None
    batch, heads, length, dim = query.shape
    flat = [t.transpose(1, 2).reshape(batch * length, t.shape[1], dim) for t in (query, key, value)]  # tokens, heads, dim
    out = torch.empty_like(flat[0])
    for gather, valid, tokens in bucket_plan(cu_seq_lens_q):
        q, k, v = (t[gather].transpose(1, 2) for t in flat)  # documents, heads, longest, dim
        attended = torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=scaling,
                                                                    is_causal=True, enable_gqa=gqa)
        out = out.index_put((tokens,), attended.transpose(1, 2)[valid])
    return out.reshape(batch, length, heads, dim), None


_PLAN: dict = {}


def bucket_plan(cu_seq_lens: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """For each power-of-two length bucket of the documents: (token index (documents, longest) padded with each
    document's first token, mask of the real positions, the real tokens' indices in that order). Every layer of
    a forward pass gets the same `cu_seq_lens` tensor, so the last plan is kept."""
    if _PLAN.get("cu") is cu_seq_lens:
        return _PLAN["plan"]
    bounds = cu_seq_lens.tolist()
    starts, lengths = bounds[:-1], [b - a for a, b in zip(bounds[:-1], bounds[1:])]
    buckets: dict[int, list[int]] = {}
    for doc, n in enumerate(lengths):
        buckets.setdefault(max(1, n - 1).bit_length(), []).append(doc)
    device, plan = cu_seq_lens.device, []
    for docs in buckets.values():
        longest = max(lengths[d] for d in docs)
        offsets = torch.arange(longest)
        doc_starts = torch.tensor([starts[d] for d in docs])[:, None]
        doc_lengths = torch.tensor([lengths[d] for d in docs])[:, None]
        valid = offsets[None, :] < doc_lengths
        gather = torch.where(valid, doc_starts + offsets[None, :], doc_starts)
        plan.append((gather.to(device), valid.to(device), gather[valid].to(device)))
    _PLAN.update(cu=cu_seq_lens, plan=plan)
    return plan


def register() -> None:
    """Make `packed_sdpa` a transformers attention implementation (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(PACKED_SDPA, packed_sdpa_attention)


def flash_attention_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available()


def choose_implementation(requested: str, *, cuda: bool, half_precision: bool) -> str:
    """The attention implementation to train with: `auto` picks FlashAttention-2 where it can run (installed,
    CUDA, bf16) and `packed_sdpa` elsewhere; `flash_attention_2` without the package is a config error."""
    if requested == "auto":
        return FLASH_ATTENTION_2 if cuda and half_precision and flash_attention_available() else PACKED_SDPA
    if requested == FLASH_ATTENTION_2 and not (cuda and flash_attention_available()):
        raise ValueError("attention_implementation=flash_attention_2 needs CUDA and the flash-attn package; "
                         "use auto or packed_sdpa")
    return requested


def document_starts(ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """(rows, length) bool: True where a document starts (each row's first token, and the token after an EOS)."""
    starts = torch.zeros_like(ids, dtype=torch.bool)
    starts[:, 0] = True
    starts[:, 1:] = ids[:, :-1] == eos_id
    return starts


def packed_inputs(input_ids: torch.Tensor, labels: torch.Tensor, starts: torch.Tensor) -> dict[str, torch.Tensor | int]:
    """One packed row from (rows, length) ids/labels and their document starts: ids, labels (the first token of
    every document is no target: nothing before it in its document predicts it), restarting `position_ids`, and
    `cu_seq_lens_*` / `max_length_*` of the documents. Rows may be ragged: pass lists via `packed_from_lists`."""
    flat_ids, flat_labels, flat_starts = input_ids.reshape(1, -1), labels.reshape(1, -1).clone(), starts.reshape(-1)
    flat_labels[0, flat_starts] = IGNORE
    return with_boundaries(flat_ids, flat_labels, flat_starts)


def packed_from_lists(sequences: list[torch.Tensor], label_rows: list[torch.Tensor]) -> dict[str, torch.Tensor | int]:
    """One packed row of ragged sequences (SFT examples, no padding): each sequence is one document."""
    ids = torch.cat(sequences).reshape(1, -1)
    labels = torch.cat(label_rows).reshape(1, -1).clone()
    starts = torch.zeros(ids.shape[1], dtype=torch.bool)
    starts[torch.tensor([0, *torch.tensor([len(s) for s in sequences]).cumsum(0)[:-1].tolist()])] = True
    labels[0, starts] = IGNORE
    return with_boundaries(ids, labels, starts)


def with_boundaries(ids: torch.Tensor, labels: torch.Tensor, starts: torch.Tensor) -> dict[str, torch.Tensor | int]:
    index = torch.arange(starts.numel())
    start_index = torch.cummax(torch.where(starts, index, 0), dim=0).values
    position_ids = (index - start_index).reshape(1, -1)
    cu = torch.cat([torch.nonzero(starts).flatten(), torch.tensor([starts.numel()])]).to(torch.int32)
    max_len = int((cu[1:] - cu[:-1]).max())
    return {"input_ids": ids, "labels": labels, "position_ids": position_ids, "cu_seq_lens_q": cu, "cu_seq_lens_k": cu,
            "max_length_q": max_len, "max_length_k": max_len}

