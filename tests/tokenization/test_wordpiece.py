import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from norbert.tokenization.wordpiece import piece_bounds, wordpiece

VOCAB = {"[UNK]", "un", "##aff", "##able", "a", "##b", "##c", "abc", "run", "##ning", "##s"}


@pytest.mark.parametrize(
    "word, pieces",
    [
        ("unaffable", ["un", "##aff", "##able"]),
        ("running", ["run", "##ning"]),
        ("runs", ["run", "##s"]),
        ("abc", ["abc"]),  # the whole word wins over a, ##b, ##c
        ("abcb", ["abc", "##b"]),
        ("ab", ["a", "##b"]),
        ("unx", ["[UNK]"]),  # one uncovered position makes the whole word unknown
        ("", []),
    ],
)
def test_greedy_longest_match_first(word, pieces):
    assert wordpiece(word, VOCAB) == pieces
    assert wordpiece(word, VOCAB, bounds=piece_bounds(VOCAB)) == pieces


def test_words_over_the_limit_are_unknown():
    assert wordpiece("a" + "b" * 199, VOCAB) == ["a"] + ["##b"] * 199
    assert wordpiece("a" + "b" * 200, VOCAB) == ["[UNK]"]
    assert wordpiece("ab", VOCAB, unk_token="<unk>", max_chars=1) == ["<unk>"]


def test_piece_bounds():
    first, cont = piece_bounds(["ab", "abc", "##xyz", "##x", "##", "b"])
    assert first == {"a": 3, "#": 5, "b": 1}  # "##xyz" can match literally as a first piece
    assert cont == {"x": 3}


_alphabet = st.sampled_from("ab#c")


@settings(max_examples=300, deadline=None)
@given(
    st.sets(st.text(_alphabet, min_size=1, max_size=5)),
    st.text(_alphabet, max_size=12),
)
def test_property_bounds_change_nothing(vocab, word):
    assert wordpiece(word, vocab, bounds=piece_bounds(vocab)) == wordpiece(word, vocab)
