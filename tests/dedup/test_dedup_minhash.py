"""Our vectorized MinHash: unbiased against exact Jaccard, as accurate as datasketch, deterministic."""

import numpy as np
import pytest
from datasketch import MinHash

from tasks.dedup import minhash as mh

NUM_PERM = 256
SIMILARITIES = (0.1, 0.3, 0.5, 0.7, 0.9, 0.98)


def pair_with_jaccard(rng: np.random.Generator, size: int, target: float) -> tuple[np.ndarray, np.ndarray]:
    """Two sets of `size` random 64-bit hashes whose exact Jaccard is close to `target`."""
    common = int(round(2 * size * target / (1 + target)))
    pool = np.unique(rng.integers(0, 2**63, size=3 * size, dtype=np.uint64))
    rng.shuffle(pool)
    a = pool[:size]
    b = np.concatenate([pool[:common], pool[size : 2 * size - common]])
    return np.unique(a), np.unique(b)


@pytest.mark.parametrize("target", SIMILARITIES)
def test_estimate_matches_exact_jaccard_and_datasketch(target):
    rng = np.random.default_rng(int(target * 1000))
    ours, theirs = [], []
    for trial in range(40):
        a, b = pair_with_jaccard(rng, int(rng.integers(50, 400)), target)
        exact = mh.jaccard(a, b)
        ours.append(mh.estimate_jaccard(mh.signature(a, NUM_PERM, trial), mh.signature(b, NUM_PERM, trial)) - exact)
        ma, mb = MinHash(num_perm=NUM_PERM, seed=trial), MinHash(num_perm=NUM_PERM, seed=trial)
        ma.update_batch([x.tobytes() for x in a])
        mb.update_batch([x.tobytes() for x in b])
        theirs.append(ma.jaccard(mb) - exact)
    ours, theirs = np.array(ours), np.array(theirs)
    sd = np.sqrt(target * (1 - target) / NUM_PERM) + 1e-3
    # Unbiased: the mean error over 40 pairs is within 4 standard errors of 0.
    assert abs(ours.mean()) < 4 * sd / np.sqrt(len(ours))
    # Spread no wider than the binomial model predicts for independent permutations.
    assert ours.std() < 1.5 * sd
    # Same expected estimate as datasketch on the same pairs (difference of two means within 4 s.e.).
    assert abs(ours.mean() - theirs.mean()) < 4 * np.sqrt(2) * sd / np.sqrt(len(ours))


def test_identical_and_disjoint_sets():
    rng = np.random.default_rng(0)
    a = np.unique(rng.integers(0, 2**63, size=500, dtype=np.uint64))
    b = np.unique(rng.integers(0, 2**63, size=500, dtype=np.uint64))
    assert mh.estimate_jaccard(mh.signature(a, 512, 1), mh.signature(a.copy(), 512, 1)) == 1.0
    assert mh.estimate_jaccard(mh.signature(a, 512, 1), mh.signature(b, 512, 1)) < 0.05


def test_signature_is_mergeable_over_unions():
    rng = np.random.default_rng(1)
    a = np.unique(rng.integers(0, 2**63, size=300, dtype=np.uint64))
    b = np.unique(rng.integers(0, 2**63, size=300, dtype=np.uint64))
    merged = np.minimum(mh.signature(a, 128, 3), mh.signature(b, 128, 3))
    assert np.array_equal(merged, mh.signature(np.union1d(a, b), 128, 3))


def test_word_and_char_shingles():
    text = "def f(x):\n    return x + 1\n"
    words = mh.text_shingles(text, "word", 2)
    assert words.size == 5  # tokens def f x return x 1: five distinct 2-grams
    chars = mh.text_shingles("abcabc", "char", 3)
    assert chars.size == 3  # abc, bca, cab
    assert mh.text_shingles("", "word", 5).size == 0
    assert mh.text_shingles("a b", "word", 5).size == 1  # shorter than n: one shingle


def test_shingles_ignore_whitespace_and_punctuation_at_word_level():
    assert np.array_equal(mh.text_shingles("a(b, c)", "word", 2), mh.text_shingles("a  b\n c", "word", 2))
    assert not np.array_equal(mh.text_shingles("a b c", "word", 2), mh.text_shingles("c b a", "word", 2))


def test_signatures_and_band_keys_are_deterministic():
    text = "import os\nprint(os.getcwd())\n" * 20
    first = mh.text_signature(text, "word", 5, 2048, 1)
    again = mh.text_signature(text, "word", 5, 2048, 1)
    other_seed = mh.text_signature(text, "word", 5, 2048, 2)
    assert first.dtype == np.uint32 and first.shape == (2048,)
    assert np.array_equal(first, again) and not np.array_equal(first, other_seed)
    keys = mh.band_keys(np.stack([first, again]), 16, 128, 1)
    assert keys.shape == (2, 16) and np.array_equal(keys[0], keys[1])
    changed = first.copy()
    changed[5] ^= 1
    differs = mh.band_keys(changed, 16, 128, 1)[0] != keys[0]
    assert differs.tolist() == [True] + [False] * 15


AWKWARD_TEXTS = ["", "x", "_", "a b", "   ", "déjà vu ünïcode 日本語 x_1 y2", "\x00\xff" * 3, "a" * 5000,
                 "def f(x):\n    return x + 1\n" * 50, "é" * 7 + "_" * 3 + "Z9" + "ß", "\ud800 lone surrogate"]


@pytest.mark.skipif(mh._KERNELS is None, reason="numba is not installed")
@pytest.mark.parametrize("text", AWKWARD_TEXTS)
def test_numba_kernels_equal_the_numpy_references(text):
    data = text.encode("utf-8", "replace")
    values = mh.unit_values(text, "word")
    assert np.array_equal(values, mh.word_values_numpy(data))
    for unit_values in (values, mh.unit_values(text, "char")):
        for ngram in (1, 2, 5):
            if unit_values.size:
                consts = mh._odd_constants(ngram, 0)
                assert np.array_equal(mh._KERNELS.window_hashes(unit_values, ngram, consts),
                                      mh.window_hashes_numpy(unit_values, ngram, consts))
    shingles = mh.text_shingles(text, "word", 5)
    for num_perm in (1, 7, 256, 2048):
        a, b = mh.permutations(num_perm, 3)
        kernel, reference = (np.full(num_perm, mh.EMPTY_HASH, dtype=np.uint32) for _ in range(2))
        keys = (shingles >> np.uint64(32)).astype(np.uint32)
        mh._KERNELS.min_hash(keys, a, b, kernel)
        mh.min_hash_numpy(keys, a, b, reference)
        assert np.array_equal(kernel, reference)


@pytest.mark.skipif(mh._KERNELS is None, reason="numba is not installed")
def test_kernels_on_random_bytes_and_keys():
    rng = np.random.default_rng(7)
    for _ in range(20):
        data = rng.integers(0, 256, size=int(rng.integers(0, 3000)), dtype=np.uint8).tobytes()
        assert np.array_equal(mh._KERNELS.word_values(np.frombuffer(data, np.uint8), mh._TOKEN_BYTES, mh._CRC_TABLE),
                              mh.word_values_numpy(data))
    keys = rng.integers(0, 2**32, size=1000, dtype=np.uint64).astype(np.uint32)
    keys[:3] = [0, 1, 2**32 - 1]
    a, b = mh.permutations(2048, 1)
    kernel, reference = (np.full(2048, mh.EMPTY_HASH, dtype=np.uint32) for _ in range(2))
    mh._KERNELS.min_hash(keys, a, b, kernel)
    mh.min_hash_numpy(keys, a, b, reference)
    assert np.array_equal(kernel, reference)


@pytest.mark.skipif(mh._KERNELS is None, reason="numba is not installed")
def test_intersection_kernel_equals_numpy():
    rng = np.random.default_rng(3)
    for size_a, size_b in [(0, 0), (0, 5), (1, 1), (300, 500), (2000, 10)]:
        pool = rng.integers(0, 2**64 - 1, size=2000, dtype=np.uint64)
        a = np.unique(rng.choice(pool, size=size_a)) if size_a else np.empty(0, np.uint64)
        b = np.unique(rng.choice(pool, size=size_b)) if size_b else np.empty(0, np.uint64)
        assert mh._KERNELS.intersection_size(a, b) == np.intersect1d(a, b, assume_unique=True).size
    assert mh.jaccard(np.empty(0, np.uint64), np.empty(0, np.uint64)) == 1.0
