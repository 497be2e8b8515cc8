"""Our ids equal Google's ``FullTokenizer`` and Hugging Face's ``BertWordPieceTokenizer``.

Every line of the real-text corpora (English, Norwegian, Chinese, Russian), with a real
uncased 30k vocab and a cased vocab trained on the corpora; then arbitrary Unicode text.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import scaled
from norbert import FullTokenizer

CASES = [("uncased_vocab_path", True), ("cased_vocab_path", False)]


def _differences(expected, actual, lines):
    bad = [(line, e, a) for line, e, a in zip(lines, expected, actual) if e != a]
    return "%d of %d lines differ; first: %r" % (len(bad), len(lines), bad[:1])


@pytest.mark.parametrize("vocab_fixture, lower", CASES)
def test_same_tokens_as_reference_on_every_corpus_line(
    request, vocab_fixture, lower, corpus_lines, reference_tokenization
):
    vocab_path = request.getfixturevalue(vocab_fixture)
    reference = reference_tokenization.FullTokenizer(vocab_path, do_lower_case=lower)
    ours = FullTokenizer(vocab_path, do_lower_case=lower)
    expected = [reference.tokenize(line) for line in corpus_lines]
    assert sum(map(len, expected)) > scaled(250_000)  # the corpora really were tokenised
    tokens = [ours.tokenize(line) for line in corpus_lines]
    assert tokens == expected, _differences(expected, tokens, corpus_lines)
    expected_ids = [reference.convert_tokens_to_ids(t) for t in expected]
    ids = [ours.encode(line) for line in corpus_lines]
    assert ids == expected_ids, _differences(expected_ids, ids, corpus_lines)


@pytest.mark.parametrize("vocab_fixture, lower", CASES)
def test_same_ids_as_hugging_face_on_every_corpus_line(
    request, vocab_fixture, lower, corpus_lines
):
    tokenizers = pytest.importorskip("tokenizers")
    vocab_path = request.getfixturevalue(vocab_fixture)
    hf = tokenizers.BertWordPieceTokenizer(vocab_path, lowercase=lower, strip_accents=lower)
    expected = [e.ids for e in hf.encode_batch(corpus_lines, add_special_tokens=False)]
    ours = FullTokenizer(vocab_path, do_lower_case=lower)
    ids = [ours.encode(line) for line in corpus_lines]
    assert ids == expected, _differences(expected, ids, corpus_lines)


# Arbitrary Unicode (all categories but surrogates) with the characters that matter over-weighted.
_interesting = st.sampled_from(
    list(" \t\n\r\x00\x0b\x1f\x7f\x85\xa0\u200b\u2028\u3000\ufeff\ufffd")
    + list("!,.-'\"«»—¿中文\uf900\U00020000한İÅåßẞǅΣς\u0301\u0338ﬁ")
)
_text = st.lists(st.one_of(st.characters(), _interesting), max_size=60).map("".join) | st.text()


@pytest.mark.parametrize("vocab_fixture, lower", CASES + [("cased_vocab_path", True)])
def test_property_same_as_reference_on_arbitrary_unicode(
    request, vocab_fixture, lower, reference_tokenization
):
    vocab_path = request.getfixturevalue(vocab_fixture)
    reference = reference_tokenization.FullTokenizer(vocab_path, do_lower_case=lower)
    ours = FullTokenizer(vocab_path, do_lower_case=lower, check_casing=False)

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_text)
    def check(text):
        tokens = ours.tokenize(text)
        assert tokens == reference.tokenize(text)
        assert ours.encode(text) == reference.convert_tokens_to_ids(tokens)

    check()
