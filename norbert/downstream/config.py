"""The settings of downstream evaluation: the task and model (``DownstreamConfig``), the
fine-tuning (``FinetuneConfig``, named as Google's ``run_classifier.py`` names them) and
following a training run (``WatchConfig``). Each field is a flag of
``scripts/evaluate_downstream.py``; each config checks itself on construction. No TensorFlow.
"""

import dataclasses
import os
from typing import ClassVar, List, Optional

from norbert.downstream.conllu import check_label_column
from norbert.errors import NorbertError

TOKEN_CLASSIFICATION = "token_classification"
SEQUENCE_CLASSIFICATION = "sequence_classification"
TASKS = (TOKEN_CLASSIFICATION, SEQUENCE_CLASSIFICATION)


@dataclasses.dataclass(frozen=True)
class DownstreamConfig:
    """The labelled task, the model fine-tuned on it, and where the results go."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Downstream task"

    # Labelled training data: CoNLL-U for token_classification; JSONL (one object a line) or
    # TSV (a header line naming the columns) for sequence_classification.
    train_file: str
    # Labelled data the fine-tuned model is scored on, in the training file's format.
    eval_file: str
    # The bert_config.json of the model (Google's keys).
    bert_config_file: str
    # The model's vocab.txt.
    vocab_file: str
    # The checkpoint to fine-tune a copy of: a prefix (model.ckpt-1000) or a folder (its
    # newest). Unset: the same architecture from random weights, a baseline.
    checkpoint: Optional[str] = None
    # Where downstream_results.json, the runs' lines and the TensorBoard events go (not needed
    # with --watch, which writes into the run's folder).
    output_dir: Optional[str] = None
    # "token_classification" (a label per word, from CoNLL-U) or "sequence_classification"
    # (a label per text, or per pair of texts).
    task: str = dataclasses.field(default=TOKEN_CLASSIFICATION, metadata={"choices": TASKS})
    # The CoNLL-U column labelling each word: UPOS, XPOS, DEPREL, or MISC:key for a key=value
    # kept in MISC (MISC:name for NorNE's entity tags).
    label_column: str = "UPOS"
    # sequence_classification: the field (JSONL) or column (TSV) holding the text.
    text_field: str = "text"
    # sequence_classification: the field holding a second text (for pairs: premise and
    # hypothesis, question and answer); unset: single texts.
    text_b_field: Optional[str] = None
    # sequence_classification: the field holding the label.
    label_field: str = "label"
    # The task's name in the results (downstream_<name>/ with --watch, TensorBoard tags);
    # unset: the training file's name without its extension.
    name: Optional[str] = None

    def __post_init__(self) -> None:
        """Raises ``NorbertError`` naming the flag for settings that cannot work."""
        for flag in ("train_file", "eval_file", "bert_config_file", "vocab_file"):
            if not getattr(self, flag):
                raise NorbertError("--%s is required" % flag)
        if self.task not in TASKS:
            raise NorbertError("--task=%s is not known: use one of %s"
                               % (self.task, ", ".join(TASKS)))
        if self.task == TOKEN_CLASSIFICATION:
            check_label_column(self.label_column)
        for flag in ("text_field", "label_field"):
            if not getattr(self, flag):
                raise NorbertError("--%s must name a field" % flag)
        if self.name is not None and not _plain_name(self.name):
            raise NorbertError("--name=%s: use letters, digits, '-', '_' or '.' (it names a "
                               "folder)" % self.name)

    def task_name(self) -> str:
        """``name``, or the training file's name without its extension."""
        if self.name:
            return self.name
        stem = os.path.basename(self.train_file.rstrip("/")).split(".")[0]
        return "".join(c if _plain_name(c) else "_" for c in stem) or "task"


def _plain_name(text: str) -> bool:
    return bool(text) and all(c.isalnum() or c in "-_." for c in text) and text not in (".", "..")


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """How each copy is fine-tuned: Google's run_classifier.py settings, and the seeds."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Fine-tuning"

    # Peak learning rate of Adam with weight decay (linear warm-up, then linear decay to 0).
    learning_rate: float = 5e-5
    # Passes over the training data (fractions allowed): the updates are
    # int(examples * epochs / train_batch_size), as run_classifier.py counts them.
    num_train_epochs: float = 3.0
    # Examples (windows of a sentence, for token_classification) per update.
    train_batch_size: int = 32
    # Examples per evaluation batch (speed only; the scores do not depend on it).
    eval_batch_size: int = 64
    # Pieces per example, [CLS] and [SEP] included. A longer sentence is split into windows of
    # whole words (token_classification); a longer text is cut, the longer of a pair first.
    max_seq_length: int = 128
    # The share of the updates spent warming the learning rate up from 0.
    warmup_proportion: float = 0.1
    # Fine-tuning runs, each with its own seed (the classifier's initial weights, dropout and
    # the order of the examples); the scores are given as mean and spread over them.
    num_seeds: int = 3
    # The first seed; the runs use seed, seed + 1, ...
    seed: int = 1
    # Log the training loss every this many updates.
    log_every: int = 50

    def __post_init__(self) -> None:
        """Raises ``NorbertError`` naming the flag for settings that cannot work."""
        if self.learning_rate <= 0:
            raise NorbertError("--learning_rate must be positive, not %g" % self.learning_rate)
        if self.num_train_epochs <= 0:
            raise NorbertError("--num_train_epochs must be positive, not %g"
                               % self.num_train_epochs)
        for flag in ("train_batch_size", "eval_batch_size", "num_seeds", "log_every"):
            if getattr(self, flag) < 1:
                raise NorbertError("--%s=%d must be at least 1" % (flag, getattr(self, flag)))
        if self.max_seq_length < 3:
            raise NorbertError("--max_seq_length=%d must be at least 3 ([CLS], a piece, [SEP])"
                               % self.max_seq_length)
        if not 0 <= self.warmup_proportion < 1:
            raise NorbertError("--warmup_proportion=%g must be in [0, 1)"
                               % self.warmup_proportion)

    def seeds(self) -> List[int]:
        """The runs' seeds, in order."""
        return [self.seed + i for i in range(self.num_seeds)]

    def settings(self) -> dict:
        """The hyperparameters as run_classifier.py's flags name them, for logs and results."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("seed", "log_every")}


@dataclasses.dataclass(frozen=True)
class WatchConfig:
    """Following a run_pretraining folder: each new checkpoint evaluated once."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Watching a training run"

    # A run_pretraining --output_dir to follow: each checkpoint (model.ckpt-N) is evaluated
    # once, as it appears; results in <folder>/downstream_<name>/ (TensorBoard events, and a
    # JSONL line per checkpoint). Ends after the run's final step; a rerun resumes.
    watch: Optional[str] = None
    # Seconds between looks at the folder.
    watch_poll_secs: float = 30.0
    # Give up after this many seconds without a new checkpoint (0: never).
    watch_timeout_secs: float = 3600.0
    # The run's final step (its --num_train_steps); 0: read from the run's lock file while it
    # runs, else the watch ends once the run has stopped and its checkpoints are evaluated.
    watch_final_step: int = 0

    def __post_init__(self) -> None:
        """Raises ``NorbertError`` naming the flag for settings that cannot work."""
        if self.watch_poll_secs <= 0:
            raise NorbertError("--watch_poll_secs must be positive, not %g"
                               % self.watch_poll_secs)
        if self.watch_timeout_secs < 0:
            raise NorbertError("--watch_timeout_secs must be 0 (no limit) or more, not %g"
                               % self.watch_timeout_secs)
        if self.watch_final_step < 0:
            raise NorbertError("--watch_final_step must be 0 (read from the run) or more")
