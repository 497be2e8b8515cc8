"""``TokenizerOptions``: the options check themselves, and say what they are."""

import pytest

from norbert import NorbertError, TokenizerOptions


def test_defaults_are_googles_and_a_list_becomes_a_tuple():
    assert TokenizerOptions().flags() == ""  # Google's tokenizer: nothing to say
    options = TokenizerOptions(never_split=["<url>", "[keep]"])
    assert options.never_split == ("<url>", "[keep]") and options != TokenizerOptions()
    assert hash(options) == hash(TokenizerOptions(never_split=("<url>", "[keep]")))
    assert TokenizerOptions(strip_accents=False, tokenize_chinese_chars=False,
                            never_split=("<url>",)).flags() == (
        "--strip_accents=false --tokenize_chinese_chars=false --never_split=<url>")


@pytest.mark.parametrize("words, message", [
    ("<url>", "takes a list of words, not the string '<url>'"),
    (("<url>", "a b"), "'a b' is not a word"),
    (("",), "'' is not a word"),
    (("<url>", "<url>"), "names a word twice"),
])
def test_never_split_must_be_distinct_words(words, message):
    with pytest.raises(NorbertError, match="--never_split.*" + message.replace("(", r"\(")):
        TokenizerOptions(never_split=words)


def test_never_split_words_must_be_vocab_tokens():
    options = TokenizerOptions(never_split=("<url>", "<e>"))
    options.check_vocab({"<url>": 5, "<e>": 6}, "vocab.txt")
    assert options.missing(["<e>", "x"]) == ["<url>"]
    with pytest.raises(NorbertError, match=r"--never_split: <e> not in vocab.txt"):
        options.check_vocab(["<url>"], "vocab.txt")
