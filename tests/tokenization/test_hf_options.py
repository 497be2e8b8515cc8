"""Hugging Face's BertTokenizer options in norbert's tokenizer: strip_accents apart from
lower-casing, tokenize_chinese_chars and never_split. Hugging Face's basic-tokenizer tests for
them, rewritten keeping what they assert, and the tokenizer against the ``tokenizers``
package's BERT normalizer, pre-tokenizer and WordPiece on real text."""

import itertools

import pytest

from helpers import scaled
from norbert import FullTokenizer
from norbert.tokenization import BasicTokenizer

MIXED = " \tHäLLo!how  \n Are yoU?  "


@pytest.mark.parametrize("lower, strip, expected", [
    (True, False, ["hällo", "!", "how", "are", "you", "?"]),
    (True, True, ["hallo", "!", "how", "are", "you", "?"]),
    (True, None, ["hallo", "!", "how", "are", "you", "?"]),  # strips, as Google's
    (False, False, ["HäLLo", "!", "how", "Are", "yoU", "?"]),
    (False, True, ["HaLLo", "!", "how", "Are", "yoU", "?"]),
    (False, None, ["HäLLo", "!", "how", "Are", "yoU", "?"]),
])
def test_accents_apart_from_casing(lower, strip, expected):
    tokenizer = BasicTokenizer(do_lower_case=lower, strip_accents=strip)
    assert tokenizer.tokenize(MIXED) == expected
    accent = "H\u00E9llo"
    assert tokenizer.tokenize(accent) == [
        ("hello" if lower else "Hello") if strip or (strip is None and lower)
        else ("héllo" if lower else accent)]


def test_never_split_keeps_words_whole_and_as_written():
    tokenizer = BasicTokenizer(do_lower_case=False, never_split=["[UNK]"])
    assert tokenizer.tokenize(" \tHeLLo!how  \n Are yoU? [UNK]") == [
        "HeLLo", "!", "how", "Are", "yoU", "?", "[UNK]"]
    lower = BasicTokenizer(do_lower_case=True)
    assert lower.tokenize("a [MASK] b", never_split=["[MASK]"]) == ["a", "[MASK]", "b"]
    assert lower.tokenize("a [MASK] b") == ["a", "[", "mask", "]", "b"]  # Google's way


def test_chinese_characters_kept_in_their_words_when_asked():
    text = "ah\u535A\u63A8zz"
    assert BasicTokenizer().tokenize(text) == ["ah", "\u535A", "\u63A8", "zz"]
    assert BasicTokenizer(tokenize_chinese_chars=False).tokenize(text) == [text]


def test_full_tokenizer_takes_the_options():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hällo", "hallo", "!", "[keep]"]
    keep = FullTokenizer.from_vocab(vocab, strip_accents=False, never_split=["[keep]"],
                                    check_casing=False)
    assert keep.tokenize("HäLLo! [keep] [gone]") == ["hällo", "!", "[keep]", "[UNK]", "[UNK]",
                                                     "[UNK]"]
    assert keep.encode("HäLLo! [keep]") == [5, 7, 8]
    strip = FullTokenizer.from_vocab(vocab, check_casing=False)
    assert strip.tokenize("HäLLo!") == ["hallo", "!"]


# -- against the tokenizers package ---------------------------------------------------------


def _peer(vocab_path, lower, strip, chinese):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import normalizers, pre_tokenizers
    from tokenizers.models import WordPiece

    from norbert import load_vocab

    peer = tokenizers.Tokenizer(WordPiece(dict(load_vocab(vocab_path)), unk_token="[UNK]",
                                          max_input_chars_per_word=200))
    peer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=chinese,
                                                 strip_accents=strip, lowercase=lower)
    peer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return peer


@pytest.mark.parametrize("lower, strip, chinese", [
    c for c in itertools.product([True, False], [None, True, False], [True, False])])
def test_options_match_the_tokenizers_package_on_real_text(corpus_lines, uncased_vocab_path,
                                                           lower, strip, chinese):
    peer = _peer(uncased_vocab_path, lower, strip, chinese)
    ours = FullTokenizer(uncased_vocab_path, do_lower_case=lower, strip_accents=strip,
                         tokenize_chinese_chars=chinese, check_casing=False)
    basic = BasicTokenizer(do_lower_case=lower, strip_accents=strip,
                           tokenize_chinese_chars=chinese)
    lines = [line for line in corpus_lines[::5] if line.strip()]
    assert len(lines) > scaled(1000)
    mismatched = []
    for line in lines:
        encoded = peer.encode(line, add_special_tokens=False)
        if ours.encode(line) != encoded.ids:
            mismatched.append(line)
        assert [w for w, _ in peer.pre_tokenizer.pre_tokenize_str(
            peer.normalizer.normalize_str(line))] == basic.tokenize(line), line
    assert not mismatched, mismatched[:3]
