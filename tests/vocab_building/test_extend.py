"""Growing a vocab (``norbert.vocab_building.extend``) and learning its new tokens against the
old vocab (``learner.learn_additions``): ids kept, slots first, rows from the pieces."""

import collections

import numpy as np
import pytest

from norbert import NorbertError
from norbert.tokenization import text as textlib
from norbert.vocab_building import extend, learner
from helpers import SPECIALS

OLD = SPECIALS + ["[unused0]", "[unused1]", "sko", "##g", "##en", "##ene", "s", "k", "o",
                  "##k", "##o", "##s", "##e", "##n", "g", "e", "n"]
VOCAB = {t: i for i, t in enumerate(OLD)}


def test_new_tokens_fill_the_slots_then_are_appended_and_old_ids_stay():
    growth = extend.grow(VOCAB, ["skog", "##gen", "skogen"])
    expected = list(OLD)
    expected[5:7] = ["skog", "##gen"]  # the [unused0] and [unused1] lines
    assert growth.tokens == expected + ["skogen"] and growth.ids == [5, 6, len(OLD)]
    assert growth.slots_filled == 2 and growth.old_size == len(OLD)
    names = [[OLD[i] for i in p] for p in growth.pieces]
    assert names == [["sko", "##g"], ["##g", "##en"], ["sko", "##g", "##en"]]
    with pytest.raises(NorbertError, match="already in the vocab cannot be added: sko"):
        extend.grow(VOCAB, ["sko"])


def test_rows_are_the_mean_of_the_pieces_or_fresh():
    growth = extend.grow(VOCAB, ["skog", "##gen", "skogen"])
    rng = np.random.RandomState(0)
    table = rng.randn(len(OLD), 4).astype(np.float32)
    grown = extend.grown_rows(table, growth, extend.MEAN, rng, 0.02)
    assert grown.shape == (len(OLD) + 1, 4)
    np.testing.assert_allclose(grown[5], table[[VOCAB["sko"], VOCAB["##g"]]].mean(0))
    np.testing.assert_allclose(grown[-1], table[[VOCAB["sko"], VOCAB["##g"],
                                                 VOCAB["##en"]]].mean(0), rtol=1e-6)
    untouched = [i for i in range(len(OLD)) if i not in (5, 6)]
    np.testing.assert_array_equal(grown[untouched], table[untouched])
    fresh = extend.grown_rows(table, growth, extend.RANDOM, np.random.RandomState(1), 0.02)
    assert 0 < np.abs(fresh[growth.ids]).max() < 0.1  # N(0, 0.02)
    np.testing.assert_array_equal(fresh[untouched], table[untouched])
    slot = extend.grown_slot(np.ones((len(OLD), 4), np.float32), growth)
    assert not slot[growth.ids].any() and slot[untouched].all()


def test_bias_rules_give_new_tokens_their_pieces_mean_min_or_product_prior():
    growth = extend.grow(VOCAB, ["skog", "skogen"])  # sko ##g; sko ##g ##en
    bias = np.random.RandomState(0).randn(len(OLD)).astype(np.float64)
    parts = [[VOCAB["sko"], VOCAB["##g"]], [VOCAB["sko"], VOCAB["##g"], VOCAB["##en"]]]
    untouched = [i for i in range(len(OLD)) if i not in growth.ids]

    def grown(rule):
        out = extend.grown_bias(bias, growth, rule)
        assert out.shape == (len(OLD),)  # both into the [unusedN] slots
        np.testing.assert_array_equal(out[untouched], bias[untouched])
        return out[growth.ids]

    np.testing.assert_allclose(grown(extend.MEAN), [bias[p].mean() for p in parts])
    np.testing.assert_allclose(grown(extend.MIN), [bias[p].min() for p in parts])
    assert not grown(extend.ZERO).any()
    # product: softmax over the old biases gives the token its pieces' joint probability
    probs = np.exp(bias) / np.exp(bias).sum()
    joint = np.exp(grown(extend.PRODUCT)) / np.exp(bias).sum()
    np.testing.assert_allclose(joint, [probs[p].prod() for p in parts], rtol=1e-9)
    assert (grown(extend.PRODUCT) < grown(extend.MIN)).all()  # rarer than any of its pieces
    with pytest.raises(NorbertError, match="--bias_init=max: use one of mean, min"):
        extend.grown_bias(bias, growth, "max")


def test_additions_join_the_most_frequent_pairs_of_old_pieces():
    counts = collections.Counter({"skogen": 10, "skog": 4, "skoene": 1})
    added = learner.learn_additions(counts, VOCAB, 5, min_frequency=2)
    # skogen = sko ##g ##en (10), skog = sko ##g (4): (sko, ##g) 14 first, then (skog, ##en) 10
    assert added == ["skog", "skogen"]
    assert learner.learn_additions(counts, VOCAB, 1, min_frequency=2) == ["skog"]
    grown = extend.grow(VOCAB, added)
    vocab = {t: i for i, t in enumerate(grown.tokens)}
    assert learner.corpus_tokens(counts, vocab)[0] < learner.corpus_tokens(counts, VOCAB)[0]


def test_additions_on_real_text_shorten_it(corpus_paths, uncased_vocab_path):
    from norbert import load_vocab

    norwegian = [p for p in corpus_paths if "norwegian" in p][0]
    with open(norwegian, encoding="utf-8") as f:
        counts = collections.Counter(textlib.basic_tokenize(f.read(200_000), True))
    old = load_vocab(uncased_vocab_path)
    added = learner.learn_additions(counts, old, 300)
    assert len(added) == 300 and not set(added) & set(old)
    vocab = {t: i for i, t in enumerate(extend.grow(old, added).tokens)}
    before, after = learner.corpus_tokens(counts, old)[0], learner.corpus_tokens(counts, vocab)[0]
    assert after < 0.93 * before, (before, after)
