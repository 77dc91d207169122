"""The seeded order in which stages choose rows by id: `priority(id, seed)`, a 64-bit blake2b of
`"{seed}:{id}"` (big-endian). A choice made by it depends on the ids and the seed only, never on the order
rows arrive in or on how the input was cut into slices: sample's language caps, tokenize's tokenizer-training
sample and curate's SFT sets all rank by it, so the same seed picks the same documents everywhere."""

from __future__ import annotations

import hashlib

PRIORITY_BITS = 64


def priority(row_id: str, seed: int) -> int:
    """The row's rank key (lower = chosen first)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{row_id}".encode(), digest_size=8).digest(), "big")
