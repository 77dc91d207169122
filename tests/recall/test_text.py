"""The cached BPE encoder gives exactly the lines of `tokenizers` itself; normalisation; scoring with k=1."""

from __future__ import annotations

import gzip
import json
import random

import numpy as np
import pytest

from tasks.recall import corpus
from tasks.recall.classify import CODE, FastTextScorer, fasttext_hash, load, score_texts, train
from tasks.recall.loop import settings_of
from tasks.recall.config import RecallConfig
from tasks.recall.text import BpeEncoder, bpe_lines, normalize, normalized_words, train_bpe

AWKWARD = [
    "", "x", "don't it's we'll i'd they've you're 's 't",
    "déjà vu – naïve café; ½ ² ³ ⅻ ⑴ ０１２ ｆｕｌｌｗｉｄｔｈ",
    "e\u0301 combining \u0301mark a\u0308 \u200b zero-width \u00ad soft",
    "日本語のテキスト 中文文本，没有空格。 한국어 텍스트",
    "emoji 👍🏽 🇫🇷 👩‍💻 and \U0001d54f math",
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeed \x1c\x1d\x1e\x1f seps \x85 nel \u2028 ls",
    "  leading and trailing spaces  ", "double  spaces   inside",
    "__init__ foo_bar _ __ ___x x___ 123_456 a1b2 1.5e-3 0xff",
    "def f(x):\n    return x**2 # comment\n}{[]()<>=>!=&&||->::",
    "\x00 nul \x07 bell \x1b[0m ansi \x7f del",
    "ǅ titlecase ʰ modifier ᾼ greek Ⅻ roman ℌ fraktur ﬁ ligature",
]


@pytest.fixture(scope="module")
def shipped() -> list[str]:
    texts = []
    for path in (corpus.WEB_PAGES, corpus.HELDOUT):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f]
    return texts


@pytest.fixture(scope="module")
def tok(shipped):
    return train_bpe([normalize(t) for t in shipped[::3]] + AWKWARD, vocab_size=800)


def test_encoder_lines_and_ids_equal_tokenizers_on_the_shipped_corpora(tok, shipped):
    normalized = [normalize(t) for t in shipped]
    encoder = BpeEncoder(tok)
    expected = tok.encode_batch(normalized)
    assert encoder.lines(normalized) == bpe_lines(tok, normalized)
    assert encoder.lines(normalized) == bpe_lines(tok, normalized), "cached words give the same lines"
    ids, lengths = encoder.batch_ids([normalized_words(t) for t in shipped])
    assert ids.tolist() == [i for e in expected for i in e.ids]
    assert lengths.tolist() == [len(e.ids) for e in expected]


@pytest.mark.parametrize("text", AWKWARD)
def test_encoder_equals_tokenizers_on_awkward_unicode_raw_and_normalized(tok, text):
    encoder = BpeEncoder(tok)
    for t in (text, normalize(text)):
        assert encoder.line(t) == " ".join(tok.encode(t).tokens)
        assert "\n" not in encoder.line(t)


def test_encoder_cache_is_emptied_when_it_outgrows_its_bound(tok, shipped):
    encoder = BpeEncoder(tok, max_cached_words=1_000)
    vocabulary_only = len(encoder._spaced) + len(encoder._pieces)
    normalized = [normalize(t) for t in shipped[:400]]
    assert encoder.lines(normalized) == bpe_lines(tok, normalized)
    assert len(encoder._spaced) + len(encoder._pieces) > vocabulary_only + 1_000
    one = normalize("a short page with seven words")
    assert encoder.lines([one]) == bpe_lines(tok, [one])
    assert len(encoder._spaced) + len(encoder._pieces) <= vocabulary_only + 2 * len(one.split())


def test_normalize_collapses_unicode_whitespace_lowercases_and_cuts():
    assert normalize("  Hello\u00a0\u2003World\n\n\tX  ") == "hello world x"
    assert normalize("ＡＢＣ ｆｉ") == "abc fi"
    assert normalize("a" * 50 + " b", max_chars=10) == "a" * 10
    assert normalize("") == ""


@pytest.mark.parametrize("max_chars", [1, 5, 9, 10, 11, 40, 4000])
def test_normalized_words_are_the_words_of_normalize(max_chars):
    for text in [*AWKWARD, "ab cd  ef\tgh " * 5, "İİİİ " * 10, " \n\t ", "x" * 30]:
        expected = normalize(text, max_chars)
        assert normalized_words(text, max_chars) == (expected.split(" ") if expected else [])


def test_ids_of_a_cut_text_ending_in_a_space_equal_tokenizers(tok):
    encoder = BpeEncoder(tok)
    text = normalize("def f(x): return x " * 10, max_chars=19)
    assert text.endswith(" ")
    assert encoder.line(text) == " ".join(tok.encode(text).tokens)
    ids, _ = encoder.batch_ids([normalized_words("def f(x): return x " * 10, 19)])
    assert ids.tolist() == tok.encode(text).ids


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model trained by `train` on generated pages (both labels)."""
    rows = corpus.build_pages(random.Random(3), [], ["textwrap", "shlex", "fnmatch"], scale=60)
    folder = tmp_path_factory.mktemp("model")
    model_path, tok_path = train([r["text"] for r in rows], [r["label"] for r in rows], folder,
                                 settings_of(RecallConfig(vocab_size=300, epoch=5)))
    return str(model_path), str(tok_path)


def test_numpy_scorer_equals_fasttext_predict(trained, shipped):
    import fasttext

    model = fasttext.load_model(trained[0])
    texts = shipped[::2] + AWKWARD + ["", None, "   ", "__label__code __label__other x"]
    scores = score_texts(texts, *trained, max_chars=4000)
    encoder = load(*trained)[1]
    for score, text in zip(scores, texts):
        line = encoder.line(normalize(text or ""))
        if not line:
            assert score == 0.0
            continue
        labels, probs = model.predict(line, k=2)
        assert score == pytest.approx(dict(zip(labels, probs))[CODE], abs=2e-5)
    assert scores.max() - scores[scores > 0].min() > 0.2, "the check covers varied probabilities"


def test_word_ngrams_of_any_order_match_fasttext(tmp_path, shipped):
    import fasttext

    tok = train_bpe([normalize(t) for t in shipped[:300]], vocab_size=300)
    encoder = BpeEncoder(tok)
    lines = encoder.lines([normalize(t) for t in shipped[:300]])
    train_file = tmp_path / "train.txt"
    train_file.write_text("".join(f"{CODE if i % 3 else '__label__other'} {line}\n" for i, line in enumerate(lines)))
    model = fasttext.train_supervised(str(train_file), epoch=2, wordNgrams=3, dim=8, bucket=5000, thread=1,
                                      seed=1, verbose=0, minCount=2)
    scorer = FastTextScorer.compile(model, encoder.tokens)
    texts = [normalize(t) for t in shipped[300:400]]
    ids, lengths = encoder.batch_ids([t.split(" ") for t in texts])
    got = scorer.code_probability(ids, lengths)
    for score, text in zip(got, texts):
        labels, probs = model.predict(encoder.line(text), k=2)
        assert score == pytest.approx(dict(zip(labels, probs))[CODE], abs=2e-5)


def test_fasttext_hash_is_fnv1a_over_signed_bytes():
    assert fasttext_hash("") == 2166136261 - 2**32
    assert fasttext_hash("a") == -468965076  # 0xe40c292c as int32
    assert fasttext_hash("é") != fasttext_hash("Ã©")


def test_numba_mean_margins_equal_the_numpy_reference(trained, shipped):
    from tasks.recall import classify

    if classify._MEAN_MARGINS is None:
        pytest.skip("numba is not installed")
    scorer, encoder = load(*trained)
    ids, lengths = encoder.batch_ids([normalized_words(t) for t in shipped[:300] + ["", "x"]])
    assert np.allclose(scorer.mean_margins(ids, lengths), scorer.mean_margins_numpy(ids, lengths), rtol=0, atol=1e-6)
