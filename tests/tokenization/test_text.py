import unicodedata

import pytest

from norbert.tokenization import text


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        ("plain ascii", "plain ascii"),
        ("a\x00b\ufffdc", "abc"),  # NUL and the replacement character go
        ("a\x0bb\x7fc", "abc"),  # ASCII controls other than \t \n \r are removed, not spaces
        ("tab\there\nnew\rline", "tab\there\nnew\rline"),  # whitespace stays for the split
        ("zero\u200bwidth\ufeff", "zerowidth"),  # format characters (Cf) go
        ("caf\u00e9\u0085x", "caf\u00e9x"),  # a non-ASCII control (NEL) goes
    ],
)
def test_clean_text(raw, cleaned):
    assert text.clean_text(raw) == cleaned


def test_clean_text_then_split_treats_unicode_spaces_as_whitespace():
    assert text.chunks("a\u00a0b\u3000c\u2028d  e") == ["a", "b", "c", "d", "e"]


def test_split_cjk_isolates_each_ideograph_only():
    assert text.split_cjk("ab中文cd") == ["ab", "中", "文", "cd"]
    # Hangul and kana are written with spaces between words: not split.
    assert text.split_cjk("한국어") == ["한국어"]
    assert text.split_cjk("ひらがな") == ["ひらがな"]
    assert text.split_cjk("\U00020000x") == ["\U00020000", "x"]  # extension B


def test_strip_accents():
    assert text.strip_accents("grüße crème") == "gruße creme"
    assert text.strip_accents("ascii") == "ascii"


@pytest.mark.parametrize(
    "word, parts",
    [
        ("hello,world!", ["hello", ",", "world", "!"]),
        ("$5.00", ["$", "5", ".", "00"]),
        ("«sitat»", ["«", "sitat", "»"]),  # Unicode P* categories
        ("a—b", ["a", "—", "b"]),
        ("no-punct", ["no", "-", "punct"]),
        ("^`~", ["^", "`", "~"]),  # ASCII symbols count although Unicode calls them Sk/Sm
        ("x€y", ["x€y"]),  # a non-ASCII currency symbol (Sc) is not punctuation
    ],
)
def test_split_punctuation(word, parts):
    assert text.split_punctuation(word) == parts


def test_normalize_chunk_order_cjk_then_case_then_punctuation():
    assert text.normalize_chunk("Ærlig,Æsj!", do_lower_case=True) == ["ærlig", ",", "æsj", "!"]
    assert text.normalize_chunk("Ærlig,Æsj!", do_lower_case=False) == ["Ærlig", ",", "Æsj", "!"]
    # A compatibility ideograph is isolated first, then NFD maps it to its unified form.
    assert text.normalize_chunk("x\uf900y", do_lower_case=True) == ["x", "\u8c48", "y"]
    assert text.normalize_chunk("x\uf900y", do_lower_case=False) == ["x", "\uf900", "y"]


def test_lowercasing_can_change_length_before_splitting():
    # "İ".lower() is "i" + COMBINING DOT ABOVE; the mark is then stripped.
    assert text.basic_tokenize("İstanbul", do_lower_case=True) == ["istanbul"]


def test_basic_tokenize():
    assert text.basic_tokenize(" Hello,  WORLD!\tÅ ", do_lower_case=True) == [
        "hello", ",", "world", "!", "a",
    ]
    assert text.basic_tokenize("", True) == []
    assert text.basic_tokenize("\x00 \u200b", True) == []


def test_predicates_match_unicode_categories():
    for char in "!,.«»—_":
        assert text.is_punctuation(char)
    assert not text.is_punctuation("€")
    assert text.is_control("\x01") and text.is_control("\u200b") and not text.is_control("\n")
    assert text.is_whitespace("\u3000") and text.is_whitespace("\t") and not text.is_whitespace("x")
    assert text.is_cjk("中") and not text.is_cjk("한")
    assert unicodedata.category("\u2028") == "Zl" and not text.is_whitespace("\u2028")
