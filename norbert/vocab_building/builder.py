"""The build_vocab tool: text files in, a WordPiece vocab.txt out.

Two jobs over the same reading: learn a new vocab (``norbert.vocab_building.learner`` holds the
learner, the merge scores and the vocab's layout), or with ``fill_unused_of`` fill the
``[unusedN]`` slots of an existing one with the corpus words it splits into the most pieces,
keeping its size and every other id (``extend_vocab``, in ``norbert.conversion``, is the other
tool: it grows a vocab, and the checkpoint's embeddings with it). The corpus is read and its
words counted as ``FullTokenizer`` sees them by ``norbert.vocab_building.corpus`` (in
parallel, memory bounded by the count table). This module does the rest: settings, the
learning's progress, the atomic write and the report (``VocabStats``).
"""

import dataclasses
import os
import re
import time
import warnings
from typing import ClassVar, Optional, Sequence, Tuple

from norbert import fileio
from norbert.beam_runner import BeamConfig
from norbert.errors import NorbertError
from norbert.progress import Progress
from norbert.settings import keyword_errors, make_configs
from norbert.tokenization import vocab as vocablib
from norbert.tokenization.options import TokenizerOptions
from norbert.vocab_building import learner
from norbert.vocab_building.corpus import CorpusConfig, count_corpus
from norbert.vocab_building.report import VocabFigures, figures

_UNUSED_RE = re.compile(r"^\[unused\d+\]$")


@dataclasses.dataclass(frozen=True)
class VocabConfig:
    """What to learn, and where it goes; every field is a flag of ``scripts/build_vocab.py``
    (the text read is ``CorpusConfig``'s)."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Vocab"

    # Where vocab.txt goes; written atomically, so a failed run leaves nothing behind.
    output_file: str
    # Lines in the vocab, specials and [unusedN] included (BERT-base has 30,522). Fewer when
    # the corpus runs out of pairs seen min_frequency times. Ignored with fill_unused_of.
    vocab_size: int = 30522
    # [unusedN] slots after the specials: room for tokens added later without resizing the
    # model (see fill_unused_of). Ignored with fill_unused_of, which fills the existing slots.
    num_unused: int = 100
    # Share of character occurrences that the alphabet must cover, most frequent characters
    # first. Rarer characters get no token, so words that contain them become [UNK]; this keeps
    # a stray emoji or a few foreign-script letters from taking vocabulary space. 1.0 keeps all.
    character_coverage: float = 0.9999
    # How the next pair to merge is chosen: "frequency" (the most frequent pair, as BPE and
    # Hugging Face's WordPiece trainer do) or "likelihood" (the largest gain in unigram
    # likelihood, as Schuster & Nakajima's WordPiece). See norbert/vocab_building/learner.py.
    merge_score: str = dataclasses.field(default=learner.FREQUENCY,
                                         metadata={"choices": learner.MERGE_SCORES})
    # An existing vocab.txt (for example multilingual BERT's) whose [unusedN] slots (about 100)
    # are filled with the corpus words that it splits into the most pieces; its size and every
    # other id stay, so it fits the same checkpoint. To add thousands of pieces, grow the vocab
    # and the checkpoint with extend_vocab.py instead. Unset: a new vocab is learned.
    fill_unused_of: Optional[str] = None
    # The old name of fill_unused_of (deprecated: it still works, with a warning).
    extend_vocab: Optional[str] = None

    def __post_init__(self) -> None:
        """Raises ``NorbertError`` naming the flag for settings that cannot work; takes the
        deprecated ``extend_vocab`` as ``fill_unused_of``, with a ``FutureWarning``."""
        if not self.output_file:
            raise NorbertError("--output_file is required: where to write vocab.txt")
        if self.extend_vocab:
            if self.fill_unused_of and self.fill_unused_of != self.extend_vocab:
                raise NorbertError("--extend_vocab is the old name of --fill_unused_of: give "
                                   "--fill_unused_of alone")
            # From build_vocab(extend_vocab=...), keyword_errors names the keywords instead.
            warnings.warn("--extend_vocab is deprecated, use --fill_unused_of, which fills the "
                          "[unusedN] slots (extend_vocab.py grows a vocab into a checkpoint)",
                          FutureWarning, stacklevel=3)
            object.__setattr__(self, "fill_unused_of", self.extend_vocab)
            object.__setattr__(self, "extend_vocab", None)
        if self.vocab_size < 1:
            raise NorbertError("--vocab_size=%d must be positive" % self.vocab_size)
        if self.num_unused < 0:
            raise NorbertError("--num_unused=%d must be 0 or more" % self.num_unused)
        if not 0.0 < self.character_coverage <= 1.0:
            raise NorbertError(
                "--character_coverage=%r must be in (0, 1], for example 0.9999"
                % self.character_coverage
            )
        learner.check_merge_score(self.merge_score)


@dataclasses.dataclass(frozen=True)
class VocabStats:
    """What a run read and wrote."""

    files: int  # input files read
    bytes_read: int  # bytes of text read
    lines: int  # lines read
    words: int  # words counted (running words, not distinct)
    distinct_words: int  # distinct words
    vocab_size: int  # lines written
    alphabet: int  # distinct characters with tokens (learning only)
    dropped_characters: int  # distinct characters left out by character_coverage
    learned: int  # tokens learned by merging, or words added by fill_unused_of
    tokens_per_word: float  # WordPiece tokens per word on the corpus, with the written vocab
    unk_words: int  # running words that become [UNK] with the written vocab
    seconds: float  # wall time of the whole run
    requested_size: int = 0  # --vocab_size (learning only)
    tokens_before: int = 0  # fill_unused_of: tokens of the corpus with the old vocab
    tokens_after: int = 0  # fill_unused_of: tokens of the corpus with the new vocab
    added: Tuple[str, ...] = ()  # fill_unused_of: the words put into [unusedN] slots, in id order
    figures: Optional[VocabFigures] = None  # the vocab report's figures of the written vocab

    @property
    def shortened_percent(self) -> float:
        """fill_unused_of: how much shorter the tokenized corpus became, in percent."""
        if not self.tokens_before:
            return 0.0
        return 100.0 * (self.tokens_before - self.tokens_after) / self.tokens_before

    def shortfall(self) -> str:
        """Why a learned vocab has fewer tokens than asked for."""
        return ("%d tokens, fewer than --vocab_size=%d: no pair left is seen --min_frequency "
                "times (more text, or a lower --min_frequency, gives more)"
                % (self.vocab_size, self.requested_size))

    def summary(self) -> str:
        lines = [
            "read %d files, %.1f MB, %d lines, %d words (%d distinct)"
            % (self.files, self.bytes_read / 1e6, self.lines, self.words, self.distinct_words),
        ]
        if self.tokens_before:
            lines.append(
                "filled %d [unusedN] slots; corpus tokens %d -> %d (%.2f%% shorter)"
                % (self.learned, self.tokens_before, self.tokens_after, self.shortened_percent)
            )
        else:
            lines.append(
                "wrote %d tokens: %d characters (%d rarer ones left out), %d learned pieces"
                % (self.vocab_size, self.alphabet, self.dropped_characters, self.learned)
            )
        lines.append(
            "%.3f tokens per word on the training text, %d words [UNK] (%.3f%%); %.1f s"
            % (self.tokens_per_word, self.unk_words,
               100.0 * self.unk_words / max(1, self.words), self.seconds)
        )
        return "\n".join(lines)


def _write_vocab(path: str, tokens: Sequence[str]) -> None:
    with fileio.atomic_output(path, "wb") as f:
        f.write(("\n".join(tokens) + "\n").encode("utf-8"))


def _check_output(path: str) -> None:
    """Fails before the reading and learning on an output path that cannot be written."""
    if os.path.isdir(path):
        raise NorbertError("--output_file %s is a folder: name a file in it" % path)
    fileio.check_writable_dir(os.path.dirname(os.path.abspath(path)), "--output_file")


@keyword_errors
def build_vocab(config: Optional[VocabConfig] = None,
                tokenizer_options: Optional[TokenizerOptions] = None,
                beam_config: Optional[BeamConfig] = None,
                corpus_config: Optional[CorpusConfig] = None, **settings) -> VocabStats:
    """Reads the corpus, learns (or with ``fill_unused_of`` fills) a vocab, writes it atomically.

    Takes a ``VocabConfig`` (and ``TokenizerOptions``, which the words are counted with and
    whose never-split words become tokens, ``BeamConfig`` to count them as an Apache Beam
    pipeline, and ``CorpusConfig``, the text read) or their fields as keywords:
    ``build_vocab(input_file=..., output_file=..., vocab_size=8000, strip_accents=False,
    runner="DirectRunner")``.

    Raises ``NorbertError`` naming the flag or file for unusable settings or input; then
    nothing is written.
    """
    config, options, beam_config, corpus = make_configs(
        "build_vocab",
        {"config": config, "tokenizer_options": tokenizer_options, "beam_config": beam_config,
         "corpus_config": corpus_config},
        settings, [VocabConfig, TokenizerOptions, BeamConfig, CorpusConfig])
    start = time.perf_counter()
    _check_output(config.output_file)
    if config.fill_unused_of:
        return _fill_unused(config, corpus, options, start, beam_config)
    counts, read = count_corpus(corpus, options, beam_config, near=config.output_file)
    with Progress("learning", "tokens", enabled=corpus.progress) as bar:

        def on_merge(num_pieces: int) -> None:
            bar.set_total(num_pieces)  # known once the alphabet is: the room left for pieces
            bar.update(1)

        learned = learner.learn_vocab(
            counts, config.vocab_size, corpus.min_frequency, config.num_unused,
            config.character_coverage, config.merge_score, on_merge=on_merge,
            whole_words=options.never_split, split_cjk=options.tokenize_chinese_chars,
        )
    tokens = learned.tokens
    vocab = {t: i for i, t in enumerate(tokens)}
    n_tokens, unk = learner.corpus_tokens(counts, vocab)
    _write_vocab(config.output_file, tokens)
    stats = _stats(read, counts, tokens, n_tokens, unk, start, alphabet=learned.alphabet,
                   dropped_characters=learned.dropped_characters, learned=learned.learned,
                   requested_size=config.vocab_size)
    if stats.vocab_size < stats.requested_size:  # said from Python too, not only in the summary
        # At the caller's line: above build_vocab, keyword_errors's frame.
        warnings.warn("%s: %s" % (config.output_file, stats.shortfall()), VocabShortfallWarning,
                      stacklevel=3)
    return stats


class VocabShortfallWarning(UserWarning):
    """The vocab learned has fewer tokens than asked for."""


def _stats(read, counts, tokens, n_tokens, unk, start, **mode_fields) -> VocabStats:
    """What a run read (``read``, ``counts``) and wrote (``tokens``, which split the corpus
    into ``n_tokens`` pieces with ``unk`` words unknown); ``mode_fields`` are learn's or
    fill_unused's own."""
    n_words = sum(counts.values())
    return VocabStats(
        files=read.files,
        bytes_read=read.bytes_read,
        lines=read.lines,
        words=n_words,
        distinct_words=len(counts),
        vocab_size=len(tokens),
        tokens_per_word=n_tokens / n_words,
        unk_words=unk,
        seconds=time.perf_counter() - start,
        figures=figures(counts, {t: i for i, t in enumerate(tokens)}),
        **mode_fields,
    )


def _fill_unused(config: VocabConfig, corpus: CorpusConfig, options: TokenizerOptions, start: float,
                 beam_config: Optional[BeamConfig] = None) -> VocabStats:
    old = vocablib.load_vocab(config.fill_unused_of, required=vocablib.SPECIAL_TOKENS)
    reason = vocablib.casing_mismatch(old, options.do_lower_case)
    if reason:
        raise NorbertError("--fill_unused_of=%s: %s" % (config.fill_unused_of, reason))
    tokens = list(old)  # id order: load_vocab keeps the file's
    slots = [i for i, t in enumerate(tokens) if _UNUSED_RE.match(t)]
    if not slots:
        raise NorbertError(
            "--fill_unused_of=%s has no [unusedN] lines to fill: to grow the vocab and a "
            "checkpoint with it use extend_vocab.py, or build a new vocab" % config.fill_unused_of
        )
    # Never-split words the vocab lacks take the first slots: the tokenizer needs them.
    whole = options.missing(old)
    if len(whole) > len(slots):
        raise NorbertError(
            "--never_split: %d words are not in --fill_unused_of=%s, which has %d [unusedN] "
            "slots to put them in" % (len(whole), config.fill_unused_of, len(slots)))
    counts, read = count_corpus(corpus, options, beam_config, near=config.output_file)
    added = whole + learner.choose_additions(counts, old, len(slots) - len(whole),
                                             corpus.min_frequency)
    for slot, word in zip(slots, added):
        tokens[slot] = word
    new = {t: i for i, t in enumerate(tokens)}
    before, _ = learner.corpus_tokens(counts, old)
    after, unk = learner.corpus_tokens(counts, new)
    _write_vocab(config.output_file, tokens)
    return _stats(read, counts, tokens, after, unk, start, alphabet=0, dropped_characters=0,
                  learned=len(added), tokens_before=before, tokens_after=after,
                  added=tuple(added))
