"""The WordPiece learner: the incremental merge loop against a naive recount, the vocab's
layout, determinism, and choosing words for an existing vocab's [unusedN] slots."""

import collections
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from norbert import FullTokenizer, NorbertError
from norbert.tokenization import text as textlib
from norbert.vocab_building import learner
from helpers import SPECIALS
from small_text import TEXT, counts_of

# -- a naive learner to check the incremental one against ------------------------------------


def naive_learn(counts, alphabet, num_pieces, min_frequency, merge_score):
    """Recounts every pair from scratch before each merge: slow, obviously right."""
    cont = {c for c in alphabet if learner.can_continue(c)}
    words = []
    for word, n in counts.items():
        if set(word) <= set(alphabet) and set(word[1:]) <= cont and len(word) <= 200:
            words.append(([word[0]] + ["##" + c for c in word[1:]], n))
    vocab = set(alphabet) | {"##" + c for c in cont}
    total = sum(n * len(seg) for seg, n in words)
    learned = []

    def xlogx(x):
        return x * math.log(x) if x > 0 else 0.0

    while len(learned) < num_pieces:
        pairs = collections.Counter()
        unigram = collections.Counter()
        for seg, n in words:
            for t in seg:
                unigram[t] += n
            for pair in zip(seg, seg[1:]):
                pairs[pair] += n
        candidates = []
        for (a, b), c in pairs.items():
            if c < min_frequency:
                continue
            if merge_score == "frequency":
                s = c
            elif a == b:
                s = xlogx(c) + xlogx(max(0, unigram[a] - 2 * c)) - xlogx(unigram[a])
                s = s + xlogx(total) - xlogx(total - c)
            else:
                s = (xlogx(c) + xlogx(unigram[a] - c) + xlogx(unigram[b] - c)
                     - xlogx(unigram[a]) - xlogx(unigram[b]))
                s = s + xlogx(total) - xlogx(total - c)
            candidates.append((-s, a, b))
        if not candidates:
            break
        _, a, b = min(candidates)
        merged = a + b[2:]
        if merged not in vocab:
            vocab.add(merged)
            learned.append(merged)
        new_words = []
        for seg, n in words:
            out, i = [], 0
            while i < len(seg):
                if i + 1 < len(seg) and seg[i] == a and seg[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(seg[i])
                    i += 1
            new_words.append((out, n))
        words = new_words
    return learned


@settings(max_examples=60, deadline=None)
@given(
    words=st.dictionaries(
        st.text(alphabet="abcab", min_size=1, max_size=7), st.integers(1, 6), min_size=1,
        max_size=12,
    ),
    num_pieces=st.integers(1, 12),
    min_frequency=st.integers(1, 3),
    merge_score=st.sampled_from(learner.MERGE_SCORES),
)
def test_incremental_learner_matches_a_naive_recount(words, num_pieces, min_frequency, merge_score):
    alphabet = sorted(set("".join(words)))
    expected = naive_learn(words, alphabet, num_pieces, min_frequency, merge_score)
    got = learner.learn_pieces(words, alphabet, num_pieces, min_frequency, merge_score)
    assert got == expected


def test_most_frequent_pair_first_and_ties_by_string():
    counts = {"ab": 3, "cd": 3, "ef": 1}
    assert learner.learn_pieces(counts, list("abcdef"), 5, min_frequency=1) == ["ab", "cd", "ef"]
    assert learner.learn_pieces(counts, list("abcdef"), 5, min_frequency=2) == ["ab", "cd"]


# -- layout -----------------------------------------------------------------------------------


def test_specials_first_then_unused_then_alphabet_then_pieces():
    learned = learner.learn_vocab(counts_of(TEXT), 200, min_frequency=1, num_unused=3)
    tokens = learned.tokens
    assert tokens[:8] == SPECIALS + ["[unused0]", "[unused1]", "[unused2]"]
    assert len(tokens) == 200 == len(set(tokens))
    alphabet = tokens[8:8 + learned.alphabet]
    assert all(len(t) == 1 for t in alphabet)
    assert tokens[-1] not in alphabet and len(tokens[-1].replace("##", "")) > 1
    assert learned.learned == 200 - 8 - learned.alphabet - sum(
        1 for t in tokens if t.startswith("##") and len(t) == 3
    )


def test_never_split_words_follow_the_unused_slots_and_are_not_learned_twice():
    counts = counts_of(TEXT)
    learned = learner.learn_vocab(counts, 200, min_frequency=1, num_unused=2,
                                  whole_words=("<url>", "the", "[MASK]", "a"))
    tokens = learned.tokens
    assert tokens[:10] == SPECIALS + ["[unused0]", "[unused1]", "<url>", "the", "a"]
    assert len(tokens) == 200 == len(set(tokens))  # "the" would be learned, "a" is a letter
    plain = learner.learn_vocab(counts, 200, min_frequency=1, num_unused=2).tokens
    assert "the" in plain[7 + learned.alphabet:]


def test_ideographs_continue_words_when_the_tokenizer_leaves_them_there():
    counts = collections.Counter(textlib.basic_tokenize(TEXT, True, tokenize_chinese_chars=False))
    counts["中文字"] += 50  # frequent: merged first
    tokens = learner.learn_vocab(counts, 200, min_frequency=1, split_cjk=False).tokens
    assert {"中", "##文", "##字", "中文字"} <= set(tokens) and "##." not in tokens
    assert "##文" not in learner.learn_vocab(counts_of(TEXT), 200, min_frequency=1).tokens


def test_every_character_bare_and_with_hashes_except_cjk_and_punctuation():
    tokens = set(learner.learn_vocab(counts_of(TEXT, False), 150, num_unused=0).tokens)
    for char in set(TEXT) - set(" \n"):
        assert char in tokens, char
        never_inside = textlib.is_cjk(char) or textlib.is_punctuation(char)
        assert ("##" + char in tokens) != never_inside, char


def test_the_learned_vocab_tokenizes_its_training_text_without_unk(tmp_path):
    rare = "☃"  # one snowman in 900 characters: below a 99.8% character coverage
    text = TEXT * 3 + "a %s here\n" % rare
    counts = counts_of(text, False)
    learned = learner.learn_vocab(counts, 300, num_unused=0, character_coverage=0.998)
    assert learned.dropped_characters == 1 and rare not in learned.tokens
    tok = FullTokenizer.from_vocab(learned.tokens, do_lower_case=False)
    for line in text.split("\n"):
        words = textlib.basic_tokenize(line, False)
        tokens = tok.tokenize(line)
        assert tokens.count("[UNK]") == sum(1 for w in words if rare in w), line
    everything = learner.learn_vocab(counts, 300, num_unused=0, character_coverage=1.0)
    assert rare in everything.tokens


def test_learned_pieces_shorten_the_text():
    counts = counts_of(TEXT * 2)
    small = learner.learn_vocab(counts, 120, num_unused=0)
    large = learner.learn_vocab(counts, 200, num_unused=0)
    short = dict.fromkeys(small.tokens)
    assert learner.corpus_tokens(counts, dict.fromkeys(large.tokens))[0] < learner.corpus_tokens(
        counts, short)[0] < sum(n * len(w) for w, n in counts.items())


# -- settings ---------------------------------------------------------------------------------


def test_deterministic_whatever_the_order_of_the_counts():
    counts = counts_of(TEXT)
    items = list(counts.items())
    random.Random(1).shuffle(items)
    for score in learner.MERGE_SCORES:
        a = learner.learn_vocab(counts, 180, merge_score=score).tokens
        b = learner.learn_vocab(collections.OrderedDict(items), 180, merge_score=score).tokens
        assert a == b


def test_vocab_size_too_small_for_the_alphabet_names_the_flag():
    with pytest.raises(NorbertError, match="--vocab_size=20 is too small.*--character_coverage"):
        learner.learn_vocab(counts_of(TEXT), 20)


def test_an_unknown_merge_score_names_the_flag():
    with pytest.raises(NorbertError, match="--merge_score=pmi"):
        learner.learn_pieces({"ab": 3}, list("ab"), 5, merge_score="pmi")


def test_the_merge_score_is_checked_once_with_one_message():
    from norbert.vocab_building.builder import VocabConfig

    messages = []
    for make in (lambda: learner.learn_pieces({"ab": 3}, list("ab"), 5, merge_score="pmi"),
                 lambda: VocabConfig(output_file="v.txt", merge_score="pmi")):
        with pytest.raises(NorbertError) as raised:
            make()
        messages.append(str(raised.value))
    assert messages[0] == messages[1] == "--merge_score=pmi must be one of: frequency, likelihood"


def test_words_the_tokenizer_never_sees_whole_teach_nothing():
    # "x.y" (punctuation inside: the tokenizer splits it), a word over the tokenizer's length
    # limit and a word with a character outside the alphabet are each far more frequent than
    # "xy", yet only "xy" is learned from.
    too_long = "xz" * 101
    counts = {"x.y": 50, too_long: 50, "xq": 50, "xy": 2}
    assert learner.learn_pieces(counts, list(".xyz"), 5, min_frequency=1) == ["xy"]


def test_on_merge_is_called_once_per_new_token():
    calls = []
    counts = {"ab": 3, "cd": 3, "abcd": 1}
    pieces = learner.learn_pieces(counts, list("abcd"), 9, min_frequency=1, on_merge=calls.append)
    # abcd is [ab, ##c, ##d] after the first merge; ties by the strings, and "#" < "a".
    assert pieces == ["ab", "cd", "##cd", "abcd"] and calls == [9, 9, 9, 9]


# -- an existing vocab ------------------------------------------------------------------------


def test_choose_additions_ranks_by_pieces_saved():
    vocab = dict.fromkeys(SPECIALS + list("abc") + ["##a", "##b", "##c"])
    counts = {"abc": 2, "ab": 3, "cab": 1, "x": 50, "aa": 1}
    # abc saves 2*2=4, ab 3*1=3, cab 1*2=2, aa 1*1=1; x is [UNK] and is left out
    assert learner.choose_additions(counts, vocab, 3, 1) == ["abc", "ab", "cab"]
    assert learner.choose_additions(counts, vocab, 9, 2) == ["abc", "ab"]
