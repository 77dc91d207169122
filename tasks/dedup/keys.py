"""The keep policy as a byte key: the unit to keep in any group is the one with the smallest key, with no global sort.

The paper keeps the copy with the most stars, then the latest commit (a null date is the oldest), then the
smallest id. `rank_key` encodes that order as bytes that compare lexicographically in the same order:
- 8 bytes big-endian of `2**63 - 1 - stars` (null stars count as -1): more stars -> smaller;
- the commit date's UTF-8 bytes each complemented (`255 - b`), then `0xFF`: a later date -> smaller, a null
  or empty date (just `0xFF`) after every dated one, and the `0xFF` ends the field (dates hold no NUL byte);
- the unit id's UTF-8 bytes: a smaller id -> smaller (UTF-8 keeps code-point order).
The id makes every key unique and `key_name` reads it back.
"""

from __future__ import annotations

from collections.abc import Sequence

_STAR_BASE = 2**63 - 1
_END = b"\xff"
_COMPLEMENT = bytes(255 - b for b in range(256))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def rank_key(stars: int | None, commit_date: str | None, name: str) -> bytes:
    """Key of one unit under the keep policy (smaller = better to keep)."""
    star_part = (_STAR_BASE - (-1 if stars is None else int(stars))).to_bytes(8, "big")
    return star_part + _utf8(commit_date or "").translate(_COMPLEMENT) + _END + _utf8(name)


def rank_keys(stars: Sequence[int | None], commit_dates: Sequence[str | None], names: Sequence[str]) -> list[bytes]:
    """`rank_key` of every unit."""
    return [rank_key(s, d, n) for s, d, n in zip(stars, commit_dates, names)]


def key_name(key: bytes) -> str:
    """The unit id a key was made from."""
    return key[key.index(_END, 8) + 1 :].decode("utf-8", "surrogatepass")
