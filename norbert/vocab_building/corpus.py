"""The corpus a vocab is learned from: which text, read how (``CorpusConfig``, flags of
``build_vocab`` and ``extend_vocab`` alike), and its word counts (``count_corpus``).

The words are counted as ``FullTokenizer`` sees them (``norbert.vocab_building.word_counts``),
here in parallel, or as an Apache Beam pipeline (``beam_counting``), with a progress bar.
"""

import dataclasses
from typing import ClassVar, List, Optional

from norbert import beam_runner, fileio
from norbert.beam_runner import BeamConfig
from norbert.errors import NorbertError
from norbert.progress import Progress
from norbert.tokenization.options import TokenizerOptions
from norbert.vocab_building import word_counts


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """The text tokens are learned from, and how it is read and counted."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Input text"

    # Comma-separated files or globs: plain text, .gz, or gs:// paths, read in the order given.
    input_file: str
    # A pair of pieces seen fewer times than this is never merged into a new token; with
    # build_vocab's --fill_unused_of, a word seen fewer times is never added. Pieces made from
    # one rare word rarely help on new text.
    min_frequency: int = 2
    # Read only lines that start before this many bytes of text (decompressed); 0 reads all.
    max_input_bytes: int = 0
    # Processes counting words (over byte ranges of plain files, whole .gz/remote files). The
    # counts, and so the tokens learned, do not depend on it. With build_vocab's --runner,
    # Beam's options set the workers instead (direct_num_workers, or num_workers on Dataflow).
    num_workers: int = 1
    # Show progress while reading (and build_vocab's learning): a bar when stderr is a
    # terminal, a log line every few seconds otherwise (a log file gets no carriage returns).
    # False: silent.
    progress: bool = True

    def __post_init__(self) -> None:
        """Raises ``NorbertError`` naming the flag for settings that cannot work."""
        if not self.input_file or not self.input_file.strip(","):
            raise NorbertError(
                "--input_file is required: give text files or globs, comma-separated"
            )
        if self.min_frequency < 1:
            raise NorbertError("--min_frequency=%d must be at least 1" % self.min_frequency)
        if self.max_input_bytes < 0:
            raise NorbertError(
                "--max_input_bytes=%d must be 0 (no limit) or more" % self.max_input_bytes
            )
        if self.num_workers < 1:
            raise NorbertError("--num_workers=%d must be at least 1" % self.num_workers)


def count_corpus(corpus: CorpusConfig, options: TokenizerOptions,
                 beam_config: Optional[BeamConfig] = None, near: str = ""):
    """(word counts, what was read) of ``corpus.input_file`` as the tokenizer made with
    ``options`` sees it, with a progress bar.

    With an enabled ``beam_config`` the words are counted by a Beam pipeline on its runner (the
    same counts), passing through a temporary folder beside the file ``near`` (the output).
    """
    beam = beam_config is not None and beam_config.enabled
    if beam and corpus.num_workers != 1:
        raise beam_runner.local_workers_error("counting")
    paths = fileio.expand_inputs(corpus.input_file, flag="--input_file")
    if beam:
        from norbert.vocab_building import beam_counting  # needs Beam, an extra

        counts, read = beam_counting.count_words(
            paths, options.do_lower_case, beam_config, near, corpus.max_input_bytes, options)
    else:
        counts, read = _count_here(corpus, options, paths)
    if not counts:
        raise NorbertError(
            "no words in --input_file=%s (%d bytes read): the files are empty or hold only "
            "whitespace; give the text files to learn from" % (corpus.input_file, read.bytes_read)
        )
    return counts, read


def _count_here(corpus: CorpusConfig, options: TokenizerOptions, paths: List[str]):
    """``count_corpus`` on this machine, in ``corpus.num_workers`` processes."""
    total = None
    if all(word_counts.splittable(p) for p in paths):
        total = sum(word_counts.file_size(p) for p in paths)
        if corpus.max_input_bytes:
            total = min(total, corpus.max_input_bytes)
    with Progress("reading", "B", total=total, enabled=corpus.progress) as bar:
        return word_counts.count_words(
            paths, options.do_lower_case, corpus.num_workers, corpus.max_input_bytes,
            on_progress=lambda nbytes, lines: bar.update(nbytes, lines=lines), options=options,
        )
