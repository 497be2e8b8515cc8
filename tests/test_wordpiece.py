import pytest

from norbert.wordpiece import max_piece_length, wordpiece

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


def test_words_over_the_limit_are_unknown():
    assert wordpiece("a" + "##b" * 0 + "b" * 199, VOCAB | {"##b"}) == ["a"] + ["##b"] * 199
    assert wordpiece("a" + "b" * 200, VOCAB) == ["[UNK]"]
    assert wordpiece("ab", VOCAB, unk_token="<unk>", max_chars=1) == ["<unk>"]


def test_max_piece_bound_changes_nothing():
    bound = max_piece_length(VOCAB)
    assert bound == 6
    for word in ["unaffable", "running", "abcbcb", "unx", "abababab"]:
        assert wordpiece(word, VOCAB, max_piece=bound) == wordpiece(word, VOCAB)
