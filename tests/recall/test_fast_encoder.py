"""`BpeEncoder.text_ids` (numba: raw text -> ids through a word/piece hash table and BPE merges in numba)
gives exactly the ids of the Python reference path and of `tokenizers` itself."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.recall import bpe_kernels
from tasks.recall.text import BpeEncoder, normalize, normalized_words

from tests.recall.test_text import AWKWARD, shipped, tok  # noqa: F401  (module fixtures)

pytestmark = pytest.mark.skipif(bpe_kernels.numba is None, reason="numba is not installed")

EDGES = [
    None, "", " ", " \n\t\x1c\x1f ", "x", "A", "ABC Def gHI", "a" * 100, "a" * 5000, ("word " * 900).strip(),
    "don't DON'T 're 'S ''s '''ll 'x 'm' x's", "1234567890" * 8, "a1b2c3" * 20, "!!!???...,,," * 10,
    "http://example.com/a_b?c=d&e=%20f#x " * 3, "snake_case_identifier_" * 5, "ab" * 40 + " " + "ba" * 40,
    "café latte", "naïve " * 800, "x " * 3000 + "é", "é " + "y" * 9000, "\x00\x07\x1b[0m\x7f", "\x85 \u2028 \u3000",
]
"""Cases besides AWKWARD: missing, blank, upper case, long words (the heap merge: > `bpe_kernels._SCAN_MAX` bytes),
contractions, texts longer than max_chars (ASCII and not, cut inside a word or after a space)."""


def expected_ids(encoder: BpeEncoder, texts: list, max_chars: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference: the Python word path on `normalized_words` (checked against `tokenizers` in test_text)."""
    return encoder.batch_ids([normalized_words(t or "", max_chars) for t in texts])


def assert_same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    assert got[1].tolist() == want[1].tolist()
    assert got[0].tolist() == want[0].tolist()


@pytest.mark.parametrize("max_chars", [4000, 50, 7, 1])
def test_text_ids_equal_the_reference_on_the_shipped_corpora(tok, shipped, max_chars):
    fast, reference = BpeEncoder(tok), BpeEncoder(tok)
    want = expected_ids(reference, shipped, max_chars)
    assert_same(fast.text_ids(shipped, max_chars), want)
    assert_same(fast.text_ids(shipped, max_chars), want), "cached words give the same ids"


def test_text_ids_equal_tokenizers_on_awkward_and_edge_texts(tok):
    texts = AWKWARD + EDGES
    for max_chars in (4000, 60, 11, 3):
        encoder = BpeEncoder(tok)
        ids, lengths = encoder.text_ids(texts, max_chars)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        for k, t in enumerate(texts):
            assert ids[offsets[k]:offsets[k + 1]].tolist() == tok.encode(normalize(t or "", max_chars)).ids, (max_chars, t)
        assert_same(encoder.text_ids(texts, max_chars), (ids, lengths))


def test_text_ids_one_text_at_a_time_and_misses_across_batches(tok, shipped):
    encoder, reference = BpeEncoder(tok), BpeEncoder(tok)
    docs = shipped[:200] + AWKWARD + EDGES
    for t in docs[::7]:
        assert_same(encoder.text_ids([t], 4000), expected_ids(reference, [t], 4000))
    assert_same(encoder.text_ids(docs[0::2], 4000), expected_ids(reference, docs[0::2], 4000))
    assert_same(encoder.text_ids(docs[1::2], 4000), expected_ids(reference, docs[1::2], 4000))
    assert_same(encoder.text_ids([], 4000), (np.zeros(0, np.int32), np.zeros(0, np.int64)))


def test_the_table_grows_and_clear_empties_it_back_to_the_vocabulary(tok, shipped):
    encoder, reference = BpeEncoder(tok), BpeEncoder(tok)
    table = encoder._table
    vocabulary_only = len(table)
    assert vocabulary_only == encoder._table_vocabulary_entries > 0
    small = table.e_hash.size, table.slots.size, table.keys.size, table.vals.size
    assert_same(encoder.text_ids(shipped, 4000), expected_ids(reference, shipped, 4000))
    grown = encoder._table
    assert grown is table and len(grown) > 4 * vocabulary_only
    assert all(after > before for after, before in zip((grown.e_hash.size, grown.slots.size, grown.keys.size, grown.vals.size), small))
    encoder.clear()
    assert len(encoder._table) == vocabulary_only and encoder._table.e_hash.size == small[0]
    assert len(encoder._first) == 0 and len(encoder._spaced) + len(encoder._pieces) == encoder._num_vocabulary_entries
    assert_same(encoder.text_ids(shipped[::5], 4000), expected_ids(reference, shipped[::5], 4000))


def test_the_table_is_emptied_when_it_outgrows_its_bound(tok, shipped):
    encoder, reference = BpeEncoder(tok, max_cached_words=1_000), BpeEncoder(tok)
    vocabulary_only = len(encoder._table)
    assert_same(encoder.text_ids(shipped[:400], 4000), expected_ids(reference, shipped[:400], 4000))
    assert len(encoder._table) > vocabulary_only + 1_000
    one = "a short page with seven words"
    assert_same(encoder.text_ids([one], 4000), expected_ids(reference, [one], 4000))
    assert len(encoder._table) <= vocabulary_only + 3 * len(one.split())


def test_non_ascii_words_go_through_the_python_path_and_are_then_cached(tok):
    encoder, reference = BpeEncoder(tok), BpeEncoder(tok)
    texts = [t for t in AWKWARD + EDGES if t and not t.isascii()]
    want = expected_ids(reference, texts, 4000)
    assert_same(encoder.text_ids(texts, 4000), want)
    assert len(encoder._spaced) > len(BpeEncoder(tok)._spaced), "new non-ASCII words went through `_WordIds`"
    cached = len(encoder._table)
    encoder._first.clear(), encoder._spaced.clear()  # a second batch finds them in the table
    assert_same(encoder.text_ids(texts, 4000), want)
    assert len(encoder._table) == cached and not encoder._spaced


def test_without_the_numba_bpe_every_new_word_goes_through_the_python_path(tok, shipped):
    encoder, reference = BpeEncoder(tok), BpeEncoder(tok)
    byte_ids, merges, vocab_size, _ = encoder._bpe
    encoder._bpe = (byte_ids, merges, vocab_size, False)
    encoder.clear()
    docs = shipped[:300] + AWKWARD + EDGES
    assert_same(encoder.text_ids(docs, 4000), expected_ids(reference, docs, 4000))
    assert len(encoder._spaced) > 1_000


def test_without_numba_text_ids_is_the_python_path(tok, shipped):
    encoder, reference = BpeEncoder(tok), BpeEncoder(tok)
    encoder._table = None
    docs = shipped[:100] + AWKWARD + EDGES
    assert_same(encoder.text_ids(docs, 4000), expected_ids(reference, docs, 4000))


def test_bpe_merges_equal_the_model_on_long_and_repetitive_pieces(tok):
    encoder = BpeEncoder(tok)
    words = ["a" * n for n in (2, 3, 31, 32, 33, 64, 257)] + ["ab" * n for n in (16, 17, 100)]
    words += ["the" * 20, "1" * 40, "." * 45, "_-" * 30, "tionment" * 9, "zqxj" * 12]
    for word in words:
        for t in (word, "x " + word, "x " + word.upper()):
            ids, _ = encoder.text_ids([t], 4000)
            assert ids.tolist() == tok.encode(normalize(t)).ids, t


def test_a_lone_surrogate_fails_as_in_the_python_path(tok):
    encoder, reference = BpeEncoder(tok), BpeEncoder(tok)
    with pytest.raises(UnicodeEncodeError):
        expected_ids(reference, ["ok \ud800 text"], 4000)
    with pytest.raises(UnicodeEncodeError):
        encoder.text_ids(["ok \ud800 text"], 4000)
    assert_same(encoder.text_ids(["ok text"], 4000), expected_ids(reference, ["ok text"], 4000))
