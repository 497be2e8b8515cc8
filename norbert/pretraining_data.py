"""The pretraining-data builder: text files -> TFRecord files of masked-LM/NSP examples.

``create_pretraining_data(DataConfig(...))`` does what Google's ``create_pretraining_data.py``
does, and in its default (reference-exact) mode writes records that parse to the same values, in
the same order and the same files, for the same inputs, settings and seed:

1. read the documents (``norbert.documents``) and tokenise them once, to ids;
2. seed one ``random.Random`` and shuffle the documents with it;
3. ``dupe_factor`` passes over the documents cut sentence pairs (``norbert.instances``) and mask
   them (``norbert.masking``), each record serialised at once (``norbert.features``);
4. shuffle all records with the same generator and write them round-robin over the output files
   (``norbert.tfrecord``), each file atomically, each with a ``.meta.json`` sidecar.

TensorFlow is never imported (for local files). Memory: the token ids of the corpus plus the
serialised records (about 0.6 KB per 128-token record), as the reference's final shuffle of all
records needs them all at once.

``num_workers`` or ``num_output_shards`` switch to the sharded builder (``norbert.sharded_data``):
parallel, streaming (memory bounded by ``block_mb``, not by the corpus) and resumable, with
output files ``<output_file>-00000-of-0000K``. It is not reference-exact (see that module).
"""

import dataclasses
import hashlib
import os
import random
import time
from typing import List, Optional

from absl import logging

from norbert import fileio
from norbert import tfrecord
from norbert.documents import CorpusStats, read_documents
from norbert.draws import Draws
from norbert.errors import NorbertError
from norbert.features import ExampleEncoder, feature_schema
from norbert.instances import InstanceConfig, create_instances
from norbert.masking import Masker, MaskingConfig
from norbert.settings import one_config
from norbert.tokenizer import FullTokenizer

FORMAT_VERSION = 1  # of the sidecar


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Everything one data build needs; the flags of ``scripts/create_pretraining_data.py``."""

    # Input text, comma-separated paths or globs: one sentence per line, blank line between
    # documents (.gz too; .jsonl with a "text" field per line).
    input_file: str
    # Output TFRecord file(s), comma-separated; records go round-robin over them.
    output_file: str
    # The vocab.txt of the model to train (one token per line, line number = id).
    vocab_file: str
    # Lower-case and strip accents: True for uncased vocabs, False for cased ones.
    do_lower_case: bool = True
    # Mask all pieces of a word together (the reference's --do_whole_word_mask).
    do_whole_word_mask: bool = False
    # With do_whole_word_mask: one [MASK]/keep/random choice per word instead of per piece,
    # fixing the reference's bug. Leaves reference-exact mode.
    whole_word_mask_per_word: bool = False
    # Tokens per sequence, [CLS] and [SEP]s included.
    max_seq_length: int = 128
    # Masked-LM predictions per sequence at most: the length of the masked_lm_* features.
    max_predictions_per_seq: int = 20
    # Seed of the one random.Random behind every choice; same seed, same records.
    random_seed: int = 12345
    # Passes over the corpus, each with new pairs and masks.
    dupe_factor: int = 10
    # Share of tokens to predict.
    masked_lm_prob: float = 0.15
    # Share of documents cut into shorter sequences.
    short_seq_prob: float = 0.1
    # Sharded mode (either of the next two given; not reference-exact): processes building
    # shards in parallel. The records do not depend on it. Default: min(shards, CPUs).
    num_workers: Optional[int] = None
    # Sharded mode: output files <output_file>-00000-of-0000K. Default: num_workers.
    num_output_shards: Optional[int] = None
    # Sharded mode: megabytes of text per block; documents are paired (the random "next"
    # sentences drawn) and records shuffled within a block, and a worker's memory grows with
    # it, never with the corpus.
    block_mb: float = 8.0
    # A progress bar on stderr (tqdm).
    progress: bool = False

    @property
    def instance_config(self) -> InstanceConfig:
        return InstanceConfig(
            max_seq_length=self.max_seq_length, short_seq_prob=self.short_seq_prob
        )

    @property
    def masking_config(self) -> MaskingConfig:
        return MaskingConfig(
            masked_lm_prob=self.masked_lm_prob,
            max_predictions_per_seq=self.max_predictions_per_seq,
            whole_word=self.do_whole_word_mask,
            per_word=self.whole_word_mask_per_word,
        )

    @property
    def sharded(self) -> bool:
        """Whether the sharded (parallel, streaming, resumable) builder runs."""
        return self.num_workers is not None or self.num_output_shards is not None

    @property
    def mode(self) -> str:
        """``reference-exact``, or what leaves it (``sharded``, ``whole-word-per-word``)."""
        parts = []
        if self.sharded:
            parts.append("sharded")
        if self.do_whole_word_mask and self.whole_word_mask_per_word:
            parts.append("whole-word-per-word")
        return "+".join(parts) or "reference-exact"

    @property
    def shards(self) -> int:
        """Output shards of the sharded mode."""
        return self.num_output_shards or self.num_workers or 1

    @property
    def workers(self) -> int:
        """Processes of the sharded mode."""
        if self.num_workers is not None:
            return min(self.num_workers, self.shards)
        return max(1, min(self.shards, os.cpu_count() or 1))

    @property
    def _given_outputs(self) -> List[str]:
        return [p.strip() for p in self.output_file.split(",") if p.strip()]

    @property
    def output_files(self) -> List[str]:
        """The files written: the given ones, or in sharded mode the shards."""
        given = self._given_outputs
        if not self.sharded or len(given) != 1:
            return given
        k = self.shards
        return ["%s-%05d-of-%05d" % (given[0], i, k) for i in range(k)]

    def check(self) -> None:
        """Raises ``NorbertError`` naming the flag for settings that cannot work."""
        for flag in ("input_file", "output_file", "vocab_file"):
            if not getattr(self, flag):
                raise NorbertError("--%s is required" % flag)
        self.instance_config.check()
        self.masking_config.check()
        if self.dupe_factor < 1:
            raise NorbertError("--dupe_factor must be at least 1 (got %d)" % self.dupe_factor)
        outputs = self._given_outputs
        if not outputs:
            raise NorbertError("--output_file is empty: give one or more files, comma-separated")
        if len(set(outputs)) != len(outputs):
            raise NorbertError("--output_file names a file twice: give each output file once")
        if self.num_workers is not None and self.num_workers < 1:
            raise NorbertError("--num_workers=%d must be at least 1" % self.num_workers)
        if self.num_output_shards is not None and not 1 <= self.num_output_shards <= 99999:
            raise NorbertError(
                "--num_output_shards=%d must be between 1 and 99999" % self.num_output_shards
            )
        if not self.block_mb > 0:
            raise NorbertError("--block_mb=%r must be positive (8 is a good size)" % self.block_mb)
        if self.sharded and len(outputs) != 1:
            raise NorbertError(
                "--output_file names %d files: with --num_workers or --num_output_shards give "
                "one name; the shards get -00000-of-0000K after it" % len(outputs)
            )
        if self.max_predictions_per_seq > self.max_seq_length:
            raise NorbertError(
                "--max_predictions_per_seq (%d) exceeds --max_seq_length (%d): use about "
                "max_seq_length * masked_lm_prob"
                % (self.max_predictions_per_seq, self.max_seq_length)
            )


@dataclasses.dataclass
class DataSummary:
    """What a build read and wrote."""

    corpus: CorpusStats  # files, lines, bad lines, documents, sentences, tokens read
    instances: int = 0  # records written, all files together
    instance_tokens: int = 0  # real (unpadded) tokens in them, [CLS]/[SEP] included
    masked_tokens: int = 0  # masked-LM predictions in them
    random_next: int = 0  # records whose segment B is from another document
    records_per_file: List[int] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    shards_skipped: int = 0  # sharded mode: shards already complete from an earlier run

    def line(self) -> str:
        skipped = (" (%d already complete, kept)" % self.shards_skipped
                   if self.shards_skipped else "")
        return (
            "wrote %d instances (%d tokens, %d masked) to %d file(s)%s from %d documents "
            "(%d tokens, %d bad line(s)) in %.1f s"
            % (self.instances, self.instance_tokens, self.masked_tokens,
               len(self.records_per_file), skipped, self.corpus.documents, self.corpus.tokens,
               self.corpus.bad_lines, self.seconds)
        )


def settings_warnings(config: DataConfig) -> List[str]:
    """Settings that work but are probably not what was meant."""
    out = []
    expected = config.max_seq_length * config.masked_lm_prob
    if config.max_predictions_per_seq < int(round(expected)):
        out.append(
            "--max_predictions_per_seq=%d caps masking below --masked_lm_prob=%g for full-length "
            "sequences (%d tokens would get %d predictions): set it to about %d"
            % (config.max_predictions_per_seq, config.masked_lm_prob, config.max_seq_length,
               int(round(expected)), int(round(expected)) + 1)
        )
    elif config.max_predictions_per_seq > 1.5 * expected + 2:
        out.append(
            "--max_predictions_per_seq=%d is far above max_seq_length * masked_lm_prob = %.1f: "
            "the masked_lm_* features will be mostly padding (about %d is enough)"
            % (config.max_predictions_per_seq, expected, int(round(expected)) + 1)
        )
    if config.max_seq_length % 64:
        out.append(
            "--max_seq_length=%d is not a multiple of 64: TPUs and GPUs run fastest on multiples "
            "of 64 (BERT uses 128 and 512), and the same value must be given to pretraining"
            % config.max_seq_length
        )
    return out


def _check_outputs(paths: List[str]) -> None:
    """Fails early, before hours of work, on an output folder that is missing or read-only."""
    for path in paths:
        if fileio.is_remote(path):
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise NorbertError(
                "--output_file %s: folder %s does not exist (create it first)" % (path, folder)
            )
        if not os.access(folder, os.W_OK):
            raise NorbertError(
                "--output_file %s: folder %s is not writable (choose another folder)"
                % (path, folder)
            )
        if os.path.isdir(path):
            raise NorbertError("--output_file %s is a folder: name a file in it" % path)


def create_pretraining_data(config: Optional[DataConfig] = None, **settings) -> DataSummary:
    """Builds the TFRecord files and sidecars that ``config`` describes; returns the counts.

    Takes a ``DataConfig`` or its fields as keywords: ``create_pretraining_data(input_file=...,
    output_file=..., vocab_file=..., dupe_factor=5)``.
    """
    config = one_config("create_pretraining_data", config, settings, DataConfig)
    start = time.perf_counter()
    config.check()
    for message in settings_warnings(config):
        logging.warning(message)
    input_paths = fileio.expand_inputs(config.input_file, flag="--input_file")
    output_paths = config.output_files
    _check_outputs(output_paths)
    if config.sharded:
        from norbert import sharded_data

        return sharded_data.build(config, input_paths, start)
    try:
        vocab_bytes = fileio.read_bytes(config.vocab_file, what="vocab file")
        tokenizer = FullTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)
    except NorbertError as e:
        raise NorbertError("--vocab_file: %s" % e) from None
    vocab_size = len(tokenizer.vocab)
    vocab_words = [tokenizer.inv_vocab[i] for i in range(vocab_size)]  # index = id

    stats = CorpusStats()
    bar = _progress(config.progress, "reading", "lines")
    encode_line = tokenizer.encode
    if bar is not None:
        def encode_line(text, _encode=tokenizer.encode, _tick=bar.update):
            _tick()
            return _encode(text)
    try:
        documents = read_documents(input_paths, encode_line, stats)
    finally:
        if bar is not None:
            bar.close()
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

    draws = Draws.for_rng(random.Random(config.random_seed))
    draws.shuffle(documents)
    masker = Masker.for_vocab(config.masking_config, vocab_words)
    encoder = ExampleEncoder(config.max_seq_length, config.max_predictions_per_seq, vocab_size)
    encode = encoder.encode
    summary = DataSummary(corpus=stats)
    records: List[bytes] = []
    append = records.append
    n_tokens = n_masked = n_random = 0
    bar = _progress(config.progress, "instances", "inst")
    for inst in create_instances(
        documents, config.instance_config, masker.mask_pair, draws,
        cls_id=tokenizer.vocab["[CLS]"], sep_id=tokenizer.vocab["[SEP]"],
        dupe_factor=config.dupe_factor,
    ):
        tokens, len_a, positions, labels, is_random_next = inst
        append(encode(tokens, len_a, positions, labels, is_random_next))
        n_tokens += len(tokens)
        n_masked += len(positions)
        n_random += is_random_next
        if bar is not None and not len(records) & 1023:
            bar.update(1024)
    if bar is not None:
        bar.close()
    draws.shuffle(records)  # the reference shuffles all instances with the same generator
    summary.instances = len(records)
    summary.instance_tokens, summary.masked_tokens = n_tokens, n_masked
    summary.random_next = n_random
    summary.records_per_file = tfrecord.write_round_robin(records, output_paths)
    del records
    summary.seconds = time.perf_counter() - start

    vocab_sha = hashlib.sha256(vocab_bytes).hexdigest()
    for path, count in zip(output_paths, summary.records_per_file):
        tfrecord.write_sidecar(
            tfrecord.sidecar_path(path),
            _sidecar(config, summary, input_paths, output_paths, path, count, vocab_sha,
                     vocab_size),
        )
    summary.seconds = time.perf_counter() - start
    return summary


def _progress(enabled: bool, desc: str, unit: str):
    """A tqdm bar on stderr (no monitor thread), or None."""
    if not enabled:
        return None
    import sys

    import tqdm

    tqdm.tqdm.monitor_interval = 0
    return tqdm.tqdm(desc=desc, unit=unit, unit_scale=True, file=sys.stderr,
                     dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 10.0)


def _sidecar(config, summary, input_paths, output_paths, path, count, vocab_sha, vocab_size):
    schema = feature_schema(config.max_seq_length, config.max_predictions_per_seq)
    return {
        "format": "norbert-pretraining-data",
        "format_version": FORMAT_VERSION,
        "file": os.path.basename(path),
        "instances_in_file": count,
        "output_files": output_paths,
        "settings": {
            "mode": config.mode,
            "max_seq_length": config.max_seq_length,
            "max_predictions_per_seq": config.max_predictions_per_seq,
            "masked_lm_prob": config.masked_lm_prob,
            "short_seq_prob": config.short_seq_prob,
            "do_lower_case": config.do_lower_case,
            "do_whole_word_mask": config.do_whole_word_mask,
            "whole_word_mask_per_word": config.whole_word_mask_per_word,
            "dupe_factor": config.dupe_factor,
            "random_seed": config.random_seed,
            "vocab_file": config.vocab_file,
            "vocab_sha256": vocab_sha,
            "vocab_size": vocab_size,
        },
        "features": {name: {"dtype": t, "length": n} for name, (t, n) in schema.items()},
        "counts": {
            "input_files": len(input_paths),
            "lines": summary.corpus.lines,
            "bad_lines": summary.corpus.bad_lines,
            "documents": summary.corpus.documents,
            "sentences": summary.corpus.sentences,
            "corpus_tokens": summary.corpus.tokens,
            "instances": summary.instances,
            "instance_tokens": summary.instance_tokens,
            "masked_tokens": summary.masked_tokens,
            "random_next": summary.random_next,
        },
        "inputs": input_paths,
    }
