"""The pretraining-data builder: text files -> TFRecord files of masked-LM/NSP examples.

``create_pretraining_data(DataConfig(...))`` does what Google's ``create_pretraining_data.py``
does, and in its default (reference-exact) mode writes records that parse to the same values, in
the same order and the same files, for the same inputs, settings and seed:

1. read the documents (``norbert.data.documents``) and tokenise them once, to ids;
2. seed one ``random.Random`` and shuffle the documents with it;
3. ``dupe_factor`` passes over the documents cut sentence pairs (``norbert.data.instances``) and
   mask them (``norbert.data.masking``), each record serialised at once
   (``norbert.data.features``); with ``--pairing=dynamic`` they cut chunks instead
   (``norbert.data.chunks``), paired and masked at training time;
4. shuffle all records with the same generator and write them round-robin over the output files
   (``norbert.data.tfrecord``), each file atomically, each with a ``.meta.json`` sidecar.

With ``--heldout_documents=N`` the N documents ``norbert.data.heldout`` draws are first written
as records of their own to ``--heldout_output_file``, then left out of step 1; without it,
nothing changes.

TensorFlow is never imported (for local files). Memory: the token ids of the corpus plus the
serialised records (about 0.6 KB per 128-token record), as the reference's final shuffle of all
records needs them all at once.

``num_workers`` or ``num_output_shards`` switch to the sharded builder (``norbert.data.sharded``):
parallel, streaming (memory bounded by ``block_mb``, not by the corpus) and resumable, with
output files ``<output_file>-00000-of-0000K``. It is not reference-exact (see that module).
"""

import hashlib
import os
import random
import time
from typing import AbstractSet, List, Optional

from absl import logging

from norbert import fileio
from norbert.beam_runner import BeamConfig
from norbert.data import heldout, sidecar, tfrecord
from norbert.data.config import DataConfig, DataSummary, load_tokenizer, settings_warnings
from norbert.data.documents import CorpusStats, read_documents
from norbert.data.draws import Draws
from norbert.data.record_writing import collect_records
from norbert.errors import NorbertError
from norbert.progress import Progress
from norbert.settings import keyword_errors, make_configs
from norbert.tokenization.options import TokenizerOptions


def _check_outputs(paths: List[str], flag: str = "--output_file") -> None:
    """Fails early, before hours of work, on an output path that cannot be written.

    Missing folders are fine (they are made when the files are written); a read-only one or a
    folder where a file should go is not.
    """
    for path in paths:
        if os.path.isdir(path):
            raise NorbertError("%s %s is a folder: name a file in it" % (flag, path))
        fileio.check_writable_dir(os.path.dirname(os.path.abspath(path)), flag)


@keyword_errors
def create_pretraining_data(config: Optional[DataConfig] = None,
                            tokenizer_options: Optional[TokenizerOptions] = None,
                            beam_config: Optional[BeamConfig] = None,
                            **settings) -> DataSummary:
    """Builds the TFRecord files and sidecars that ``config`` describes; returns the counts.

    Takes a ``DataConfig`` (and ``TokenizerOptions``, and ``BeamConfig`` to run as an Apache
    Beam pipeline) or their fields as keywords: ``create_pretraining_data(input_file=...,
    output_file=..., vocab_file=..., dupe_factor=5, strip_accents=False)``.
    """
    config, options, beam_config = make_configs(
        "create_pretraining_data",
        {"config": config, "tokenizer_options": tokenizer_options, "beam_config": beam_config},
        settings, [DataConfig, TokenizerOptions, BeamConfig])
    start = time.perf_counter()
    for message in settings_warnings(config):
        logging.warning(message)
    if config.dedup != "none" and not (config.sharded or beam_config.enabled):
        raise NorbertError(
            "--dedup=%s works in the sharded and Beam modes: add --num_output_shards=N (or "
            "--runner)" % config.dedup
        )
    input_paths = fileio.expand_inputs(config.input_file, flag="--input_file")
    output_paths = config.output_files
    _check_outputs(output_paths)
    if config.heldout_documents:
        _check_outputs([config.heldout_output_file], "--heldout_output_file")
    if beam_config.enabled:
        from norbert.data import beam as beam_data

        return beam_data.build(config, options, beam_config, input_paths, start)
    if config.sharded:
        from norbert.data import sharded as sharded_data

        return sharded_data.build(config, options, input_paths, start)
    return _build(config, options, input_paths, output_paths, start)


def _build(config: DataConfig, options: TokenizerOptions, input_paths: List[str],
           output_paths: List[str], start: float) -> DataSummary:
    """The reference-exact build, in this process: steps 1 to 4 of the module's docstring."""
    vocab_bytes, tokenizer = load_tokenizer(config, options)
    vocab_size = len(tokenizer.vocab)
    vocab_words = [tokenizer.inv_vocab[i] for i in range(vocab_size)]  # index = id

    vocab_sha = hashlib.sha256(vocab_bytes).hexdigest()
    heldout_summary = None
    skip = frozenset()
    if config.heldout_documents:  # chosen and written first: a small file, the same in every mode
        selection = heldout.select_whole(config, tokenizer, input_paths)
        skip = selection.skip[0]
        heldout_summary = heldout.write(config, options, tokenizer, vocab_sha, input_paths,
                                        selection, output_paths)
    stats = CorpusStats()
    documents = _read(config, tokenizer, input_paths, stats, skip)
    draws = Draws.for_rng(random.Random(config.random_seed))
    draws.shuffle(documents)
    summary = DataSummary(corpus=stats)
    records = collect_records(config, tokenizer, vocab_words, documents, draws, summary)
    draws.shuffle(records)  # the reference shuffles all instances with the same generator
    summary.instances = len(records)
    summary.records_per_file = tfrecord.write_round_robin(records, output_paths)
    del records
    summary.seconds = time.perf_counter() - start
    if heldout_summary is not None:
        summary.heldout_documents = heldout_summary.corpus.documents
        summary.heldout_instances = heldout_summary.instances

    for path, count in zip(output_paths, summary.records_per_file):
        sidecar.write(sidecar.path_for(path), sidecar.build(
            config, options, input_paths, output_paths, path, vocab_sha, vocab_size, summary,
            count, vocab=tokenizer.vocab))
    summary.seconds = time.perf_counter() - start
    return summary


def _read(config: DataConfig, tokenizer, input_paths: List[str], stats: CorpusStats,
          skip: AbstractSet[int] = frozenset()):
    """Step 1: the documents of ``input_paths`` as token ids (``stats`` counts them), but
    those numbered in ``skip`` (the held-out ones)."""
    with Progress("reading", "lines", enabled=config.progress) as bar:
        encode_line = tokenizer.encode
        if bar.active:
            def encode_line(text, _encode=tokenizer.encode, _tick=bar.update):
                _tick()
                return _encode(text)
        documents = read_documents(input_paths, encode_line, stats, config.text_field, skip)
    if not documents:
        raise NorbertError(
            "--input_file %s holds no text: give files with one sentence per line and a blank "
            "line between documents" % config.input_file
        )
    logging.info("read %d documents, %d sentences, %d tokens from %d file(s)",
                 stats.documents, stats.sentences, stats.tokens, stats.files)
    if stats.bad_lines:
        logging.warning("%d line(s) held bytes that are not UTF-8; they were replaced by U+FFFD",
                        stats.bad_lines)
    return documents
