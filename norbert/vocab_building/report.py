"""How well a vocab fits a text: the vocab report (``vocab_report``), and its figures for any
vocab and word counts (``figures``), which build_vocab and extend_vocab print for what they wrote.

A word is what ``FullTokenizer`` sees before WordPiece (``norbert.vocab_building.word_counts``
counts them: cleaning, whitespace and punctuation splitting, the casing). Each distinct word is
split once, and the figures are counts weighted by how often it occurs, so they equal a count
of ``FullTokenizer``'s tokens over the whole text:

- tokens per word: WordPiece tokens / words (1.0: every word is a token of the vocab);
- split share: the share of words split into more than one piece;
- [UNK] share: the share of words that become ``[UNK]`` (a character the vocab lacks);
- the words split the most: ranked by the tokens they cost, count * (pieces - 1).

Growth estimates: for each N of ``num_new_tokens``, the figures after N new pieces, learned from
the text (all files together) exactly as ``extend_vocab`` learns them (``learner.learn_additions``
against the vocab, never-split words it lacks first, ``extend.grow``); nothing is written.
Learning stops early at the same N, so the pieces of a smaller N are the first of a larger one:
they are learned once, for the largest.

Words the tokenizer keeps whole (``--never_split``) are one token each and are left out of the
counts, as they are of the vocab builders'.
"""

import collections
import dataclasses
import heapq
import json
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple

from norbert import fileio
from norbert.errors import NorbertError
from norbert.progress import Progress
from norbert.settings import keyword_errors, make_configs
from norbert.tokenization import vocab as vocablib
from norbert.tokenization import wordpiece as wplib
from norbert.tokenization.options import TokenizerOptions
from norbert.vocab_building import extend as growlib
from norbert.vocab_building import learner, word_counts
from norbert.vocab_building.corpus import CorpusConfig

OVERALL = "overall"
_UNK_PIECES = 0  # in a word -> pieces table: the word becomes [UNK] (one token)


@dataclasses.dataclass(frozen=True)
class VocabReportConfig:
    """What the vocab report measures; every field is a flag of ``scripts/vocab_report.py``
    (the text read is ``CorpusConfig``'s, its splitting ``TokenizerOptions``')."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Vocab report"

    # The vocab.txt to measure: a model's (for example multilingual BERT's), or one built.
    vocab_file: str
    # Growth to estimate, comma-separated (1000,5000): for each N, the figures after N new
    # pieces learned from the text as extend_vocab learns them (nothing is written).
    num_new_tokens: Tuple[str, ...] = ()
    # How many of the words split into the most pieces to list (the most frequent first).
    top_words: int = 10
    # Print one JSON object (tokens_per_word, split_word_share, unk_share per file and overall,
    # and the growth estimates) instead of the text report.
    json: bool = False

    def __post_init__(self) -> None:
        """Raises ``NorbertError`` naming the flag for settings that cannot work."""
        if not self.vocab_file:
            raise NorbertError("--vocab_file is required: the vocab.txt to measure")
        if isinstance(self.num_new_tokens, (str, int)):
            raise NorbertError("--num_new_tokens takes a list of sizes, not %r"
                               % (self.num_new_tokens,))
        object.__setattr__(self, "num_new_tokens", tuple(self.num_new_tokens))
        self.growth_sizes()
        if self.top_words < 0:
            raise NorbertError("--top_words=%d must be 0 or more" % self.top_words)

    def growth_sizes(self) -> Tuple[int, ...]:
        """``num_new_tokens`` as positive ints, in the order given."""
        sizes = []
        for value in self.num_new_tokens:
            try:
                size = int(str(value).strip())
            except ValueError:
                size = 0
            if size < 1:
                raise NorbertError(
                    "--num_new_tokens=%s: %r is not a positive number; give sizes such as "
                    "1000,5000" % (",".join(map(str, self.num_new_tokens)), value))
            sizes.append(size)
        return tuple(sizes)


@dataclasses.dataclass(frozen=True)
class SplitWord:
    """A word the vocab splits into several pieces."""

    word: str
    count: int  # running words
    pieces: Tuple[str, ...]  # the vocab's WordPiece tokens of it


@dataclasses.dataclass(frozen=True)
class VocabFigures:
    """How a vocab splits the words of a text."""

    words: int  # running words (not distinct)
    distinct_words: int
    tokens: int  # WordPiece tokens of those words
    split_words: int  # running words split into more than one piece
    unk_words: int  # running words that become [UNK]
    most_split: Tuple[SplitWord, ...] = ()  # the words costing the most extra tokens, first

    def _share(self, part: int) -> Optional[float]:
        return part / self.words if self.words else None  # None: no words, no figure

    @property
    def tokens_per_word(self) -> Optional[float]:
        return self._share(self.tokens)

    @property
    def split_word_share(self) -> Optional[float]:
        return self._share(self.split_words)

    @property
    def unk_share(self) -> Optional[float]:
        return self._share(self.unk_words)

    def to_json(self) -> Dict[str, Any]:
        return {"words": self.words, "distinct_words": self.distinct_words,
                "tokens": self.tokens, "tokens_per_word": self.tokens_per_word,
                "split_word_share": self.split_word_share, "unk_share": self.unk_share,
                "most_split": [{"word": w.word, "count": w.count, "pieces": list(w.pieces)}
                               for w in self.most_split]}

    def line(self) -> str:
        """The three figures on one line."""
        if not self.words:
            return "no words"
        return "%.3f tokens per word; %.1f%% of words split into several pieces; %.2f%% [UNK]" % (
            self.tokens_per_word, 100.0 * self.split_word_share, 100.0 * self.unk_share)

    def lines(self) -> List[str]:
        """The figures and the words split the most, as lines of text."""
        out = ["%d words (%d distinct): %s" % (self.words, self.distinct_words, self.line())]
        if self.most_split:
            out.append("words split the most (count: pieces):")
            out.extend("  %s %d: %s" % (w.word, w.count, " ".join(w.pieces))
                       for w in self.most_split)
        return out


def piece_counts(words, vocab: Mapping[str, int]) -> Dict[str, int]:
    """Word -> number of WordPiece tokens ``vocab`` splits it into (``_UNK_PIECES``: [UNK]),
    each word split once."""
    bounds = wplib.piece_bounds(vocab)
    out = {}
    for word in words:
        pieces = wplib.wordpiece(word, vocab, vocablib.UNK, bounds=bounds)
        out[word] = _UNK_PIECES if pieces == [vocablib.UNK] else len(pieces)
    return out


def figures_of(counts: Mapping[str, int], pieces: Mapping[str, int], vocab: Mapping[str, int],
               top_words: int = 0) -> VocabFigures:
    """The figures of word ``counts`` whose words ``vocab`` splits into ``pieces`` (a
    ``piece_counts`` table holding at least ``counts``' words)."""
    words = tokens = split = unk = 0
    for word, n in counts.items():
        k = pieces[word]
        words += n
        tokens += n * max(k, 1)
        if k > 1:
            split += n
        elif k == _UNK_PIECES:
            unk += n
    ranked = heapq.nsmallest(top_words, ((-n * (pieces[w] - 1), -n, w)
                                         for w, n in counts.items() if pieces[w] > 1))
    bounds = wplib.piece_bounds(vocab)
    most = tuple(SplitWord(w, -n, tuple(wplib.wordpiece(w, vocab, vocablib.UNK, bounds=bounds)))
                 for _, n, w in ranked)
    return VocabFigures(words, len(counts), tokens, split, unk, most)


def figures(counts: Mapping[str, int], vocab: Mapping[str, int],
            top_words: int = 10) -> VocabFigures:
    """How ``vocab`` splits the text counted in ``counts`` (word -> running count)."""
    return figures_of(counts, piece_counts(counts, vocab), vocab, top_words)


def output_lines(written: Optional[VocabFigures]) -> str:
    """What build_vocab and extend_vocab print of the vocab they wrote, on the text they read:
    the vocab report's figures ("" when there are none)."""
    if written is None:
        return ""
    return "vocab report of the vocab written, on the text read: " + "\n  ".join(
        written.lines())


@dataclasses.dataclass(frozen=True)
class GrowthStep:
    """One growth estimate: the vocab grown by ``num_new_tokens`` pieces."""

    num_new_tokens: int  # asked for
    added: int  # tokens added: fewer when no pair is seen --min_frequency times
    vocab_size: int  # of the grown vocab


@dataclasses.dataclass(frozen=True)
class FileFigures:
    """One input file's figures (or all of them together: ``OVERALL``)."""

    path: str
    now: VocabFigures  # with the vocab as it is
    grown: Tuple[VocabFigures, ...]  # [growth steps] with the grown vocabs

    def to_json(self) -> Dict[str, Any]:
        out = self.now.to_json()
        out["grown"] = [{"tokens_per_word": g.tokens_per_word,
                         "split_word_share": g.split_word_share, "unk_share": g.unk_share,
                         "tokens": g.tokens} for g in self.grown]
        return out


@dataclasses.dataclass(frozen=True)
class VocabReport:
    """How well a vocab fits each input file and all of them, now and grown."""

    vocab_file: str
    vocab_size: int
    files: Tuple[FileFigures, ...]
    overall: FileFigures
    growth: Tuple[GrowthStep, ...]

    def to_json(self) -> Dict[str, Any]:
        """For scripts: the figures per file (keyed by path) and overall; ``growth`` lists the
        steps, and each file's ``grown`` the figures after each step, in the same order."""
        return {"vocab_file": self.vocab_file, "vocab_size": self.vocab_size,
                "files": {f.path: f.to_json() for f in self.files},
                "overall": self.overall.to_json(),
                "growth": [dataclasses.asdict(g) for g in self.growth]}

    def json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False)

    def summary(self) -> str:
        out = ["%s: %d tokens" % (self.vocab_file, self.vocab_size)]
        parts = list(self.files) + ([self.overall] if len(self.files) > 1 else [])
        for part in parts:
            out.append("%s: %s" % (part.path, "\n  ".join(part.now.lines())))
            for step, grown in zip(self.growth, part.grown):
                out.append("  grown by %d (%d added, vocab %d): %s" % (
                    step.num_new_tokens, step.added, step.vocab_size, grown.line()))
        return "\n".join(out)


@keyword_errors
def vocab_report(config: Optional[VocabReportConfig] = None,
                 tokenizer_options: Optional[TokenizerOptions] = None,
                 corpus_config: Optional[CorpusConfig] = None, **settings) -> VocabReport:
    """How well a vocab fits the text, per file and overall, and grown by each N pieces.

    Takes a ``VocabReportConfig`` (and ``TokenizerOptions``, and ``CorpusConfig``: the text
    read) or their fields as keywords:
    ``vocab_report(vocab_file=..., input_file=..., num_new_tokens=(1000, 5000))``.
    Reads the text once (the words counted per file), then splits each distinct word once per
    vocab. Raises ``NorbertError`` naming the flag for unusable settings or input.
    """
    config, options, corpus = make_configs(
        "vocab_report", {"config": config, "tokenizer_options": tokenizer_options,
                         "corpus_config": corpus_config}, settings,
        [VocabReportConfig, TokenizerOptions, CorpusConfig])
    vocab = _load(config.vocab_file, options)
    sizes = config.growth_sizes()
    paths = fileio.expand_inputs(corpus.input_file, flag="--input_file")
    per_file = _count_files(paths, corpus, options)
    overall = collections.Counter()
    for counts in per_file:
        overall.update(counts)
    if not overall:
        raise NorbertError("no words in --input_file=%s: the files are empty or hold only "
                           "whitespace; give the text to measure the vocab on"
                           % corpus.input_file)
    vocabs, steps = _grown_vocabs(overall, vocab, sizes, corpus.min_frequency, options)
    tables = [piece_counts(overall, vocab)]
    tables += [_regrown(tables[0], v) for v in vocabs]

    def file_figures(path: str, counts: Mapping[str, int]) -> FileFigures:
        now = figures_of(counts, tables[0], vocab, config.top_words)
        grown = tuple(figures_of(counts, t, v) for t, v in zip(tables[1:], vocabs))
        return FileFigures(path, now, grown)

    return VocabReport(config.vocab_file, len(vocab),
                       tuple(file_figures(p, c) for p, c in zip(paths, per_file)),
                       file_figures(OVERALL, overall), steps)


def _load(path: str, options: TokenizerOptions) -> Mapping[str, int]:
    """The vocab at ``--vocab_file``, checked against the tokenizer options."""
    try:
        vocab = vocablib.load_vocab(path, required=vocablib.SPECIAL_TOKENS)
    except NorbertError as e:
        raise NorbertError("--vocab_file: %s" % e) from None
    reason = vocablib.casing_mismatch(vocab, options.do_lower_case)
    if reason:
        raise NorbertError("--vocab_file=%s: %s" % (path, reason))
    return vocab


def _count_files(paths: Sequence[str], corpus: CorpusConfig, options: TokenizerOptions
                 ) -> List["collections.Counter[str]"]:
    """Word counts of each file, as ``FullTokenizer`` sees the words; with
    ``--max_input_bytes``, of the text's first bytes (files in order), as the vocab tools read."""
    remaining = corpus.max_input_bytes or None
    out = []
    with Progress("reading", "B", enabled=corpus.progress) as bar:
        for path in paths:
            if remaining is not None and remaining <= 0:
                out.append(collections.Counter())
                continue
            counts, read = word_counts.count_words(
                [path], options.do_lower_case, corpus.num_workers, remaining or 0,
                on_progress=lambda nbytes, lines: bar.update(nbytes, lines=lines),
                options=options)
            out.append(counts)
            if remaining is not None:
                remaining -= read.bytes_read
    return out


def _grown_vocabs(counts: Mapping[str, int], vocab: Mapping[str, int], sizes: Sequence[int],
                  min_frequency: int, options: TokenizerOptions
                  ) -> Tuple[List[Dict[str, int]], Tuple[GrowthStep, ...]]:
    """The vocab grown by each size, as ``extend_vocab`` grows it: the never-split words it
    lacks first, then pieces learned from ``counts``."""
    if not sizes:
        return [], ()
    whole = options.missing(vocab)
    learned = learner.learn_additions(counts, vocab, max(0, max(sizes) - len(whole)),
                                      min_frequency)
    vocabs, steps = [], []
    for size in sizes:
        growth = growlib.grow(vocab, whole + learned[:max(0, size - len(whole))])
        vocabs.append({t: i for i, t in enumerate(growth.tokens)})
        steps.append(GrowthStep(size, len(growth.added), len(growth.tokens)))
    return vocabs, tuple(steps)


def _regrown(pieces: Mapping[str, int], vocab: Mapping[str, int]) -> Dict[str, int]:
    """``pieces`` for a grown ``vocab``: a word the old vocab held whole still is (the
    longest match takes it first); the others are split again."""
    again = piece_counts([w for w, k in pieces.items() if k != 1], vocab)
    return {w: (k if k == 1 else again[w]) for w, k in pieces.items()}
