import collections
import gzip
import math
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from norbert import FullTokenizer, NorbertError, VocabConfig, build_vocab, load_vocab
from norbert.tokenization import text as textlib
from norbert.vocab_building import builder as vb
from norbert.vocab_building import word_counts

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

TEXT = """The quick brown fox jumps over the lazy dog.
The dog sleeps; the fox runs, and the fox hides in the forest.

Foxes and dogs are not the same: a fox is wild, a dog is tame.
Bjørnen sover i skogen, og reven løper over isen. Ærlig talt!
Jumping foxes jumped over sleeping dogs while the quick brown foxes watched.
中文字 and Русский текст appear once or twice, текст twice.
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def counts_of(text, do_lower_case=True):
    return collections.Counter(textlib.basic_tokenize(text, do_lower_case))


# -- a naive learner to check the incremental one against ------------------------------------


def naive_learn(counts, alphabet, num_pieces, min_frequency, merge_score):
    """Recounts every pair from scratch before each merge: slow, obviously right."""
    cont = {c for c in alphabet if vb.can_continue(c)}
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
    merge_score=st.sampled_from(vb.MERGE_SCORES),
)
def test_incremental_learner_matches_a_naive_recount(words, num_pieces, min_frequency, merge_score):
    alphabet = sorted(set("".join(words)))
    expected = naive_learn(words, alphabet, num_pieces, min_frequency, merge_score)
    got = vb.learn_pieces(words, alphabet, num_pieces, min_frequency, merge_score)
    assert got == expected


def test_most_frequent_pair_first_and_ties_by_string():
    counts = {"ab": 3, "cd": 3, "ef": 1}
    assert vb.learn_pieces(counts, list("abcdef"), 5, min_frequency=1) == ["ab", "cd", "ef"]
    assert vb.learn_pieces(counts, list("abcdef"), 5, min_frequency=2) == ["ab", "cd"]


# -- layout -----------------------------------------------------------------------------------


def test_specials_first_then_unused_then_alphabet_then_pieces():
    learned = vb.learn_vocab(counts_of(TEXT), 200, min_frequency=1, num_unused=3)
    tokens = learned.tokens
    assert tokens[:8] == SPECIALS + ["[unused0]", "[unused1]", "[unused2]"]
    assert len(tokens) == 200 == len(set(tokens))
    alphabet = tokens[8:8 + learned.alphabet]
    assert all(len(t) == 1 for t in alphabet)
    assert tokens[-1] not in alphabet and len(tokens[-1].replace("##", "")) > 1
    assert learned.learned == 200 - 8 - learned.alphabet - sum(
        1 for t in tokens if t.startswith("##") and len(t) == 3
    )


def test_every_character_bare_and_with_hashes_except_cjk_and_punctuation():
    tokens = set(vb.learn_vocab(counts_of(TEXT, False), 150, num_unused=0).tokens)
    for char in set(TEXT) - set(" \n"):
        assert char in tokens, char
        never_inside = textlib.is_cjk(char) or textlib.is_punctuation(char)
        assert ("##" + char in tokens) != never_inside, char


def test_the_learned_vocab_tokenizes_its_training_text_without_unk(tmp_path):
    rare = "☃"  # one snowman in 900 characters: below a 99.8% character coverage
    text = TEXT * 3 + "a %s here\n" % rare
    counts = counts_of(text, False)
    learned = vb.learn_vocab(counts, 300, num_unused=0, character_coverage=0.998)
    assert learned.dropped_characters == 1 and rare not in learned.tokens
    tok = FullTokenizer.from_vocab(learned.tokens, do_lower_case=False)
    for line in text.split("\n"):
        words = textlib.basic_tokenize(line, False)
        tokens = tok.tokenize(line)
        assert tokens.count("[UNK]") == sum(1 for w in words if rare in w), line
    everything = vb.learn_vocab(counts, 300, num_unused=0, character_coverage=1.0)
    assert rare in everything.tokens


def test_learned_pieces_shorten_the_text():
    counts = counts_of(TEXT * 2)
    small = vb.learn_vocab(counts, 120, num_unused=0)
    large = vb.learn_vocab(counts, 200, num_unused=0)
    short = dict.fromkeys(small.tokens)
    assert vb.corpus_tokens(counts, dict.fromkeys(large.tokens))[0] < vb.corpus_tokens(
        counts, short)[0] < sum(n * len(w) for w, n in counts.items())


# -- settings ---------------------------------------------------------------------------------


def test_deterministic_whatever_the_order_of_the_counts():
    counts = counts_of(TEXT)
    items = list(counts.items())
    random.Random(1).shuffle(items)
    for score in vb.MERGE_SCORES:
        a = vb.learn_vocab(counts, 180, merge_score=score).tokens
        b = vb.learn_vocab(collections.OrderedDict(items), 180, merge_score=score).tokens
        assert a == b


def test_min_frequency_stops_learning_and_is_reported(tmp_path):
    counts = counts_of(TEXT)
    once = vb.learn_vocab(counts, 10000, min_frequency=1, num_unused=0)
    twice = vb.learn_vocab(counts, 10000, min_frequency=2, num_unused=0)
    assert len(twice.tokens) < len(once.tokens) < 10000
    # "tame" is seen once, "quick" twice
    assert "tame" in once.tokens and "tame" not in twice.tokens and "quick" in twice.tokens
    path = write(tmp_path, "a.txt", TEXT)
    stats = build_vocab(VocabConfig(path, str(tmp_path / "v.txt"), vocab_size=10000))
    assert stats.vocab_size < 10000 and "fewer than --vocab_size=10000" in stats.summary()


def test_vocab_size_too_small_for_the_alphabet_names_the_flag():
    with pytest.raises(NorbertError, match="--vocab_size=20 is too small.*--character_coverage"):
        vb.learn_vocab(counts_of(TEXT), 20)


@pytest.mark.parametrize(
    "field, value, flag",
    [("vocab_size", 0, "--vocab_size"), ("min_frequency", 0, "--min_frequency"),
     ("num_unused", -1, "--num_unused"), ("character_coverage", 0.0, "--character_coverage"),
     ("character_coverage", 1.5, "--character_coverage"), ("num_workers", 0, "--num_workers"),
     ("max_input_bytes", -1, "--max_input_bytes"), ("merge_score", "pmi", "--merge_score"),
     ("input_file", "", "--input_file"), ("output_file", "", "--output_file")],
)
def test_bad_settings_name_their_flag(tmp_path, field, value, flag):
    config = dict(input_file="x.txt", output_file=str(tmp_path / "v.txt"))
    config[field] = value
    with pytest.raises(NorbertError, match=flag):
        build_vocab(VocabConfig(**config))
    assert not os.path.exists(tmp_path / "v.txt")


# -- reading ----------------------------------------------------------------------------------


def test_counts_are_the_tokenizers_words(tmp_path):
    path = write(tmp_path, "a.txt", TEXT)
    for lower in (True, False):
        counts, stats = word_counts.count_words([path], lower)
        assert counts == counts_of(TEXT, lower)
        assert stats.lines == TEXT.count("\n") and stats.bytes_read == len(TEXT.encode())


def test_counts_do_not_depend_on_ranges_or_workers(tmp_path):
    text = TEXT + "\n\nno newline at the end"
    paths = [write(tmp_path, "a.txt", text), write(tmp_path, "b.txt.gz", TEXT),
             write(tmp_path, "c.txt", "x\r\ny\n\n")]
    expected = collections.Counter()
    for t in (text, TEXT, "x\r\ny\n\n"):
        expected.update(counts_of(t))
    for range_bytes in (1, 7, 64, 1 << 20):
        assert word_counts.count_words(paths, True, range_bytes=range_bytes)[0] == expected
    assert word_counts.count_words(paths, True, num_workers=2, range_bytes=50)[0] == expected


def test_max_bytes_reads_the_lines_that_start_before_it(tmp_path):
    lines = ["one two\n", "three\n", "four five\n", "six\n"]
    a = write(tmp_path, "a.txt", "".join(lines[:2]))
    b = write(tmp_path, "b.txt.gz", "".join(lines[2:]))
    for limit, upto in [(1, 1), (8, 1), (9, 2), (14, 2), (15, 3), (24, 3), (25, 4), (0, 4)]:
        for paths in ([a, b], [write(tmp_path, "ab.txt", "".join(lines))]):
            for workers in (1, 2) if limit in (9, 25) else (1,):
                counts, stats = word_counts.count_words(
                    paths, True, num_workers=workers, max_bytes=limit, range_bytes=3
                )
                assert counts == counts_of("".join(lines[:upto])), (limit, paths)
                assert stats.lines == upto


def test_gz_input_and_bad_bytes(tmp_path):
    text = TEXT + "bad \xff byte\n"
    plain = tmp_path / "a.txt"
    plain.write_bytes(text.encode("utf-8").replace("\xff".encode("utf-8"), b"\xff"))
    gz = tmp_path / "a.txt.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert word_counts.count_words([str(plain)], True)[0] == word_counts.count_words(
        [str(gz)], True)[0] == counts_of(TEXT + "bad  byte\n")


def test_unreadable_files_are_named(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(NorbertError, match="cannot read .*bad.gz"):
        word_counts.count_words([str(bad)], True)
    with pytest.raises(NorbertError, match="no files match"):
        build_vocab(VocabConfig(str(tmp_path / "none*.txt"), str(tmp_path / "v.txt")))


def test_empty_corpus_is_an_error_and_writes_nothing(tmp_path):
    path = write(tmp_path, "empty.txt", " \n\n\t\n")
    out = tmp_path / "v.txt"
    with pytest.raises(NorbertError, match="no words in --input_file"):
        build_vocab(VocabConfig(path, str(out)))
    assert not out.exists()


def test_build_vocab_writes_a_loadable_vocab_independent_of_workers(tmp_path):
    paths = ",".join([write(tmp_path, "a.txt", TEXT * 4), write(tmp_path, "b.txt.gz", TEXT)])
    results = []
    for workers in (1, 2):
        out = tmp_path / ("v%d.txt" % workers)
        stats = build_vocab(VocabConfig(paths, str(out), vocab_size=200, num_unused=2,
                                        do_lower_case=False, num_workers=workers))
        assert stats.vocab_size == 200 and stats.words == 5 * len(textlib.basic_tokenize(TEXT))
        assert stats.unk_words == 0 and 1 < stats.tokens_per_word < 2
        vocab = load_vocab(str(out))
        assert list(vocab)[:7] == SPECIALS + ["[unused0]", "[unused1]"]
        results.append(out.read_bytes())
    assert results[0] == results[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt.gz", "v1.txt", "v2.txt"]


# -- extending an existing vocab ------------------------------------------------------------


def test_extend_vocab_fills_unused_slots_and_keeps_every_other_id(tmp_path, make_vocab):
    old_tokens = ["[unused0]", "[unused1]", "[unused2]", "the", "and"] + list(
        "abcdefghijklmnopqrstuvwxyzæøå.,;:!") + ["##" + c for c in "abcdefghijklmnopqrstuvwxyzæøå"]
    old_path = make_vocab(old_tokens, name="old.txt")
    corpus = write(tmp_path, "c.txt", TEXT * 3)
    out = tmp_path / "new.txt"
    stats = build_vocab(VocabConfig(corpus, str(out), extend_vocab=old_path, min_frequency=2))
    old, new = load_vocab(old_path), load_vocab(str(out))
    assert len(new) == len(old)
    for token, i in old.items():
        if not token.startswith("[unused"):
            assert new[token] == i, token
    added = [t for t, i in new.items() if t not in old]
    assert added == list(stats.added) and len(added) == 3
    assert [new[t] for t in added] == [old["[unused0]"], old["[unused1]"], old["[unused2]"]]
    # Pieces saved, count * (pieces - 1): foxes 6*6=36, over 9*3=27, then brown, fox, quick and
    # twice at 24 each (ties by the word); "the" is whole already.
    assert added == ["foxes", "over", "brown"]
    assert stats.tokens_after < stats.tokens_before
    assert stats.shortened_percent == pytest.approx(
        100.0 * (stats.tokens_before - stats.tokens_after) / stats.tokens_before)
    counts = counts_of(TEXT * 3)
    assert stats.tokens_before == vb.corpus_tokens(counts, old)[0]
    assert stats.tokens_after == vb.corpus_tokens(counts, new)[0]
    assert "shorter" in stats.summary()


def test_choose_additions_ranks_by_pieces_saved():
    vocab = dict.fromkeys(SPECIALS + list("abc") + ["##a", "##b", "##c"])
    counts = {"abc": 2, "ab": 3, "cab": 1, "x": 50, "aa": 1}
    # abc saves 2*2=4, ab 3*1=3, cab 1*2=2, aa 1*1=1; x is [UNK] and is left out
    assert vb.choose_additions(counts, vocab, 3, 1) == ["abc", "ab", "cab"]
    assert vb.choose_additions(counts, vocab, 9, 2) == ["abc", "ab"]


def test_extend_vocab_needs_unused_slots_and_matching_casing(tmp_path, make_vocab):
    corpus = write(tmp_path, "c.txt", TEXT)
    out = tmp_path / "new.txt"
    with pytest.raises(NorbertError, match="no \\[unusedN\\] lines"):
        build_vocab(VocabConfig(corpus, str(out), extend_vocab=make_vocab(list("abc"))))
    cased = make_vocab(["[unused0]", "The", "Fox", "Dog", "the"], name="cased.txt")
    with pytest.raises(NorbertError, match="--extend_vocab=.*do_lower_case"):
        build_vocab(VocabConfig(corpus, str(out), extend_vocab=cased, do_lower_case=True))
    assert not out.exists()


# -- against Hugging Face's trainer on real text -------------------------------------------


def test_tokens_per_word_close_to_hugging_face_on_held_out_text(corpus_paths, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    train, held = [], []
    for path in corpus_paths:
        with open(path, encoding="utf-8") as f:
            for i, doc in enumerate(f.read().split("\n\n")):
                (held if i % 10 == 9 else train).append(doc)
    train_path = write(tmp_path, "train.txt", "\n\n".join(train))
    held_counts = counts_of("\n".join(held), False)
    n_words = sum(held_counts.values())

    out = tmp_path / "ours.txt"
    build_vocab(VocabConfig(train_path, str(out), vocab_size=8000, num_unused=0,
                            do_lower_case=False))
    ours, our_unk = vb.corpus_tokens(held_counts, load_vocab(str(out)))

    hf = tokenizers.BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    hf.train([train_path], vocab_size=8000, special_tokens=SPECIALS, show_progress=False)
    theirs, their_unk = vb.corpus_tokens(held_counts, hf.get_vocab())
    assert ours / n_words < 1.10 * theirs / n_words
    assert our_unk <= their_unk
