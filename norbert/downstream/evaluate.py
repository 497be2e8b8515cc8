"""``evaluate_downstream``: fine-tune copies of a checkpoint on a labelled task, one per seed,
and report the task's scores as mean and spread (``scripts/evaluate_downstream.py``).

The files are read, checked and turned into model inputs first (``prepare_task``, no
TensorFlow), so that bad input costs a second; then each seed's run (``norbert.downstream.
finetune``), scored on the evaluation file (``norbert.downstream.metrics``); the results go to
``--output_dir`` (``norbert.downstream.results``). With ``--watch``, the same for every
checkpoint of a training run (``norbert.downstream.watch``).
"""

import dataclasses
from typing import Dict, List, Optional, Tuple

from absl import logging

from norbert import fileio
from norbert.downstream import conllu, metrics, tasks
from norbert.downstream.config import (
    TOKEN_CLASSIFICATION, DownstreamConfig, FinetuneConfig, WatchConfig,
)
from norbert.downstream.results import (
    DownstreamResults, Run, write_curves, write_events, write_results,
)
from norbert.errors import NorbertError
from norbert.model.bert_config import BertConfig
from norbert.settings import keyword_errors, make_configs
from norbert.tokenization.options import TokenizerOptions
from norbert.tokenization.tokenizer import FullTokenizer
from norbert.training.distribution import MULTI_WORKER, DistributionConfig

BASELINE = "random weights (baseline)"


@dataclasses.dataclass(frozen=True)
class PreparedTask:
    """A task's data as the model takes it, and the gold labels it is scored against."""

    name: str
    kind: str  # TOKEN_CLASSIFICATION or SEQUENCE_CLASSIFICATION
    labels: Tuple[str, ...]  # label id -> label, those seen in training
    train: tasks.Arrays
    evaluation: tasks.Arrays
    gold: tuple  # per eval sentence, its words' labels; or per eval example, its label
    eval_rows: Optional[tasks.TokenInputs]  # tokens: how the eval rows join into sentences
    bio: bool  # the labels are BIO entity tags: entity F1 is scored too

    def score(self, predictions) -> Dict[str, float]:
        """The task's scores of the eval rows' predicted label ids."""
        if self.kind == TOKEN_CLASSIFICATION:
            predicted = tasks.sentence_predictions(self.eval_rows, predictions, self.labels,
                                                   len(self.gold))
            return metrics.token_scores(self.gold, predicted, self.bio)
        return metrics.sequence_scores(self.gold, [self.labels[int(i)] for i in predictions])


def _tokenizer(config: DownstreamConfig, options: TokenizerOptions,
               bert_config: BertConfig) -> FullTokenizer:
    try:
        tokenizer = FullTokenizer(config.vocab_file, options.do_lower_case,
                                  **options.tokenizer_kwargs())
    except NorbertError as e:
        raise NorbertError("--vocab_file: %s" % e) from None
    if tokenizer.vocab_size > bert_config.vocab_size:
        raise NorbertError("--vocab_file=%s has %d tokens but --bert_config_file's vocab_size is "
                           "%d: give the model's own vocab" % (
                               config.vocab_file, tokenizer.vocab_size, bert_config.vocab_size))
    return tokenizer


def prepare_task(config: DownstreamConfig, settings: FinetuneConfig, options: TokenizerOptions,
                 bert_config: BertConfig) -> PreparedTask:
    """Reads and checks the training and evaluation files; builds the model's inputs."""
    if settings.max_seq_length > bert_config.max_position_embeddings:
        raise NorbertError("--max_seq_length=%d is longer than the model's "
                           "max_position_embeddings (%d): give at most that"
                           % (settings.max_seq_length, bert_config.max_position_embeddings))
    tokenizer = _tokenizer(config, options, bert_config)
    if config.task == TOKEN_CLASSIFICATION:
        train = conllu.read_conllu(config.train_file, config.label_column, "--train_file")
        evaluation = conllu.read_conllu(config.eval_file, config.label_column, "--eval_file")
        labels = tasks.label_list([x for s in train for x in s.labels])
        gold = tuple(s.labels for s in evaluation)
        tasks.check_eval_labels([x for s in gold for x in s], labels, config.eval_file)
        eval_rows = tasks.token_inputs(evaluation, tokenizer, labels, settings.max_seq_length)
        return PreparedTask(
            config.task_name(), config.task, tuple(labels),
            tasks.token_inputs(train, tokenizer, labels, settings.max_seq_length).arrays,
            eval_rows.arrays, gold, eval_rows, metrics.is_bio(labels))
    read = [tasks.read_text_examples(path, config.text_field, config.text_b_field,
                                     config.label_field, flag)
            for path, flag in ((config.train_file, "--train_file"),
                               (config.eval_file, "--eval_file"))]
    labels = tasks.label_list([e.label for e in read[0]])
    gold = tuple(e.label for e in read[1])
    tasks.check_eval_labels(gold, labels, config.eval_file)
    train, evaluation = (tasks.sequence_inputs(examples, tokenizer, labels,
                                               settings.max_seq_length) for examples in read)
    return PreparedTask(config.task_name(), config.task, tuple(labels), train, evaluation,
                        gold, None, False)


def start_line(task: PreparedTask, model: str, settings: FinetuneConfig) -> str:
    """What the log says first: the model, the task, the hyperparameters and the seeds."""
    return "fine-tuning %s on %s (%s, %d labels, %d training rows, %d eval rows): %s; seeds %s" % (
        model, task.name, task.kind, len(task.labels), len(task.train["input_ids"]),
        len(task.evaluation["input_ids"]),
        ", ".join("%s=%s" % kv for kv in sorted(settings.settings().items())),
        ", ".join(map(str, settings.seeds())))


def evaluate_model(task: PreparedTask, bert_config: BertConfig, checkpoint: Optional[str],
                   settings: FinetuneConfig, files: Dict[str, str],
                   distribution: Optional[DistributionConfig] = None) -> DownstreamResults:
    """Fine-tunes and scores one copy per seed of ``checkpoint`` (None: random weights), on
    the replicas of ``distribution`` (None: one device)."""
    from norbert.downstream.finetune import finetune  # TensorFlow, once the input is checked

    model = checkpoint if checkpoint is not None else BASELINE
    logging.info("%s", start_line(task, model, settings))
    runs: List[Run] = []
    for seed in settings.seeds():
        output = finetune(bert_config, checkpoint, task.kind, len(task.labels), task.train,
                          task.evaluation, settings, seed, distribution)
        run = Run(seed, task.score(output.predictions), output.steps, output.seconds,
                  output.losses, output.learning_rates)
        logging.info("%s: %s", model, run.line())
        runs.append(run)
    recorded = dict(settings.settings(), seeds=settings.seeds(), labels=list(task.labels),
                    **files)
    return DownstreamResults(task.name, model, checkpoint is None, tuple(runs), recorded)


def _files(config: DownstreamConfig) -> Dict[str, str]:
    out = {"task": config.task, "train_file": config.train_file, "eval_file": config.eval_file,
           "bert_config_file": config.bert_config_file, "vocab_file": config.vocab_file}
    if config.task == TOKEN_CLASSIFICATION:
        out["label_column"] = config.label_column
    return out


@keyword_errors
def evaluate_downstream(config: Optional[DownstreamConfig] = None,
                        finetune_config: Optional[FinetuneConfig] = None,
                        watch_config: Optional[WatchConfig] = None,
                        tokenizer_options: Optional[TokenizerOptions] = None,
                        distribution_config: Optional[DistributionConfig] = None,
                        **settings):
    """Fine-tunes copies of a checkpoint on a labelled task and reports its scores.

    Takes a ``DownstreamConfig`` (and ``FinetuneConfig``, ``WatchConfig``,
    ``TokenizerOptions``, ``DistributionConfig``) or their fields as keywords, named as the flags of
    ``scripts/evaluate_downstream.py``: ``evaluate_downstream(train_file="train.conllu",
    eval_file="dev.conllu", bert_config_file=..., vocab_file=..., checkpoint="run",
    output_dir="eval")``. Returns the ``DownstreamResults`` (written to ``output_dir``); with
    ``watch``, the list of the results of the checkpoints evaluated by this call.
    """
    config, finetune_settings, watch, options, distribution = make_configs(
        "evaluate_downstream", {"config": config, "finetune_config": finetune_config,
                                "watch_config": watch_config,
                                "tokenizer_options": tokenizer_options,
                                "distribution_config": distribution_config}, settings,
        [DownstreamConfig, FinetuneConfig, WatchConfig, TokenizerOptions, DistributionConfig])
    if distribution.distribution == MULTI_WORKER:
        raise NorbertError("--distribution=multi_worker is not supported by downstream "
                           "evaluation: use --distribution=mirrored (this machine's devices)")
    if watch.watch and config.checkpoint:
        raise NorbertError("--checkpoint and --watch both name the model: give --watch alone "
                           "to follow a run, or --checkpoint alone")
    if not watch.watch and not config.output_dir:
        raise NorbertError("--output_dir is required (where the results go), unless --watch")
    bert_config = BertConfig.from_json_file(config.bert_config_file, flag="--bert_config_file")
    task = prepare_task(config, finetune_settings, options, bert_config)
    if watch.watch:
        from norbert.downstream.watch import watch_run

        return watch_run(watch, task.name, lambda checkpoint: evaluate_model(
            task, bert_config, checkpoint, finetune_settings, _files(config), distribution))
    checkpoint = _checkpoint(config.checkpoint)
    fileio.check_writable_dir(config.output_dir, "--output_dir")
    results = evaluate_model(task, bert_config, checkpoint, finetune_settings, _files(config),
                             distribution)
    write_results(results, config.output_dir)
    write_events(config.output_dir, results, 0)
    write_curves(config.output_dir, results)
    logging.info("%s", results.summary())
    return results


def _checkpoint(path: Optional[str]) -> Optional[str]:
    """The checkpoint prefix of ``--checkpoint`` (a folder: its newest), or None."""
    if not path:
        return None
    from norbert.model import checkpoints  # TensorFlow

    return checkpoints.resolve(path, flag="--checkpoint")
