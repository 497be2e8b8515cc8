"""The vocab report (``norbert.vocab_building.report``): its figures against a direct count with
``FullTokenizer`` on the same text, its growth estimates against what ``extend_vocab`` then
gives, and its settings."""

import collections
import os

import pytest

from helpers import TEXT_DIR, corpus_file, tiny_bert_config
from norbert import FullTokenizer, NorbertError, load_vocab
from norbert.tokenization import BasicTokenizer
from norbert.vocab_building import report as reportlib
from norbert.vocab_building.builder import build_vocab
from norbert.vocab_building.report import VocabReportConfig, vocab_report

SHIPPED = sorted(os.path.join(TEXT_DIR, n) for n in os.listdir(TEXT_DIR) if n.endswith(".txt"))
# Words no vocab here has the characters of (Egyptian hieroglyphs, Linear B): [UNK] words.
STRANGE = "the \U00013000\U00013001 stone and \U00010000 tablet, the stone again.\n"


def _direct(paths, vocab_path, top=10, **options):
    """(words, tokens, split words, [UNK] words, the words split the most) of ``paths``,
    counted word by word with the tokenizer: the figures a report must give."""
    basic = BasicTokenizer(**options)
    full = FullTokenizer(vocab_path, check_casing=False, **options)
    counts = collections.Counter()
    tokens = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        counts.update(basic.tokenize(text))
        tokens += len(full.tokenize(text))
    pieces = {w: full.tokenize(w) for w in counts}
    words = sum(counts.values())
    assert tokens == sum(n * len(pieces[w]) for w, n in counts.items())  # one word at a time
    split = sum(n for w, n in counts.items() if len(pieces[w]) > 1)
    unk = sum(n for w, n in counts.items() if pieces[w] == ["[UNK]"])
    ranked = sorted(((n * (len(pieces[w]) - 1), n, w) for w, n in counts.items()
                     if len(pieces[w]) > 1), key=lambda t: (-t[0], -t[1], t[2]))[:top]
    return words, tokens, split, unk, [(w, n, tuple(pieces[w])) for _, n, w in ranked]


def _check(figures, direct):
    words, tokens, split, unk, most = direct
    assert (figures.words, figures.tokens, figures.split_words, figures.unk_words) == (
        words, tokens, split, unk)
    assert figures.tokens_per_word == tokens / words
    assert figures.split_word_share == split / words
    assert figures.unk_share == unk / words
    assert [(w.word, w.count, w.pieces) for w in figures.most_split] == most


def test_figures_equal_a_direct_count_with_the_tokenizer(tmp_path, uncased_vocab_path):
    strange = tmp_path / "strange.txt"
    strange.write_text(STRANGE * 3, encoding="utf-8")
    paths = SHIPPED + [str(strange)]
    report = vocab_report(vocab_file=uncased_vocab_path, input_file=",".join(paths),
                          progress=False)
    assert [f.path for f in report.files] == paths
    for part in report.files:
        _check(part.now, _direct([part.path], uncased_vocab_path))
    _check(report.overall.now, _direct(paths, uncased_vocab_path))
    assert report.vocab_size == 30522 and report.growth == ()
    # Not vacuous: words are split, and some become [UNK].
    norwegian = report.files[paths.index(corpus_file("norwegian", SHIPPED))].now
    assert norwegian.tokens_per_word > 1.5 and norwegian.split_word_share > 0.3
    assert report.files[-1].now.unk_words == 6
    as_json = report.to_json()
    for part in list(as_json["files"].values()) + [as_json["overall"]]:
        assert {"tokens_per_word", "split_word_share", "unk_share"} <= set(part)
    assert as_json["overall"]["tokens_per_word"] == report.overall.now.tokens_per_word


def test_options_and_the_first_bytes(tmp_path, uncased_vocab_path):
    """Accents kept while lower-casing, as the tokenizer keeps them; never-split words left out
    (one token each, as in the builders' counts); --max_input_bytes reads the first bytes of the
    files in order, as the vocab tools do."""
    norwegian = corpus_file("norwegian", SHIPPED)
    report = vocab_report(vocab_file=uncased_vocab_path, input_file=norwegian,
                          strip_accents=False, top_words=3, progress=False)
    _check(report.overall.now, _direct([norwegian], uncased_vocab_path, top=3,
                                       strip_accents=False))
    marked = tmp_path / "marked.txt"
    marked.write_text("see <url> now\n" * 4, encoding="utf-8")
    report = vocab_report(vocab_file=uncased_vocab_path, input_file=str(marked),
                          never_split=("<url>",), progress=False)
    assert report.overall.now.words == 8  # "see" and "now", four times each
    from norbert.vocab_building.corpus import CorpusConfig, count_corpus
    from norbert.tokenization.options import TokenizerOptions

    cut = ",".join(SHIPPED)
    report = vocab_report(vocab_file=uncased_vocab_path, input_file=cut,
                          max_input_bytes=20_000, progress=False)
    counts, _ = count_corpus(CorpusConfig(cut, max_input_bytes=20_000, progress=False),
                             TokenizerOptions())
    assert report.overall.now.words == sum(counts.values())
    assert report.files[-1].now.words == 0 and report.files[-1].now.tokens_per_word is None
    assert 0 < report.files[1].now.words < _direct([SHIPPED[1]], uncased_vocab_path)[0]


def test_growth_equals_what_extend_vocab_gives(tmp_path, uncased_vocab_path):
    """The grown figures for N equal those of extend_vocab's own grown vocab (built by its real
    code path on the same text), tokenized directly."""
    tf = pytest.importorskip("tensorflow")  # noqa: F841 (extend_vocab reads a checkpoint)
    import numpy as np

    from norbert.conversion.extend_vocab import extend_vocab
    from norbert.model import checkpoints

    text = corpus_file("norwegian", SHIPPED)
    sizes = (40, 250)
    report = vocab_report(vocab_file=uncased_vocab_path, input_file=text,
                          num_new_tokens=[str(n) for n in sizes], progress=False)
    assert [s.num_new_tokens for s in report.growth] == list(sizes)
    (tmp_path / "bert_config.json").write_text(tiny_bert_config(
        hidden_size=4, num_attention_heads=1, intermediate_size=8))
    weights = {"bert/embeddings/word_embeddings": np.zeros((30522, 4), np.float32)}
    checkpoints.save_checkpoint(weights, str(tmp_path / "start" / "bert_model.ckpt"))
    before = report.overall.now.tokens_per_word
    for step, grown_figures in zip(report.growth, report.overall.grown):
        out = tmp_path / ("grown%d" % step.num_new_tokens)
        done = extend_vocab(input_file=text, vocab_file=uncased_vocab_path,
                            bert_config_file=str(tmp_path / "bert_config.json"),
                            init_checkpoint=str(tmp_path / "start" / "bert_model.ckpt"),
                            output_dir=str(out), num_new_tokens=step.num_new_tokens,
                            progress=False)
        assert len(done.added) == step.added == step.num_new_tokens
        assert len(load_vocab(str(out / "vocab.txt"))) == step.vocab_size
        direct = _direct([text], str(out / "vocab.txt"))
        assert grown_figures.tokens_per_word == pytest.approx(direct[1] / direct[0], rel=0.01)
        assert grown_figures.tokens == direct[1]  # in fact exactly
        assert (grown_figures.split_words, grown_figures.unk_words) == direct[2:4]
        assert done.tokens_per_word_after == grown_figures.tokens_per_word
        # extend_vocab prints the report's figures of what it wrote.
        assert done.figures.tokens == direct[1]
        assert grown_figures.tokens_per_word < before  # each step shortens the text
        before = grown_figures.tokens_per_word


def test_the_learned_pieces_are_learned_once_for_the_largest_size(uncased_vocab_path):
    """Learning stops after N merges, so N pieces are the first N of a larger size's: the
    grown figures do not depend on which other sizes are asked for."""
    text = corpus_file("norwegian", SHIPPED)
    both = vocab_report(vocab_file=uncased_vocab_path, input_file=text,
                        num_new_tokens=("30", "200"), progress=False)
    alone = vocab_report(vocab_file=uncased_vocab_path, input_file=text,
                         num_new_tokens=("30",), progress=False)
    assert both.overall.grown[0] == alone.overall.grown[0]
    assert both.overall.grown[1].tokens < both.overall.grown[0].tokens


def test_build_vocab_reports_the_figures_of_what_it_wrote(tmp_path):
    text = corpus_file("english", SHIPPED)
    stats = build_vocab(input_file=text, output_file=str(tmp_path / "vocab.txt"),
                        vocab_size=400, num_unused=2, progress=False)
    direct = _direct([text], str(tmp_path / "vocab.txt"))
    _check(stats.figures, direct)
    assert stats.figures.tokens_per_word == stats.tokens_per_word
    written = reportlib.output_lines(stats.figures)
    assert "%.3f tokens per word" % stats.tokens_per_word in written
    assert direct[4][0][0] in written  # the word split the most is named


def test_the_summary_names_each_file_and_step(uncased_vocab_path):
    paths = SHIPPED[:2]
    report = vocab_report(vocab_file=uncased_vocab_path, input_file=",".join(paths),
                          num_new_tokens=("20",), top_words=2, progress=False)
    text = report.summary()
    for path in paths:
        assert "%s: %d words" % (path, report.files[paths.index(path)].now.words) in text
    assert "overall: %d words" % report.overall.now.words in text
    assert text.count("grown by 20 (20 added, vocab 30522)") == 3
    assert "%.3f tokens per word" % report.overall.grown[0].tokens_per_word in text


@pytest.mark.parametrize("settings, message", [
    (dict(num_new_tokens=("1000", "x")), "--num_new_tokens=1000,x: 'x' is not a positive"),
    (dict(num_new_tokens=("0",)), "--num_new_tokens=0:"),
    (dict(num_new_tokens="1000"), "--num_new_tokens takes a list"),
    (dict(top_words=-1), "--top_words=-1"),
    (dict(vocab_file=""), "--vocab_file is required"),
])
def test_bad_settings_name_the_flag(settings, message):
    with pytest.raises(NorbertError, match=message.replace("(", r"\(")):
        VocabReportConfig(**dict(dict(vocab_file="v.txt"), **settings))


def test_sizes_from_python_and_bad_input(tmp_path, uncased_vocab_path):
    assert VocabReportConfig("v.txt", num_new_tokens=(1000, 50)).growth_sizes() == (1000, 50)
    (tmp_path / "empty.txt").write_text("\n \n")
    (tmp_path / "vocab.txt").write_text("")
    text = corpus_file("english", SHIPPED)
    with pytest.raises(NorbertError, match="no words in input_file="):
        vocab_report(vocab_file=uncased_vocab_path, input_file=str(tmp_path / "empty.txt"),
                     progress=False)
    with pytest.raises(NorbertError, match="^vocab_file: vocab file .* is empty"):
        vocab_report(vocab_file=str(tmp_path / "vocab.txt"), input_file=text)
    with pytest.raises(NorbertError, match="^vocab_file: cannot read vocab file"):
        vocab_report(vocab_file=str(tmp_path / "none.txt"), input_file=text)
    with pytest.raises(NorbertError, match="^vocab_file=.*looks uncased"):
        vocab_report(vocab_file=uncased_vocab_path, input_file=text, do_lower_case=False)
