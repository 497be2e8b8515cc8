"""The build_vocab tool: settings, reading errors, the written vocab, extend mode, progress,
and the vocab's quality against Hugging Face's trainer."""

import logging
import os

import pytest

from norbert import CorpusConfig, NorbertError, VocabConfig, build_vocab, load_vocab
from norbert.tokenization import text as textlib
from norbert.tokenization.options import TokenizerOptions
from norbert.vocab_building import learner, word_counts
from norbert.vocab_building.builder import VocabShortfallWarning
from helpers import SPECIALS
from small_text import TEXT, counts_of, write

# -- settings ---------------------------------------------------------------------------------


def test_min_frequency_stops_learning_and_is_reported(tmp_path):
    counts = counts_of(TEXT)
    once = learner.learn_vocab(counts, 10000, min_frequency=1, num_unused=0)
    twice = learner.learn_vocab(counts, 10000, min_frequency=2, num_unused=0)
    assert len(twice.tokens) < len(once.tokens) < 10000
    # "tame" is seen once, "quick" twice
    assert "tame" in once.tokens and "tame" not in twice.tokens and "quick" in twice.tokens
    path = write(tmp_path, "a.txt", TEXT)
    with pytest.warns(VocabShortfallWarning,  # a keyword call: the keyword is named
                      match=r"v.txt: \d+ tokens, fewer than vocab_size=10000"):
        stats = build_vocab(input_file=path, output_file=str(tmp_path / "v.txt"),
                            vocab_size=10000)
    assert stats.vocab_size < 10000 and "fewer than" in stats.shortfall()


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
    # Given as keywords, the error names the keyword; in a config (as the command builds it
    # from its flags), the flag.
    with pytest.raises(NorbertError, match="^%s=" % field) as caught:
        build_vocab(**config)
    assert flag not in str(caught.value)
    owner = VocabConfig if field in VocabConfig.__dataclass_fields__ else CorpusConfig
    with pytest.raises(NorbertError, match="^" + flag):
        owner(**{k: v for k, v in config.items() if k in owner.__dataclass_fields__})
    assert not os.path.exists(tmp_path / "v.txt")


# -- reading ----------------------------------------------------------------------------------


def test_unreadable_files_are_named(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(NorbertError, match="bad.gz is not a valid .gz file"):
        word_counts.count_words([str(bad)], True)
    with pytest.raises(NorbertError, match="no files match"):
        build_vocab(input_file=str(tmp_path / "none*.txt"),
                    output_file=str(tmp_path / "v.txt"))


def test_empty_corpus_is_an_error_and_writes_nothing(tmp_path):
    path = write(tmp_path, "empty.txt", " \n\n\t\n")
    out = tmp_path / "v.txt"
    with pytest.raises(NorbertError, match="no words in input_file"):
        build_vocab(input_file=path, output_file=str(out))
    assert not out.exists()


def test_build_vocab_writes_a_loadable_vocab_independent_of_workers(tmp_path):
    paths = ",".join([write(tmp_path, "a.txt", TEXT * 4), write(tmp_path, "b.txt.gz", TEXT)])
    results = []
    for workers in (1, 2):
        out = tmp_path / ("v%d.txt" % workers)
        stats = build_vocab(input_file=paths, output_file=str(out), vocab_size=200,
                            num_unused=2, do_lower_case=False, num_workers=workers)
        assert stats.vocab_size == 200 and stats.words == 5 * len(textlib.basic_tokenize(TEXT))
        assert stats.unk_words == 0 and 1 < stats.tokens_per_word < 2
        vocab = load_vocab(str(out))
        assert list(vocab)[:7] == SPECIALS + ["[unused0]", "[unused1]"]
        results.append(out.read_bytes())
    assert results[0] == results[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt.gz", "v1.txt", "v2.txt"]


# -- extending an existing vocab ------------------------------------------------------------

# Three [unusedN] slots, two words, every letter of the text bare and as ##c.
OLD_TOKENS = ["[unused0]", "[unused1]", "[unused2]", "the", "and"] + list(
    "abcdefghijklmnopqrstuvwxyzæøå.,;:!") + ["##" + c for c in "abcdefghijklmnopqrstuvwxyzæøå"]


def test_fill_unused_of_fills_unused_slots_and_keeps_every_other_id(tmp_path, make_vocab):
    old_path = make_vocab(OLD_TOKENS, name="old.txt")
    corpus = write(tmp_path, "c.txt", TEXT * 3)
    out = tmp_path / "new.txt"
    stats = build_vocab(input_file=corpus, output_file=str(out), fill_unused_of=old_path,
                        min_frequency=2)
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
    assert stats.tokens_before == learner.corpus_tokens(counts, old)[0]
    assert stats.tokens_after == learner.corpus_tokens(counts, new)[0]
    assert "shorter" in stats.summary()


def test_fill_unused_of_puts_missing_never_split_words_in_the_first_slots(tmp_path, make_vocab):
    old_path = make_vocab(OLD_TOKENS, name="old.txt")
    corpus = write(tmp_path, "c.txt", TEXT * 3)
    out = tmp_path / "new.txt"
    stats = build_vocab(input_file=corpus, output_file=str(out), fill_unused_of=old_path,
                        tokenizer_options=TokenizerOptions(never_split=("<url>", "the")))
    new = load_vocab(str(out))
    assert stats.added == ("<url>", "foxes", "over")  # "the" is there already
    assert new["<url>"] == load_vocab(old_path)["[unused0]"]


def test_fill_unused_of_needs_unused_slots_and_matching_casing(tmp_path, make_vocab):
    corpus = write(tmp_path, "c.txt", TEXT)
    out = tmp_path / "new.txt"
    with pytest.raises(NorbertError, match="no \\[unusedN\\] lines.*extend_vocab.py"):
        build_vocab(input_file=corpus, output_file=str(out),
                    fill_unused_of=make_vocab(list("abc")))
    cased = make_vocab(["[unused0]", "The", "Fox", "Dog", "the"], name="cased.txt")
    # Called with keywords, the error names the keyword; with a config, the flag.
    with pytest.raises(NorbertError, match="^fill_unused_of=.*do_lower_case"):
        build_vocab(input_file=corpus, output_file=str(out), fill_unused_of=cased,
                    do_lower_case=True)
    with pytest.raises(NorbertError, match="^--fill_unused_of=.*do_lower_case"):
        build_vocab(VocabConfig(output_file=str(out), fill_unused_of=cased),
                    TokenizerOptions(do_lower_case=True), corpus_config=CorpusConfig(corpus))
    assert not out.exists()


def test_extend_vocab_is_the_deprecated_name_of_fill_unused_of(tmp_path, make_vocab):
    old_path = make_vocab(OLD_TOKENS, name="old.txt")
    corpus = write(tmp_path, "c.txt", TEXT * 3)
    # A keyword call: the warning names the keywords.
    with pytest.warns(FutureWarning,
                      match="^extend_vocab= is deprecated, use fill_unused_of=, which fills"):
        by_old_name = build_vocab(input_file=corpus, output_file=str(tmp_path / "a.txt"),
                                  extend_vocab=old_path)
    by_new_name = build_vocab(input_file=corpus, output_file=str(tmp_path / "b.txt"),
                              fill_unused_of=old_path)
    assert by_old_name.added == by_new_name.added and len(by_new_name.added) == 3
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes()
    with pytest.warns(FutureWarning,
                      match="^--extend_vocab is deprecated, use --fill_unused_of, which fills"):
        config = VocabConfig(output_file="v.txt", extend_vocab=old_path)
    assert config == VocabConfig(output_file="v.txt", fill_unused_of=old_path)
    with pytest.raises(NorbertError, match="old name of --fill_unused_of"):
        VocabConfig(output_file="v.txt", extend_vocab=old_path, fill_unused_of="other.txt")


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
    build_vocab(input_file=train_path, output_file=str(out), vocab_size=8000, num_unused=0,
                do_lower_case=False)
    ours, our_unk = learner.corpus_tokens(held_counts, load_vocab(str(out)))

    hf = tokenizers.BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    hf.train([train_path], vocab_size=8000, special_tokens=SPECIALS, show_progress=False)
    theirs, their_unk = learner.corpus_tokens(held_counts, hf.get_vocab())
    assert ours / n_words < 1.10 * theirs / n_words
    assert our_unk <= their_unk


# -- progress -----------------------------------------------------------------------------------


def test_progress_goes_to_the_absl_log_when_stderr_is_not_a_terminal(tmp_path, caplog):
    path = write(tmp_path, "a.txt", TEXT)
    caplog.set_level(logging.INFO, logger="absl")
    build_vocab(input_file=path, output_file=str(tmp_path / "v.txt"), vocab_size=200)
    lines = [r.getMessage() for r in caplog.records if r.name == "absl"]
    size = len(TEXT.encode("utf-8"))
    assert any(line.startswith("reading: %d B of %d B (100.0%%)" % (size, size))
               and line.endswith("(done)") for line in lines), lines
    assert any(line.startswith("learning: ") and line.endswith("(done)") for line in lines), lines
    caplog.clear()
    build_vocab(input_file=path, output_file=str(tmp_path / "v.txt"), vocab_size=200,
                progress=False)
    assert not [r for r in caplog.records if r.name == "absl"]
