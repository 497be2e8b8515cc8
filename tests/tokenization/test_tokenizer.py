import warnings

import pytest

from norbert import CasingWarning, FullTokenizer, NorbertError, tokens_to_text

WORDS = ["un", "##aff", "##able", "hello", "world", ",", "!", "'", "don", "t", "[unused3]",
         "unused", "##3", "[", "]", "中", "文", "gr", "##use", "a", "##b"]


@pytest.fixture
def tok(make_vocab):
    return FullTokenizer(make_vocab(WORDS), do_lower_case=True)


def test_tokenize_and_ids(tok):
    assert tok.tokenize("UNaffable, Hello world!") == [
        "un", "##aff", "##able", ",", "hello", "world", "!",
    ]
    ids = tok.encode("UNaffable, Hello world!")
    assert ids == tok.convert_tokens_to_ids(tok.tokenize("UNaffable, Hello world!"))
    assert ids[:3] == [5, 6, 7]
    assert tok.convert_ids_to_tokens(ids[:3]) == ["un", "##aff", "##able"]
    assert tok.tokenize("Grüse 中文 xyz") == ["gr", "##use", "中", "文", "[UNK]"]


def test_reference_attributes(tok):
    assert tok.vocab["[PAD]"] == 0 and tok.inv_vocab[0] == "[PAD]"
    assert tok.vocab_size == 5 + len(WORDS)


def test_bytes_input_drops_invalid_utf8(tok):
    assert tok.tokenize(b"hello \xffworld") == ["hello", "world"]
    with pytest.raises(TypeError):
        tok.tokenize(42)


def test_unknown_conversions_say_what_is_wrong(tok):
    with pytest.raises(KeyError, match="'nope' is not in the vocab"):
        tok.convert_tokens_to_ids(["hello", "nope"])
    with pytest.raises(KeyError, match="outside the vocab"):
        tok.convert_ids_to_tokens([10_000])


def test_decode_glues_continuations_and_skips_framing(tok):
    ids = [tok.vocab["[CLS]"]] + tok.encode("Unaffable, don't!") + [tok.vocab["[SEP]"]]
    assert tok.decode(ids) == "unaffable , don ' t !"
    assert tok.decode(ids, skip_special_tokens=False) == "[CLS] unaffable , don ' t ! [SEP]"
    assert tokens_to_text(["##x", "a", "##b", "[MASK]"]) == "##x ab [MASK]"


def test_preserve_unused_tokens(make_vocab):
    path = make_vocab(WORDS)
    plain = FullTokenizer(path)
    keep = FullTokenizer(path, preserve_unused_tokens=True)
    assert plain.tokenize("[unused3] hello") == ["[", "unused", "##3", "]", "hello"]
    assert keep.tokenize("[unused3] hello") == ["[unused3]", "hello"]
    assert keep.tokenize("[unused9]") == ["[", "[UNK]", "]"]  # not in the vocab: tokenised


def test_cache_eviction_keeps_results_right(make_vocab):
    small = FullTokenizer(make_vocab(WORDS), cache_size=2)
    text = "hello world unaffable hello , world ! ab"
    expected = FullTokenizer(make_vocab(WORDS)).tokenize(text)
    for _ in range(3):
        assert small.tokenize(text) == expected
        assert small.encode(text) == small.convert_tokens_to_ids(expected)
    assert len(small._tokens_cache) <= 2


def test_from_vocab_accepts_list_or_mapping():
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hei", "##a"]
    a = FullTokenizer.from_vocab(tokens)
    b = FullTokenizer.from_vocab({t: i for i, t in enumerate(tokens)})
    assert a.tokenize("Heia hei") == b.tokenize("Heia hei") == ["hei", "##a", "hei"]
    # Any vocab Google's tokenizer takes: no [MASK] needed to tokenise.
    assert FullTokenizer.from_vocab(tokens[:4] + ["hei"]).tokenize("hei Heia") == [
        "hei", "[UNK]"]


def test_casing_warnings(make_vocab):
    cased = make_vocab(["The", "Oslo", "the", "and"])
    with pytest.warns(CasingWarning, match="looks cased"):
        FullTokenizer(cased, do_lower_case=True)
    with pytest.warns(CasingWarning, match="looks uncased"):
        FullTokenizer(make_vocab(["the", "and"], name="uncased.txt"), do_lower_case=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FullTokenizer(cased, do_lower_case=False)
        FullTokenizer(cased, do_lower_case=True, check_casing=False)


def test_bad_vocab_file_is_a_norbert_error(tmp_path):
    with pytest.raises(NorbertError, match="cannot read vocab file"):
        FullTokenizer(str(tmp_path / "missing.txt"))
