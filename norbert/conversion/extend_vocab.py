"""The extend_vocab tool: a trained model (Google's layout) grown by new word pieces.

Reads a corpus, learns ``num_new_tokens`` pieces against the model's vocab (the pairs of its
pieces that shorten the corpus most, as build_vocab learns; ``norbert.vocab_building.learner``),
and writes into ``output_dir`` the grown vocab.txt (every old id kept, ``[unusedN]`` slots
filled first), bert_config.json with the new vocab_size, and bert_model.ckpt: the word
embeddings and the masked-LM output bias grown by the new rows
(``norbert.vocab_building.extend``), their optimizer slots grown with zero rows, every other
variable copied. The folder is what ``run_pretraining.py --init_checkpoint`` continues from.

Every input is read and checked before anything is written, and the folder appears whole.
"""

import dataclasses
import os
import time
from typing import ClassVar, Optional, Tuple

import numpy as np

from norbert import fileio
from norbert.conversion.output import staged, write
from norbert.errors import NorbertError
from norbert.model.bert_config import BertConfig
from norbert.settings import keyword_errors, make_configs
from norbert.tokenization import vocab as vocablib
from norbert.tokenization.options import TokenizerOptions
from norbert.vocab_building import extend as growlib
from norbert.vocab_building import learner
from norbert.vocab_building.corpus import CorpusConfig, count_corpus
from norbert.vocab_building.report import VocabFigures, figures

WORD_EMBEDDINGS = "bert/embeddings/word_embeddings"  # [vocab, H]
OUTPUT_BIAS = "cls/predictions/output_bias"  # [vocab]
CHECKPOINT_NAME = "bert_model.ckpt"


@dataclasses.dataclass(frozen=True)
class ExtendConfig:
    """What ``extend_vocab`` grows and where it writes (the text read is ``CorpusConfig``'s)."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Vocab growth"

    # The model's vocab.txt.
    vocab_file: str
    # The model's bert_config.json (Google's keys).
    bert_config_file: str
    # The model's checkpoint (prefix or folder).
    init_checkpoint: str
    # Where the grown vocab.txt, bert_config.json and bert_model.ckpt go.
    output_dir: str
    # Tokens to add, the [unusedN] slots they fill included (a slot holds one new token).
    num_new_tokens: int = 1000
    # First embedding of a new token: "mean" of the pieces the old vocab splits it into, or
    # "random" (as a fresh model's rows), for comparison.
    init: str = dataclasses.field(default=growlib.MEAN, metadata={"choices": growlib.INITS})
    # A new token's masked-LM output bias: "mean" or "min" of its pieces' biases, "product"
    # (as likely as its pieces drawn independently), or "zero".
    bias_init: str = dataclasses.field(default=growlib.MEAN,
                                       metadata={"choices": growlib.BIAS_INITS})
    # Seed of the random rows (init=random).
    seed: int = 12345

    def __post_init__(self) -> None:
        """Raises ``NorbertError`` naming the flag for settings that cannot work."""
        for flag in ("vocab_file", "bert_config_file", "init_checkpoint",
                     "output_dir"):
            if not getattr(self, flag):
                raise NorbertError("--%s is required" % flag)
        if self.num_new_tokens < 1:
            raise NorbertError("--num_new_tokens=%d must be at least 1" % self.num_new_tokens)
        if self.init not in growlib.INITS:
            raise NorbertError("--init=%s: use one of %s" % (self.init, ", ".join(growlib.INITS)))
        if self.bias_init not in growlib.BIAS_INITS:
            raise NorbertError("--bias_init=%s: use one of %s"
                               % (self.bias_init, ", ".join(growlib.BIAS_INITS)))


@dataclasses.dataclass(frozen=True)
class ExtendReport:
    """What ``extend_vocab`` did."""

    output_dir: str
    old_size: int  # tokens before
    new_size: int  # tokens after
    added: Tuple[str, ...]  # the new tokens, in the order learned
    slots_filled: int  # of them, how many went into [unusedN] slots
    tokens_per_word_before: float  # on the corpus read, with the old vocab
    tokens_per_word_after: float  # with the grown vocab
    grown: Tuple[str, ...]  # variables grown by the new rows (model and optimizer slots)
    copied: int  # variables copied as they were
    seconds: float
    figures: Optional[VocabFigures] = None  # the vocab report's figures of the grown vocab

    def summary(self) -> str:
        short = ", ".join(self.added[:12]) + (", ..." if len(self.added) > 12 else "")
        return "\n".join([
            "added %d tokens (%d into [unusedN] slots, %d appended): vocab %d -> %d"
            % (len(self.added), self.slots_filled, len(self.added) - self.slots_filled,
               self.old_size, self.new_size),
            "  for example: %s" % short,
            "  tokens per word on the corpus: %.3f -> %.3f (%.1f%% fewer tokens)"
            % (self.tokens_per_word_before, self.tokens_per_word_after,
               100.0 * (1 - self.tokens_per_word_after / max(self.tokens_per_word_before, 1e-9))),
            "  grown: %s; %d other variables copied; wrote %s in %.1f s"
            % (", ".join(self.grown), self.copied, self.output_dir, self.seconds),
        ])


@keyword_errors
def extend_vocab(config: Optional[ExtendConfig] = None,
                 tokenizer_options: Optional[TokenizerOptions] = None,
                 corpus_config: Optional[CorpusConfig] = None, **settings) -> ExtendReport:
    """Grows a model's vocab by new pieces learned from a corpus; returns what it did.

    Takes an ``ExtendConfig`` (and ``TokenizerOptions``, and ``CorpusConfig``: the text read)
    or their fields as keywords:
    ``extend_vocab(input_file=..., vocab_file=..., bert_config_file=..., init_checkpoint=...,
    output_dir=..., num_new_tokens=5000)``.
    """
    config, options, corpus = make_configs(
        "extend_vocab", {"config": config, "tokenizer_options": tokenizer_options,
                         "corpus_config": corpus_config}, settings,
        [ExtendConfig, TokenizerOptions, CorpusConfig])
    start = time.perf_counter()
    fileio.check_writable_dir(config.output_dir, "--output_dir")
    old = vocablib.load_vocab(config.vocab_file, required=vocablib.SPECIAL_TOKENS)
    bert_config = BertConfig.from_json_file(config.bert_config_file, flag="--bert_config_file")
    if len(old) != bert_config.vocab_size:
        raise NorbertError(
            "--vocab_file=%s has %d tokens but the model's table %d rows: extend a model whose "
            "vocab fills its table" % (config.vocab_file, len(old), bert_config.vocab_size))
    reason = vocablib.casing_mismatch(old, options.do_lower_case)
    if reason:
        raise NorbertError("--vocab_file=%s: %s" % (config.vocab_file, reason))
    from norbert.model import checkpoints  # imports TensorFlow

    tensors = checkpoints.read_checkpoint(checkpoints.resolve(config.init_checkpoint))

    counts, _ = count_corpus(corpus, options)
    whole = options.missing(old)  # never-split words the tokenizer needs: added first
    learned = learner.learn_additions(counts, old, max(0, config.num_new_tokens - len(whole)),
                                      corpus.min_frequency)
    if not learned and not whole:
        raise NorbertError("--input_file=%s: no pair of pieces is seen --min_frequency=%d times; "
                           "give more text" % (corpus.input_file, corpus.min_frequency))
    growth = growlib.grow(old, whole + learned)

    rng = np.random.RandomState(config.seed)
    values, grown = {}, []
    for name, value in sorted(tensors.items()):
        if name == WORD_EMBEDDINGS:
            values[name] = growlib.grown_rows(value, growth, config.init, rng,
                                              bert_config.initializer_range)
            grown.append(name)
        elif name == OUTPUT_BIAS:
            values[name] = growlib.grown_bias(value, growth, config.bias_init)
            grown.append(name)
        elif _slot_of_grown(name, value, len(old)):
            values[name] = growlib.grown_slot(value, growth)
            grown.append(name)
        else:
            values[name] = value
    if WORD_EMBEDDINGS not in grown:
        raise NorbertError("--init_checkpoint=%s has no %s: not a BERT checkpoint in Google's "
                           "layout (import_hf.py writes one)" % (config.init_checkpoint,
                                                                 WORD_EMBEDDINGS))
    new_vocab = {t: i for i, t in enumerate(growth.tokens)}
    before, _ = learner.corpus_tokens(counts, old)
    after, _ = learner.corpus_tokens(counts, new_vocab)
    words = sum(counts.values())

    grown_config = BertConfig.from_dict(dict(bert_config.to_dict(), vocab_size=len(new_vocab)))
    with staged(config.output_dir) as stage:
        write(stage, "vocab.txt", ("\n".join(growth.tokens) + "\n").encode("utf-8"))
        grown_config.to_json_file(os.path.join(stage, "bert_config.json"))
        checkpoints.save_checkpoint(values, os.path.join(stage, CHECKPOINT_NAME))
    return ExtendReport(
        output_dir=config.output_dir, old_size=len(old), new_size=len(new_vocab),
        added=tuple(growth.added), slots_filled=growth.slots_filled,
        tokens_per_word_before=before / words, tokens_per_word_after=after / words,
        grown=tuple(grown), copied=len(values) - len(grown),
        seconds=time.perf_counter() - start, figures=figures(counts, new_vocab))


def _slot_of_grown(name: str, value: np.ndarray, vocab_size: int) -> bool:
    """An optimizer slot or accumulator of the word embeddings or the output bias
    (``.../adam_m``, ``.../grad_acc``): named after it, with a row per token."""
    return (any(name != v and v in name for v in (WORD_EMBEDDINGS, OUTPUT_BIAS))
            and value.ndim >= 1 and value.shape[0] == vocab_size)
