"""Shingling and a vectorized MinHash in numpy, with LSH band keys.

Design:
- A text becomes a set of 64-bit shingle hashes. `word` shingles are n-grams of identifier-like tokens
  (split on non-alphanumerics, as BigCode's near-dedup); `char` shingles are n-grams of UTF-8 bytes.
  Each unit (token or byte) gets a 64-bit value, a shingle is an order-sensitive linear combination of
  its n unit values with fixed odd constants, passed through the murmur3 64-bit finalizer. All of it
  is a handful of array passes; there is no per-shingle Python code.
- Permutation i is the affine map h_i(x) = a_i * x + b_i mod 2^32 (a_i odd, so a bijection of the
  32-bit shingle keys, which are the top bits of an already well-mixed hash). The inner loop is one
  32-bit multiply, one add and one running minimum per (shingle, permutation).
- Tokens + CRC32, window hashes and the signature loop run as numba kernels (one pass each; the
  signature loop vectorized by LLVM is about 7x faster than the same arithmetic as numpy array
  passes, which are memory-bound). `*_numpy` functions compute the same in numpy: the references
  the tests compare the kernels with, and the fallback where numba is missing. datasketch's
  reference does 64-bit products and a 61-bit Mersenne modulo instead; the property tests check our
  estimates against exact Jaccard and it.
- MinHash is mergeable: the signature of a union of sets is the element-wise minimum of their
  signatures (used for repo-level units).
- A band key is a 64-bit hash of the band's `rows` signature values (linear combination + finalizer);
  two units are LSH candidates when any band key matches.
"""

from __future__ import annotations

import re
import types
import zlib
from functools import lru_cache

import numpy as np

EMPTY_HASH = np.uint32(0xFFFFFFFF)
"""Signature value of an empty shingle set at every position."""

_TOKEN = re.compile(rb"[A-Za-z_0-9]+")
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_BLOCK = 128


def fmix64(x: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finalizer, element-wise (a bijection that mixes every input bit)."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(33)
        x *= _M1
        x ^= x >> np.uint64(33)
        x *= _M2
        x ^= x >> np.uint64(33)
    return x


@lru_cache(maxsize=16)
def _odd_constants(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 0x5EED])
    return rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def tokens(text: str) -> list[bytes]:
    """Identifier-like tokens of a text (the `word` shingle unit)."""
    return _TOKEN.findall(text.encode("utf-8", "replace"))


def unit_values(text: str, unit: str) -> np.ndarray:
    """64-bit value per shingle unit: CRC32 of each token (`word`) or each UTF-8 byte (`char`)."""
    data = text.encode("utf-8", "replace")
    if unit == "word":
        if _KERNELS is None:
            return word_values_numpy(data)
        return _KERNELS.word_values(np.frombuffer(data, dtype=np.uint8), _TOKEN_BYTES, _CRC_TABLE)
    return np.frombuffer(data, dtype=np.uint8).astype(np.uint64)


def word_values_numpy(data: bytes) -> np.ndarray:
    """CRC32 of each identifier-like token of UTF-8 bytes (the reference of the numba kernel)."""
    toks = _TOKEN.findall(data)
    return np.fromiter(map(zlib.crc32, toks), dtype=np.uint64, count=len(toks))


def shingle_hashes(values: np.ndarray, ngram: int) -> np.ndarray:
    """Sorted unique 64-bit hashes of the `ngram`-windows of `values` (one window if it is shorter)."""
    if values.size == 0:
        return np.empty(0, dtype=np.uint64)
    consts = _odd_constants(ngram, 0)
    if _KERNELS is None:
        return np.unique(window_hashes_numpy(values, ngram, consts))
    return np.unique(_KERNELS.window_hashes(np.ascontiguousarray(values, dtype=np.uint64), ngram, consts))


def window_hashes_numpy(values: np.ndarray, ngram: int, consts: np.ndarray) -> np.ndarray:
    """fmix64 of sum_j (values[k + j] + 1) * consts[j] for every window k (the reference of the kernel)."""
    width = min(ngram, values.size)
    num = values.size - width + 1
    acc = np.zeros(num, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(width):
            acc += (values[j : j + num] + np.uint64(1)) * consts[j]
    return fmix64(acc)


def text_shingles(text: str, unit: str, ngram: int) -> np.ndarray:
    """Sorted unique shingle hashes of a text."""
    return shingle_hashes(unit_values(text, unit), ngram)


@lru_cache(maxsize=16)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) uint32 of the `num_perm` hash functions h(x) = a*x + b mod 2^32; a is odd."""
    rng = np.random.default_rng([seed, num_perm])
    a = rng.integers(0, 2**32, size=num_perm, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
    b = rng.integers(0, 2**32, size=num_perm, dtype=np.uint64).astype(np.uint32)
    return a, b


def min_hash_numpy(keys: np.ndarray, a: np.ndarray, b: np.ndarray, best: np.ndarray) -> None:
    """best[j] = min(best[j], min over keys of (a[j] * key + b[j]) mod 2^32), on blocks that stay in cache."""
    block = np.empty((min(_BLOCK, keys.size), a.size), dtype=np.uint32)
    for start in range(0, keys.size, _BLOCK):
        x = keys[start : start + _BLOCK, None]
        out = block[: x.shape[0]]
        np.multiply(x, a, out=out)
        out += b
        np.minimum(best, np.minimum.reduce(out, axis=0), out=best)


def _crc_table() -> np.ndarray:
    """zlib's CRC-32 table (reflected polynomial 0xEDB88320)."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> np.uint32(1)) ^ np.uint32(0xEDB88320), table >> np.uint32(1)).astype(np.uint32)
    return table


_CRC_TABLE = _crc_table()
_TOKEN_BYTES = np.array([bool(_TOKEN.fullmatch(bytes([b]))) for b in range(256)])
"""True for the bytes of identifier-like tokens ([A-Za-z_0-9])."""


def _numba_kernels():
    """The numba versions of `word_values_numpy`, `window_hashes_numpy`, `min_hash_numpy` and of the
    intersection in `jaccard` (same results; the tests compare them), or None without numba. Each is
    one pass over its input."""
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(cache=True, nogil=True, boundscheck=False)
    u32, u64 = np.uint32, np.uint64

    @jit
    def word_values(data, token_bytes, crc_table):
        out = np.empty(data.size // 2 + 1, dtype=np.uint64)
        count, i = 0, 0
        while i < data.size:
            if not token_bytes[data[i]]:
                i += 1
                continue
            crc = u32(0xFFFFFFFF)
            while i < data.size and token_bytes[data[i]]:
                crc = crc_table[(crc ^ data[i]) & u32(0xFF)] ^ (crc >> u32(8))
                i += 1
            out[count] = crc ^ u32(0xFFFFFFFF)
            count += 1
        return out[:count]

    @jit
    def window_hashes(values, ngram, consts):
        width = min(ngram, values.size)
        out = np.empty(values.size - width + 1, dtype=np.uint64)
        for k in range(out.size):
            acc = u64(0)
            for j in range(width):
                acc += (values[k + j] + u64(1)) * consts[j]
            acc ^= acc >> u64(33)
            acc *= u64(0xFF51AFD7ED558CCD)
            acc ^= acc >> u64(33)
            acc *= u64(0xC4CEB9FE1A85EC53)
            acc ^= acc >> u64(33)
            out[k] = acc
        return out

    @jit
    def intersection_size(a, b):
        i = j = count = 0
        while i < a.size and j < b.size:
            if a[i] == b[j]:
                count += 1
                i += 1
                j += 1
            elif a[i] < b[j]:
                i += 1
            else:
                j += 1
        return count

    @jit
    def min_hash(keys, a, b, best):
        for i in range(keys.size):
            x = keys[i]
            for j in range(a.size):
                best[j] = min(best[j], u32(a[j] * x + b[j]))  # u32(): the product and sum mod 2^32

    return types.SimpleNamespace(word_values=word_values, window_hashes=window_hashes, min_hash=min_hash,
                                 intersection_size=intersection_size)


_KERNELS = _numba_kernels()


def signature(shingles: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """MinHash signature (uint32, length `num_perm`) of a set of 64-bit shingle hashes."""
    a, b = permutations(num_perm, seed)
    best = np.full(num_perm, EMPTY_HASH, dtype=np.uint32)
    if shingles.size:
        keys = (shingles >> np.uint64(32)).astype(np.uint32)
        (min_hash_numpy if _KERNELS is None else _KERNELS.min_hash)(keys, a, b, best)
    return best


def text_signature(text: str, unit: str, ngram: int, num_perm: int, seed: int) -> np.ndarray:
    """Shingle a text and return its MinHash signature."""
    return signature(text_shingles(text, unit, ngram), num_perm, seed)


def band_keys(signatures: np.ndarray, bands: int, rows: int, seed: int) -> np.ndarray:
    """(n, bands) uint64 keys: a 64-bit hash of each band's `rows` signature values."""
    sig = np.asarray(signatures, dtype=np.uint64).reshape(-1, bands, rows)
    consts = _odd_constants(rows, seed + 1)
    with np.errstate(over="ignore"):
        mixed = (sig + np.uint64(1)) * consts
        return fmix64(mixed.sum(axis=2, dtype=np.uint64))


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Share of equal signature positions: an unbiased estimate of the Jaccard similarity."""
    return float(np.mean(np.asarray(sig_a) == np.asarray(sig_b)))


def jaccard(shingles_a: np.ndarray, shingles_b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique hash sets (1.0 for two empty sets)."""
    if _KERNELS is None:
        inter = np.intersect1d(shingles_a, shingles_b, assume_unique=True).size
    else:
        inter = _KERNELS.intersection_size(shingles_a, shingles_b)  # one merge pass over the sorted sets
    union = shingles_a.size + shingles_b.size - inter
    return 1.0 if union == 0 else inter / union


def lsh_probability(jaccard: float, bands: int, rows: int) -> float:
    """Probability that a pair with this Jaccard shares at least one band (the LSH S-curve)."""
    return 1.0 - (1.0 - jaccard**rows) ** bands
