"""What a data build is told (``DataConfig``), the tokenizer it describes (``load_tokenizer``)
and what it reports (``DataSummary``).

Shared by the reference-exact builder, the sharded builder and the sidecar, and so below all
three. A ``DataConfig`` checks itself on construction: no invalid one exists, whichever route
(flags, keywords, code) built it.
"""

import dataclasses
import os
from typing import ClassVar, List, Optional

from norbert import fileio
from norbert.data import defaults
from norbert.data.documents import CorpusStats
from norbert.data.features import DYNAMIC, MASKINGS, MLM, MLM_NSP, OBJECTIVES, PAIRINGS, STATIC
from norbert.data.instances import InstanceConfig
from norbert.data.masking import MaskingConfig
from norbert.errors import NorbertError
from norbert.tokenization import vocab as vocablib
from norbert.tokenization.options import TokenizerOptions
from norbert.tokenization.tokenizer import FullTokenizer

DEDUPS = ("none", "exact")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Everything one data build needs; the flags of ``scripts/create_pretraining_data.py``."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Data"

    # Input text, comma-separated paths or globs: one sentence per line, blank line between
    # documents (.gz too); or one document per line of .jsonl(.gz) or row of .parquet, its text
    # in --text_field (split into sentences here).
    input_file: str
    # Output TFRecord file(s), comma-separated; records go round-robin over them.
    output_file: str
    # The vocab.txt of the model to train (one token per line, line number = id).
    vocab_file: str
    # The JSON key (.jsonl input) or Parquet column (.parquet input) that holds a document's
    # text; ignored for plain text.
    text_field: str = "text"
    # Mask all pieces of a word together (the reference's --do_whole_word_mask).
    do_whole_word_mask: bool = False
    # With do_whole_word_mask: one [MASK]/keep/random choice per word instead of per piece,
    # fixing the reference's bug (its choice per piece leaves pieces of a masked word
    # visible). Leaves reference-exact mode.
    whole_word_mask_per_word: bool = False
    # Tokens per sequence, [CLS] and [SEP]s included.
    max_seq_length: int = defaults.MAX_SEQ_LENGTH
    # Masked-LM predictions per sequence at most: the length of the masked_lm_* features.
    max_predictions_per_seq: int = defaults.MAX_PREDICTIONS_PER_SEQ
    # Seed of the one random.Random behind every choice; same seed, same records.
    random_seed: int = 12345
    # Passes over the corpus, each with new pairs (and masks). Default: 10 (Google's), or 1
    # with --masking=dynamic or --pairing=dynamic (every read of a record gets fresh masks,
    # and pairs, then).
    dupe_factor: Optional[int] = None
    # "static": masks drawn here, written into the records (Google's records). "dynamic":
    # records hold the pair unmasked and run_pretraining.py draws fresh masks each time it
    # reads one, with this build's masking settings (not reference-exact; a fraction of the
    # records' size for the same text).
    masking: str = dataclasses.field(default=STATIC, metadata={"choices": MASKINGS})
    # "static": the builder cuts the sentence pairs (the reference's). "dynamic" (implies
    # --masking=dynamic): records hold chunks of documents, unsplit, and run_pretraining.py
    # makes a fresh pair of each at every read (new split, new random next sentence): on a
    # small corpus read many times over, what --dupe_factor's passes gave the static records.
    pairing: str = dataclasses.field(default=STATIC, metadata={"choices": PAIRINGS})
    # "mlm_nsp": sentence pairs for masked LM and next-sentence prediction (Google's records).
    # "mlm": masked LM only, each record [CLS] + consecutive sentences packed up to
    # --max_seq_length + [SEP], the sentence that does not fit split into the next record, or
    # with --whole_sentences moved to it whole (RoBERTa's inputs; segment ids all 0,
    # next_sentence_labels 0 as a placeholder);
    # run_pretraining.py then trains the masked-LM loss alone.
    objective: str = dataclasses.field(default=MLM_NSP, metadata={"choices": OBJECTIVES})
    # With --objective=mlm: false, a record never spans two documents (a document's last one
    # may be short); true, a document's end is marked by [SEP] and the next document continues
    # the record (records full but the last of each pass, or of each --block_mb block, unless
    # --whole_sentences).
    cross_documents: bool = False
    # With --objective=mlm: a sentence that does not fit in the room left closes the record
    # (padded) and opens the next one whole, as in RoBERTa's inputs: no sentence is cut unless
    # it alone is longer than a record (then split over several). More padding than the
    # default, which splits the sentence that does not fit and so fills every record.
    whole_sentences: bool = False
    # Share of tokens to predict.
    masked_lm_prob: float = defaults.MASKED_LM_PROB
    # Share of documents cut into shorter sequences (--objective=mlm_nsp's pairs; with
    # --objective=mlm, which packs records full, only the default or 0 is accepted).
    short_seq_prob: float = defaults.SHORT_SEQ_PROB
    # Processes building shards in parallel; the records do not depend on it. Giving it (or
    # num_output_shards) leaves reference-exact mode for the sharded mode: parallel, memory
    # bounded, resumable. Default: min(shards, CPUs).
    num_workers: Optional[int] = None
    # Sharded mode: output files <output_file>-00000-of-0000K, each from its own slice of the
    # input with its own seed; a rerun keeps the complete ones. Default: num_workers.
    num_output_shards: Optional[int] = None
    # Sharded mode: megabytes of text per block; documents are paired (the random "next"
    # sentences drawn) and records shuffled within a block, and a worker's memory grows with
    # it, never with the corpus.
    block_mb: float = 8.0
    # "exact": a document whose normalised text (NFC, whitespace runs as one space) appeared
    # earlier in the input (files in order) is dropped, and counted in the sidecar. Sharded
    # and Beam modes; locally it holds 16 bytes (about 100 in Python's set) per distinct
    # document in memory. "none": keep all.
    dedup: str = dataclasses.field(default="none", metadata={"choices": DEDUPS})
    # Documents of the input to keep out of the training records, drawn by --random_seed (the
    # same ones in every mode), and written as records of their own (the same settings) to
    # --heldout_output_file: an evaluation set never trained on. 0: none.
    heldout_documents: int = 0
    # The TFRecord file of the held-out documents' records (with its .meta.json sidecar);
    # required with --heldout_documents, and not one of the training output files.
    heldout_output_file: str = ""
    # Show progress while reading and building: a bar when stderr is a terminal, a log line
    # every few seconds otherwise (a log file gets no carriage returns). False: silent.
    progress: bool = True
    # Sharded and Beam modes: print the plan -- each shard's slices of the input, their bytes
    # and an estimate of its records -- and stop, writing nothing (the plan reads only the
    # files' sizes and metadata, and a sample of text for the estimate).
    plan_only: bool = False

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
        if self.dynamic:
            parts.append("dynamic-masking")
        if self.pairs_dynamic:
            parts.append("dynamic-pairing")
        if self.objective == MLM:
            packed = "mlm-cross-documents" if self.cross_documents else "mlm"
            parts.append(packed + "-whole-sentences" if self.whole_sentences else packed)
        return "+".join(parts) or "reference-exact"

    @property
    def dynamic(self) -> bool:
        """Whether the records leave the masks to training time."""
        return self.masking == DYNAMIC

    @property
    def pairs_dynamic(self) -> bool:
        """Whether the records hold chunks, paired at training time."""
        return self.pairing == DYNAMIC

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
    def output_base(self) -> str:
        """The first output name: in sharded mode, the name the shards are numbered after and
        the set's sidecar is named after."""
        return self._given_outputs[0]

    @property
    def output_files(self) -> List[str]:
        """The files written: the given ones, or in sharded mode the shards."""
        given = self._given_outputs
        if not self.sharded or len(given) != 1:
            return given
        k = self.shards
        return ["%s-%05d-of-%05d" % (given[0], i, k) for i in range(k)]

    def __post_init__(self) -> None:
        """Raises ``NorbertError`` naming the flag for settings that cannot work."""
        for flag in ("input_file", "output_file", "vocab_file"):
            if not getattr(self, flag):
                raise NorbertError("--%s is required" % flag)
        # The instance and masking settings check themselves when their configs are made.
        _ = (self.instance_config, self.masking_config)
        if self.masking not in MASKINGS:
            raise NorbertError("--masking=%s: use one of %s" % (self.masking, ", ".join(MASKINGS)))
        if self.pairing not in PAIRINGS:
            raise NorbertError("--pairing=%s: use one of %s" % (self.pairing, ", ".join(PAIRINGS)))
        self._check_objective()
        if self.pairs_dynamic and not self.dynamic:
            # Chunks have no pair to mask yet: they are masked where they are paired.
            object.__setattr__(self, "masking", DYNAMIC)
        if self.dedup not in DEDUPS:
            raise NorbertError("--dedup=%s: use one of %s" % (self.dedup, ", ".join(DEDUPS)))
        if not self.text_field:
            raise NorbertError("--text_field is empty: name the JSON key or Parquet column "
                               "that holds the text (default: text)")
        if self.dupe_factor is None:  # the default depends on the masking: resolved once here
            object.__setattr__(self, "dupe_factor", 1 if self.dynamic else 10)
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
        self._check_heldout()
        if self.plan_only and not self.sharded:
            raise NorbertError("--plan_only prints the plan of a sharded or Beam build: add "
                               "--num_output_shards=N (the plan depends on it)")
        if self.max_predictions_per_seq > self.max_seq_length:
            raise NorbertError(
                "--max_predictions_per_seq (%d) exceeds --max_seq_length (%d): use about "
                "max_seq_length * masked_lm_prob"
                % (self.max_predictions_per_seq, self.max_seq_length)
            )

    def _check_objective(self) -> None:
        """--objective and what goes with it."""
        if self.objective not in OBJECTIVES:
            raise NorbertError("--objective=%s: use one of %s"
                               % (self.objective, ", ".join(OBJECTIVES)))
        if self.objective == MLM and self.pairing == DYNAMIC:
            raise NorbertError("--pairing=dynamic makes pairs for --objective=mlm_nsp: with "
                               "--objective=mlm leave --pairing static (use --masking=dynamic)")
        if self.objective == MLM and self.short_seq_prob not in (0.0, defaults.SHORT_SEQ_PROB):
            # The default passes (a config cannot tell it given from left out); another value
            # asks for short records that packing would not make.
            raise NorbertError("--short_seq_prob=%g cuts --objective=mlm_nsp's pairs short; "
                               "--objective=mlm packs records full: drop --short_seq_prob"
                               % self.short_seq_prob)
        if self.cross_documents and self.objective != MLM:
            raise NorbertError("--cross_documents packs records of --objective=mlm: add "
                               "--objective=mlm or drop --cross_documents")
        if self.whole_sentences and self.objective != MLM:
            raise NorbertError("--whole_sentences packs records of --objective=mlm: add "
                               "--objective=mlm or drop --whole_sentences")

    def _check_heldout(self) -> None:
        """--heldout_documents and --heldout_output_file: a count, and a file of their own."""
        n, path = self.heldout_documents, self.heldout_output_file.strip()
        if n < 0:
            raise NorbertError("--heldout_documents=%d must be at least 0 (0: none)" % n)
        if n and not path:
            raise NorbertError("--heldout_documents=%d needs --heldout_output_file: name the "
                               "file for the held-out records" % n)
        if path and not n:
            raise NorbertError("--heldout_output_file=%s needs --heldout_documents=N (N > 0): "
                               "say how many documents to hold out" % path)
        if "," in path:
            raise NorbertError("--heldout_output_file=%s names several files: give one" % path)
        training = set(self.output_files) | {self.output_base}
        if path in training or os.path.abspath(path) in {os.path.abspath(p) for p in training}:
            raise NorbertError("--heldout_output_file=%s is a training output file: give "
                               "another name" % path)
        object.__setattr__(self, "heldout_output_file", path)


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
    heldout_documents: int = 0  # documents kept out of these records (--heldout_documents)
    heldout_instances: int = 0  # records written of them to --heldout_output_file
    plan: str = ""  # with --plan_only: the plan, printed; nothing was built

    def line(self) -> str:
        if self.plan:
            return self.plan
        skipped = (" (%d already complete, kept)" % self.shards_skipped
                   if self.shards_skipped else "")
        heldout = ("; %d documents held out (%d instances)"
                   % (self.heldout_documents, self.heldout_instances)
                   if self.heldout_documents else "")
        return (
            "wrote %d instances (%d tokens, %d masked) to %d file(s)%s from %d documents "
            "(%d tokens, %d bad line(s)) in %.1f s"
            % (self.instances, self.instance_tokens, self.masked_tokens,
               len(self.records_per_file), skipped, self.corpus.documents, self.corpus.tokens,
               self.corpus.bad_lines, self.seconds)
        ) + heldout


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


def load_tokenizer(config: DataConfig, options: TokenizerOptions):
    """(the vocab file's bytes, the tokenizer the build uses); a vocab unfit for building
    (special tokens or never-split words missing) is a ``NorbertError`` naming the flag."""
    try:
        vocab_bytes = fileio.read_bytes(config.vocab_file, what="vocab file")
        tokenizer = FullTokenizer(config.vocab_file, do_lower_case=options.do_lower_case,
                                  **options.tokenizer_kwargs())
        vocablib.require(tokenizer.vocab, vocablib.SPECIAL_TOKENS, config.vocab_file)
    except NorbertError as e:
        raise NorbertError("--vocab_file: %s" % e) from None
    options.check_vocab(tokenizer.vocab, config.vocab_file)
    return vocab_bytes, tokenizer
