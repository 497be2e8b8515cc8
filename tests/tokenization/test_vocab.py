import warnings

import pytest

from norbert import NorbertError, load_vocab
from norbert.tokenization.vocab import (
    SPECIAL_TOKENS, CasingWarning, accent_mismatch, casing_mismatch, parse_vocab,
    warn_on_casing_mismatch,
)

SPECIALS = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"


def test_ids_are_line_numbers_and_lines_are_stripped():
    vocab = parse_vocab((SPECIALS + "hello\r\n  world \n##s").encode())
    assert list(vocab.items())[5:] == [("hello", 5), ("world", 6), ("##s", 7)]
    assert vocab["[PAD]"] == 0 and vocab["[MASK]"] == 4


def test_only_newline_separates_tokens():
    # U+2028 would split the line for str.splitlines; Google's reader keeps it in the token.
    vocab = parse_vocab((SPECIALS + "a\u2028b\n").encode())
    assert "a\u2028b" in vocab


def test_byte_order_mark_is_ignored():
    vocab = parse_vocab(b"\xef\xbb\xbf" + SPECIALS.encode())
    assert vocab["[PAD]"] == 0


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "is empty"),
        (b"\n \n", "is empty"),
        (b"\x00\x01\x02binary", "is binary"),
        (SPECIALS.encode() + b"caf\xe9\n", "not UTF-8 (line 6, byte offset 34)"),
        ((SPECIALS + "dup\nx\ndup\n").encode(), "'dup' on line 8 repeats line 6"),
        (b"[PAD]\n[UNK]\n[CLS]\nhello\n", "lacks [SEP] [MASK]"),
    ],
)
def test_bad_vocab_is_a_clear_error_naming_the_file(data, message):
    with pytest.raises(NorbertError) as e:  # the specials: when a tool requires them
        parse_vocab(data, source="my/vocab.txt", required=SPECIAL_TOKENS)
    assert message in str(e.value)
    assert "my/vocab.txt" in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(NorbertError, match="no such file"):
        load_vocab(str(tmp_path / "nope.txt"))
    with pytest.raises(NorbertError, match="directory"):
        load_vocab(str(tmp_path))


def test_load_vocab_through_tf_gfile():
    tf = pytest.importorskip("tensorflow")
    path = "ram://norbert-test/vocab.txt"  # a URL-style path only tf.io.gfile can open
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(SPECIALS + "hei\n")
    assert load_vocab(path)["hei"] == 5
    with pytest.raises(NorbertError, match="cannot read vocab file ram://norbert-test/missing"):
        load_vocab("ram://norbert-test/missing.txt")


CASED = ["[PAD]", "[unused0]", "The", "the", "Oslo", "##s", "and", "in", "##ing", "Norge"]
UNCASED = ["[PAD]", "[unused0]", "the", "oslo", "##s", "and", "in", "##ing", "norge", "ℝ"]


def test_casing_mismatch_both_ways():
    assert "looks cased" in casing_mismatch(CASED, do_lower_case=True)
    assert casing_mismatch(CASED, do_lower_case=False) is None
    assert "looks uncased" in casing_mismatch(UNCASED, do_lower_case=False)
    assert casing_mismatch(UNCASED, do_lower_case=True) is None
    # No cased letters at all (CJK only): no judgement either way.
    assert casing_mismatch(["[PAD]", "中", "文"], do_lower_case=False) is None


def test_casing_warning_names_the_source():
    with pytest.warns(CasingWarning, match="vocab.txt: the vocab looks cased"):
        warn_on_casing_mismatch(CASED, True, "vocab.txt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_on_casing_mismatch(CASED, False, "vocab.txt")


def test_real_vocabs_are_judged_right(uncased_vocab_path, cased_vocab_path):
    uncased = load_vocab(uncased_vocab_path)
    cased = load_vocab(cased_vocab_path)
    assert casing_mismatch(uncased, True) is None and casing_mismatch(cased, False) is None
    assert casing_mismatch(uncased, False) and casing_mismatch(cased, True)


def test_accents_the_tokenizer_strips_are_caught():
    kept = ["[PAD]", "på", "blåbær", "##ø", "være", "og", "i", "##er", "å", "skog"]
    assert "strips them (do_lower_case)" in accent_mismatch(kept, do_lower_case=True)
    assert "--strip_accents=false" in accent_mismatch(kept, True)
    assert accent_mismatch(kept, True, strip_accents=False) is None
    assert accent_mismatch(kept, False) is None  # a cased tokenizer keeps accents
    assert "strips them," in accent_mismatch(kept, False, strip_accents=True)
    stripped = ["[PAD]", "pa", "blabær", "vare", "og", "skog"]  # "æ" is a letter, not an accent
    assert accent_mismatch(stripped, True) is None
    with pytest.warns(CasingWarning, match="vocab.txt: the vocab keeps accents"):
        warn_on_casing_mismatch(kept, True, "vocab.txt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_on_casing_mismatch(kept, True, "vocab.txt", strip_accents=False)


def test_googles_uncased_vocab_has_no_accents(uncased_vocab_path, cased_vocab_path):
    assert accent_mismatch(load_vocab(uncased_vocab_path), True) is None
    assert accent_mismatch(load_vocab(cased_vocab_path), False, strip_accents=True)
