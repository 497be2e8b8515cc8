"""Google's module-level tokenization API (``from norbert import tokenization``): Google's own
tokenization tests, rewritten here keeping what they assert, and the module against Google's on
real text."""

import pytest

from norbert import tokenization

# Google's test vocab: no [PAD], no [MASK] (the tokenizer needs neither).
GOOGLE_TEST_VOCAB = ["[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn",
                     "##ing"]
TEXT = "UNwant\u00E9d,running [unused0] [CLS] [unused55]"


def _full_tokenizer(tmp_path, **options):
    path = tmp_path / "vocab.txt"
    path.write_text("".join(t + "\n" for t in GOOGLE_TEST_VOCAB + [",", "[unused0]"]),
                    encoding="utf-8")
    return tokenization.FullTokenizer(str(path), **options)


def test_full_tokenizer(tmp_path):
    tokenizer = _full_tokenizer(tmp_path)
    tokens = tokenizer.tokenize(TEXT)
    assert tokens == ["un", "##want", "##ed", ",", "runn", "##ing"] + ["[UNK]"] * 9
    assert tokenizer.convert_tokens_to_ids(tokens) == [7, 4, 5, 10, 8, 9] + [0] * 9


def test_full_tokenizer_preserving_unused_tokens(tmp_path):
    # Google's test turns on its absl flag; norbert takes the setting as an argument.
    tokenizer = _full_tokenizer(tmp_path, preserve_unused_tokens=True)
    tokens = tokenizer.tokenize(TEXT)
    assert tokens == ["un", "##want", "##ed", ",", "runn", "##ing", "[unused0]"] + ["[UNK]"] * 6
    assert tokenizer.convert_tokens_to_ids(tokens) == [7, 4, 5, 10, 8, 9, 11] + [0] * 6


def test_chinese_characters_stand_alone():
    assert tokenization.BasicTokenizer().tokenize("ah\u535A\u63A8zz") == [
        "ah", "\u535A", "\u63A8", "zz"]


def test_basic_tokenizer_lower_and_cased():
    lower = tokenization.BasicTokenizer(do_lower_case=True)
    assert lower.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you",
                                                             "?"]
    assert lower.tokenize("H\u00E9llo") == ["hello"]
    cased = tokenization.BasicTokenizer(do_lower_case=False)
    assert cased.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["HeLLo", "!", "how", "Are", "yoU",
                                                             "?"]


def test_wordpiece_tokenizer():
    vocab = {t: i for i, t in enumerate(GOOGLE_TEST_VOCAB)}
    tokenizer = tokenization.WordpieceTokenizer(vocab=vocab)
    assert tokenizer.tokenize("") == []
    assert tokenizer.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert tokenizer.tokenize("unwantedX running") == ["[UNK]", "runn", "##ing"]


def test_convert_tokens_to_ids():
    vocab = {t: i for i, t in enumerate(GOOGLE_TEST_VOCAB)}
    assert tokenization.convert_tokens_to_ids(
        vocab, ["un", "##want", "##ed", "runn", "##ing"]) == [7, 4, 5, 8, 9]


def test_character_classes():
    for char in (" ", "\t", "\r", "\n", "\u00A0"):
        assert tokenization._is_whitespace(char)
    for char in ("A", "-"):
        assert not tokenization._is_whitespace(char)
    assert tokenization._is_control("\u0005")
    for char in ("A", " ", "\t", "\r", "\U0001F4A9"):
        assert not tokenization._is_control(char)
    for char in ("-", "$", "`", "."):
        assert tokenization._is_punctuation(char)
    for char in ("A", " "):
        assert not tokenization._is_punctuation(char)


# -- against Google's module --------------------------------------------------------------


def test_the_module_matches_googles_on_real_text(reference_tokenization, corpus_lines,
                                                 uncased_vocab_path):
    google = reference_tokenization
    assert tokenization.load_vocab(uncased_vocab_path) == google.load_vocab(uncased_vocab_path)
    vocab = tokenization.load_vocab(uncased_vocab_path)
    inv = {i: t for t, i in vocab.items()}
    for lower in (True, False):
        ours = tokenization.BasicTokenizer(do_lower_case=lower)
        theirs = google.BasicTokenizer(do_lower_case=lower)
        ours_wp = tokenization.WordpieceTokenizer(vocab)
        theirs_wp = google.WordpieceTokenizer(vocab)
        for line in corpus_lines[::7]:
            words = ours.tokenize(line)
            assert words == theirs.tokenize(line), line
            joined = " ".join(words)
            pieces = ours_wp.tokenize(joined)
            assert pieces == theirs_wp.tokenize(joined), line
            ids = tokenization.convert_tokens_to_ids(vocab, pieces)
            assert ids == google.convert_tokens_to_ids(vocab, pieces)
            assert tokenization.convert_ids_to_tokens(inv, ids) == pieces
    for text in ("plain", b"caf\xc3\xa9", b"bad \xff byte", "  spaced   out  ", ""):
        assert tokenization.convert_to_unicode(text) == google.convert_to_unicode(text)
        assert tokenization.printable_text(text) == google.printable_text(text)
        assert tokenization.whitespace_tokenize(
            tokenization.convert_to_unicode(text)) == google.whitespace_tokenize(
            google.convert_to_unicode(text))
    with pytest.raises(ValueError):
        tokenization.convert_to_unicode(3)
