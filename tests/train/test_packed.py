"""Packed attention without masks (loss and gradients equal the dense-mask implementation on CPU), per-rank
reading of token shards and SFT examples, and the background prefetch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tasks.tokenize.packing import PackedTokens
from tasks.train import attention
from tasks.train.data import PackedMix, Prefetcher, SftExamples, TokenShards, causal_lm_batch, micro_slices, open_tokens
from tasks.train.presets import ModelPreset, llama_config
from tasks.train.sft_store import SftStore, write_store

EOS = 2
SMALL = ModelPreset(name="small", num_layers=2, hidden_size=64, num_heads=4, num_kv_heads=2, intermediate_size=128,
                    vocab_size=None, max_position_embeddings=256, rope_theta=10_000.0)


def dense_document_batch(ids: np.ndarray, eos_id: int) -> dict[str, torch.Tensor]:
    """The reference: (rows, L) inputs with a dense (rows, 1, L, L) block-diagonal causal boolean mask (the previous
    implementation, kept here to test against; run with `sdpa`: transformers' eager attention adds a boolean mask
    instead of masking with it)."""
    input_ids = torch.from_numpy(ids)
    labels = input_ids.clone()
    is_eos = input_ids == eos_id
    labels[:, 1:][is_eos[:, :-1]] = -100
    doc = torch.cumsum(torch.nn.functional.pad(is_eos[:, :-1].long(), (1, 0)), dim=1)
    first = torch.searchsorted(doc, doc, right=False)
    position_ids = torch.arange(ids.shape[1]).expand_as(doc) - first
    mask = (doc[:, :, None] == doc[:, None, :]) & torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool).tril()
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids, "attention_mask": mask[:, None]}


def model_with(implementation: str, kv_heads: int = 2):
    """A small Llama (GQA by default) with seeded weights and the given attention implementation."""
    from transformers import LlamaForCausalLM

    attention.register()
    torch.manual_seed(0)
    preset = ModelPreset(**{**SMALL.__dict__, "num_kv_heads": kv_heads})
    model = LlamaForCausalLM(llama_config(preset, 96, bos_token_id=1, eos_token_id=EOS, pad_token_id=0))
    model.config._attn_implementation = implementation
    return model


def loss_and_grads(model, batch) -> tuple[float, torch.Tensor]:
    model.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    return float(loss.detach()), torch.cat([p.grad.flatten() for p in model.parameters()])


def documents(rows: int, length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 96, size=(rows, length))
    ids[rng.random((rows, length)) < 0.08] = EOS  # documents of random lengths, some rows starting mid-document
    return ids


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_packed_sdpa_loss_and_gradients_equal_the_dense_mask_implementation(kv_heads):
    ids = documents(4, 64)
    assert (ids == EOS).sum() >= 8
    dense = loss_and_grads(model_with("sdpa", kv_heads), dense_document_batch(ids, EOS))
    packed = loss_and_grads(model_with(attention.PACKED_SDPA, kv_heads), causal_lm_batch(ids, attention="document", eos_id=EOS))
    assert abs(packed[0] - dense[0]) <= 1e-4, (packed[0], dense[0])
    assert torch.allclose(packed[1], dense[1], atol=1e-5)


def test_packed_rows_build_no_mask_and_documents_do_not_see_each_other():
    model = model_with(attention.PACKED_SDPA).eval()
    ids = documents(1, 32)
    ids[0, 10] = EOS
    seen = {}
    model.model.layers[0].self_attn.register_forward_hook(lambda m, args, kwargs, out: seen.update(kwargs), with_kwargs=True)
    a = model(**{k: v for k, v in causal_lm_batch(ids, attention="document", eos_id=EOS).items() if k != "labels"}).logits
    assert seen["attention_mask"] is None  # no mask tensor of any size reaches the attention
    other = ids.copy()
    other[0, :10] = 7
    b = model(**{k: v for k, v in causal_lm_batch(other, attention="document", eos_id=EOS).items() if k != "labels"}).logits
    assert torch.allclose(a[0, 11:], b[0, 11:], atol=1e-5) and not torch.allclose(a[0, :10], b[0, :10])


def test_one_document_per_row_equals_plain_causal_attention():
    ids = documents(2, 16)
    ids[ids == EOS] = 9
    model = model_with(attention.PACKED_SDPA).eval()
    plain = model(**causal_lm_batch(ids, attention="causal", eos_id=EOS)).loss
    packed = model(**causal_lm_batch(ids, attention="document", eos_id=EOS)).loss
    assert abs(float(plain.detach()) - float(packed.detach())) <= 1e-5


def test_sft_examples_packed_without_padding_give_the_padded_loss(tmp_path):
    rng = np.random.default_rng(1)
    pairs = []
    for n, prompt in [(9, 4), (15, 6), (5, 2), (12, 12)]:
        ids = rng.integers(5, 96, size=n).tolist()
        pairs.append((ids, [-100] * prompt + ids[prompt:]))
    write_store(tmp_path / "ex", pairs)
    data = SftExamples(str(tmp_path / "ex"), global_batch_size=4, epochs=1, seed=0)
    packed = data.collate([0, 1, 2, 3])
    width = max(len(p[0]) for p in pairs)
    padded = {"input_ids": torch.zeros(4, width, dtype=torch.long), "labels": torch.full((4, width), -100),
              "attention_mask": torch.zeros(4, width, dtype=torch.long)}
    for row, (ids, labels) in enumerate(pairs):
        padded["input_ids"][row, :len(ids)] = torch.tensor(ids)
        padded["labels"][row, :len(ids)] = torch.tensor(labels)
        padded["attention_mask"][row, :len(ids)] = 1
    reference = loss_and_grads(model_with("sdpa"), padded)
    ours = loss_and_grads(model_with(attention.PACKED_SDPA), packed)
    assert packed["input_ids"].shape == (1, sum(len(p[0]) for p in pairs))
    assert abs(ours[0] - reference[0]) <= 1e-4 and torch.allclose(ours[1], reference[1], atol=1e-5)


def test_sft_store_round_trip_and_refuses_labels_that_are_not_a_prompt_mask(tmp_path):
    store = SftStore(write_store(tmp_path / "s", [([5, 6, 7], [-100, 6, 7]), ([8, 9], [-100, -100])]))
    assert len(store) == 2 and store.example(0)[0].tolist() == [5, 6, 7] and store.example(0)[1] == 1
    assert store.example(1)[1] == 2
    with pytest.raises(ValueError, match="example 0"):
        write_store(tmp_path / "bad", [([5, 6], [-100, 7])])


def _token_folder(folder, rows: np.ndarray):
    folder.mkdir(parents=True)
    rows.astype(np.uint16).tofile(folder / "tokens.bin")
    (folder / "meta.json").write_text(json.dumps({"vocab_size": 300, "dtype": "uint16", "seq_len": rows.shape[1],
                                                  "num_sequences": len(rows), "tokenizer_hash": "h" * 64}))
    return folder


def test_a_list_of_shards_reads_like_one_file(tmp_path):
    rows = np.arange(23 * 4).reshape(23, 4)
    whole = open_tokens(str(_token_folder(tmp_path / "whole", rows)))
    parts = TokenShards([PackedTokens(_token_folder(tmp_path / f"p{i}", rows[a:b])) for i, (a, b) in enumerate([(0, 5), (5, 17), (17, 23)])])
    indices = np.array([22, 0, 5, 4, 16, 17, 3, 11])
    assert len(parts) == 23 and (parts.take(indices) == rows[indices]).all() and (whole.take(indices) == rows[indices]).all()
    mix_whole = PackedMix({"w": 1.0}, 6, seed=2, open_source=lambda _: whole)
    mix_parts = PackedMix({"p": 1.0}, 6, seed=2, open_source=lambda _: parts)
    for step in (0, 3, 7):  # past one epoch too
        assert (mix_whole.batch(step, mix_whole.source_counts_before(step))[0] == mix_parts.batch(step, mix_parts.source_counts_before(step))[0]).all()
    with pytest.raises(ValueError, match="different seq_len"):
        TokenShards([PackedTokens(tmp_path / "p0"), PackedTokens(_token_folder(tmp_path / "q", np.zeros((2, 3))))])


def test_each_rank_reads_only_its_slots_and_the_ranks_together_read_the_global_batch(tmp_path):
    a = _token_folder(tmp_path / "a", np.arange(40 * 4).reshape(40, 4))
    b = _token_folder(tmp_path / "b", 1000 + np.arange(9 * 4).reshape(9, 4))
    mix = PackedMix({str(a): 0.6, str(b): 0.4}, global_batch_size=8, seed=1)
    counts = mix.source_counts_before(4)
    whole, after = mix.batch(4, counts)
    per_rank = {r: mix.rank_batch(4, counts, micro_slices(8, 2, 2, r)) for r in (0, 1)}
    for r, (micro, rank_after) in per_rank.items():
        assert (rank_after == after).all() and all(m.shape == (2, 4) for m in micro)
        for m, s in zip(micro, micro_slices(8, 2, 2, r)):
            assert (m == whole[s]).all()
    reads = []

    class CountedShard:
        def __init__(self, path):
            self.inner = PackedTokens(path)
            self.meta = self.inner.meta

        def __len__(self):
            return len(self.inner)

        def take(self, indices):
            reads.append(len(indices))
            return self.inner.take(indices)

    counted = PackedMix(mix.sources, 8, seed=1, open_source=lambda path: TokenShards([CountedShard(path)]))
    micro, _ = counted.rank_batch(5, after, micro_slices(8, 2, 2, 0))
    assert sum(reads) == 4 and len(reads) <= 2  # rank 0's 4 sequences, one read per source
    assert all((m == w).all() for m, w in zip(micro, [mix.batch(5, after)[0][s] for s in micro_slices(8, 2, 2, 0)]))


def test_prefetcher_yields_steps_in_order_chains_state_and_raises_errors():
    made = []

    def make(step, state):
        made.append(step)
        if step == 5:
            raise RuntimeError("bad shard at step 5")
        return step * 10, state + step

    pre = Prefetcher(make, start_step=2, end_step=8, state=100, depth=2)
    assert pre.next() == (2, 20, 102) and pre.next() == (3, 30, 105) and pre.next() == (4, 40, 109)
    with pytest.raises(RuntimeError, match="step 5"):
        pre.next()
    pre.close()
    assert max(made) == 5
