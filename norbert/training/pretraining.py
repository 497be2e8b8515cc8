"""Pretraining end to end: a run plan, decided once, then the engine it names.

``run_pretraining`` is what ``scripts/run_pretraining.py`` calls, and what a notebook calls.
``make_plan`` takes every decision before a graph exists (and checks the flags and files before
TensorFlow is imported), so that a wrong flag costs a second, not a TPU-hour: the engine (the
loop on one device, mirrored or multi-worker replicas, or TPUEstimator), this worker's place and
whether it is the chief, where the variables start from (``norbert.training.start``: the
checkpoint folder scanned once), the records checked against the flags and the model (each
file's sidecar read once, ``norbert.training.run_inputs``), and whether the training data goes
on from the resumed checkpoint's saved position or starts a stream, with which seed
(``norbert.training.data_position``). The ``RunPlan`` is logged as one block and handed to the
engine (``norbert.training.engines``).

Only then is ``--output_dir`` created (``mkdir -p``, as Google's script does), and a training
run takes its lock (``run_lock.exclusive_folder``): a second run into the same folder stops at
once. A run that fails before it saved a checkpoint removes the folders it created, so that bad
input leaves nothing behind. SIGTERM and Ctrl-C are recorded for the whole run
(``norbert.training.stop``): before the loop they end the run through the same path.
"""

import contextlib
import dataclasses
import hashlib
import os
import random
import shutil
import warnings
from typing import Dict, List, Optional, Tuple

from absl import logging

from norbert import fileio
from norbert.data import sidecar
from norbert.data.features import MLM, MLM_NSP
from norbert.errors import NorbertError
from norbert.model import objective_record
from norbert.model.bert_config import BertConfig
from norbert.model.precision_config import FP16, PrecisionConfig
from norbert.settings import keyword_errors, make_configs
from norbert.tokenization import vocab as vocablib
from norbert.training import distribution as distribution_lib
from norbert.training import data_position, record_checks, run_lock
from norbert.training import length_buckets as buckets_lib
from norbert.training.config import (TPU_ESTIMATOR, OptimizerConfig, PretrainingConfig,
                                     TpuConfig)
from norbert.training.data_position import Position
from norbert.training.distribution import DistributionConfig
from norbert.training.mixing import MixingConfig
from norbert.training.run_inputs import (
    Inputs, RecordShape, bucketed, evaluation_inputs, reseeded, sources_of, training_inputs,
)
from norbert.training.spec import RunConfig
from norbert.training.start import Start, find_start
from norbert.training.stop import StopSignals


class TrainingWarning(UserWarning):
    """A setting that experience says is probably a mistake."""


def _warn(message: str) -> None:
    warnings.warn(message, TrainingWarning, stacklevel=3)


def check_records_fit_model(record_files, init_checkpoint: str, sidecars=None) -> None:
    """Warns when the records were built with another vocab (or casing) than the model beside
    ``init_checkpoint`` has: its folder's vocab.txt, as Google's and import_hf's folders hold.

    The records' sidecar names the vocab and its hash, and the casing; records without one, or
    a checkpoint without a vocab.txt beside it, are not judged.
    """
    model_vocab = os.path.join(os.path.dirname(init_checkpoint), "vocab.txt")
    if not fileio.exists(model_vocab):
        return
    vocab_bytes = fileio.read_bytes(model_vocab, what="vocab file")
    digest = hashlib.sha256(vocab_bytes).hexdigest()
    for path in record_files:
        meta = record_checks.sidecar_of(path, sidecars)
        if meta is None:
            continue
        settings = sidecar.settings_of(meta)
        if settings.get("vocab_sha256") not in (None, digest):
            _warn("%s was built with the vocab %s, not with %s beside --init_checkpoint: the "
                  "ids mean other tokens to this model; rebuild the records with the model's "
                  "vocab.txt" % (path, settings.get("vocab_file", "(unnamed)"), model_vocab))
            return
        lower = settings.get("do_lower_case")
        if lower is not None:
            strip = settings.get("strip_accents")
            reason = vocablib.tokenizer_mismatch(vocablib.parse_vocab(vocab_bytes, model_vocab),
                                                 lower, strip)
            if reason:
                _warn("%s was built with do_lower_case=%s%s, which does not fit the model's "
                      "vocab %s (%s): rebuild the records with the model's casing "
                      "(--do_lower_case, --strip_accents)"
                      % (path, lower, "" if strip is None else ", strip_accents=%s" % strip,
                         model_vocab, reason.split(":")[0]))
        return  # one file's sidecar speaks for the set


def guidance(config: PretrainingConfig, optimizer: OptimizerConfig) -> None:
    """Warnings for settings that users' experience says are usually wrong."""
    lr = optimizer.learning_rate
    if config.do_train and config.init_checkpoint and not config.init_optimizer_state \
            and lr > 1e-4:  # a new phase of one training keeps that training's rate
        _warn(
            "--learning_rate=%g is high for continuing from --init_checkpoint: it can undo what "
            "the model knows; 2e-5 is the usual choice" % lr
        )
    if config.do_train and not config.init_checkpoint and lr < 1e-5:
        _warn("--learning_rate=%g is very low for training from scratch (1e-4 is usual)" % lr)
    if config.do_train and optimizer.num_train_steps < optimizer.num_warmup_steps:
        _warn(
            "--num_train_steps=%d is smaller than --num_warmup_steps=%d: the learning rate "
            "never reaches its peak" % (optimizer.num_train_steps, optimizer.num_warmup_steps)
        )
    evaluates_training_data = (config.eval_input_file or config.input_file) == config.input_file
    if config.do_eval and config.do_train and evaluates_training_data:
        _warn(
            "evaluating on the training data: the numbers measure memorisation; pass held-out "
            "records with --eval_input_file"
        )


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every config of a run: what the flags of ``scripts/run_pretraining.py`` set."""

    config: PretrainingConfig
    optimizer: OptimizerConfig
    run: RunConfig
    tpu: TpuConfig
    precision: PrecisionConfig
    distribution: DistributionConfig
    mixing: MixingConfig


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a run decided before any graph, once: logged as one block, handed to the engine."""

    # LOOP or TPU_ESTIMATOR.
    engine: str
    bert_config: BertConfig
    # Where the variables come from: the run's own checkpoint, or --init_checkpoint.
    start: Start
    # Replicas that share each step's batch, over every worker (1: one device).
    replicas: int
    # The training records (None without --do_train) and the held-out ones (without --do_eval).
    train: Optional[Inputs]
    evaluation: Optional[Inputs]
    # Multi-worker: this process's place in the cluster; None on one machine.
    cluster: Optional[distribution_lib.Cluster] = dataclasses.field(default=None, compare=False)
    # Training: the data stream, and whether its saved position is continued.
    position: Optional[Position] = None
    # The length buckets' boundaries (() or one: every batch at --max_seq_length).
    length_buckets: Tuple[int, ...] = ()
    # What the records were built for (their sidecars): "mlm_nsp" or "mlm" (masked LM only).
    objective: str = MLM_NSP

    @property
    def chief(self) -> bool:
        """Worker 0 alone takes the lock, saves, evaluates and writes results."""
        return self.cluster is None or self.cluster.is_chief

    def lines(self, settings: Settings) -> List[str]:
        """The block logged at the start of the run: one line per decision."""
        lines = ["engine: %s" % self._engine_line(settings),
                 "start: %s" % self.start.describe()]
        if self.train is not None:
            opt, run = settings.optimizer, settings.run
            lines.append("train: to step %d, batches of %d%s"
                         % (opt.num_train_steps, run.train_batch_size,
                            " over %d replicas" % self.replicas if self.replicas > 1 else ""))
            if self.position is not None:
                lines.append(self.position.note)
            if settings.tpu.use_tpu and self.start.resume and self.bert_config.has_dropout:
                # Said at every resume on a TPU: what its exactness rests on, checked how.
                lines.append("dropout: masks keyed by the batch numbers the input pipeline "
                             "carries (restored with the data position); checked with "
                             "TPUEstimator on the CPU, not on TPU hardware")
            lines += ["%s: %s" % (self.train.flag, note) for note in self.train.notes]
        if self.train is not None or self.evaluation is not None:
            # TPUEstimator's branches keep every prediction (one static shape per bucket).
            line = "length buckets: %s" % buckets_lib.describe(
                self.length_buckets,
                0 if self.engine == TPU_ESTIMATOR else settings.config.max_predictions_per_seq)
            if self.engine == TPU_ESTIMATOR:
                line += (" (TPUEstimator: batches fed at --max_seq_length, the model built once "
                         "per bucket, each compiled once)" if len(self.length_buckets) > 1 else
                         " (TPUEstimator: one fixed shape unless --length_buckets names a list)")
            lines.append(line)
        if self.evaluation is not None:
            lines.append("evaluate: %d batches of %d from %s%s"
                         % (settings.config.max_eval_steps, settings.run.eval_batch_size,
                            self.evaluation.flag, "" if self.chief else " (by the chief)"))
            lines += ["%s: %s" % (self.evaluation.flag, note) for note in self.evaluation.notes]
        if self.train is not None or self.evaluation is not None:
            lines.append("objective: %s (the records' sidecars)" % (
                "masked LM alone; the next-sentence head kept as it is" if self.objective == MLM
                else "masked LM and next sentence"))
        return lines

    def _engine_line(self, settings: Settings) -> str:
        if self.engine == TPU_ESTIMATOR:
            return "TPUEstimator on %s" % ("the TPU" if settings.tpu.use_tpu else "the CPU")
        if self.cluster is not None:
            return "loop, multi_worker: worker %d of %d%s, %d replicas in all" % (
                self.cluster.task_id, self.cluster.num_workers,
                " (the chief: it saves and evaluates)" if self.chief else "", self.replicas)
        if settings.distribution.enabled:
            return "loop, %s over %d replicas" % (settings.distribution.distribution,
                                                  self.replicas)
        return "loop on one device"


@keyword_errors
def run_pretraining(
    config: Optional[PretrainingConfig] = None,
    optimizer: Optional[OptimizerConfig] = None,
    run: Optional[RunConfig] = None,
    tpu: Optional[TpuConfig] = None,
    precision: Optional[PrecisionConfig] = None,
    distribution: Optional[DistributionConfig] = None,
    mixing: Optional[MixingConfig] = None,
    **settings,
) -> Dict[str, object]:
    """Trains and/or evaluates; returns the eval results (also written to eval_results.txt).

    Takes the config objects, or any of their fields as keywords, named as the flags of
    ``scripts/run_pretraining.py``: ``run_pretraining(input_file=..., bert_config_file=...,
    output_dir=..., do_train=True, learning_rate=1e-4, num_train_steps=1000)``.

    SIGTERM or Ctrl-C during training saves a checkpoint, then raises ``KeyboardInterrupt``
    (its argument the signal's name) without evaluating: the run is not finished. Progress
    (step, loss, steps/s, ETA) is logged at INFO level, shown even where nothing configured
    absl's logging (a notebook).
    """
    configs = make_configs(
        "run_pretraining",
        dict(config=config, optimizer=optimizer, run=run, tpu=tpu, precision=precision,
             distribution=distribution, mixing=mixing),
        settings, [PretrainingConfig, OptimizerConfig, RunConfig, TpuConfig, PrecisionConfig,
                   DistributionConfig, MixingConfig])
    with _progress_shown(), StopSignals() as stop:
        return _run(Settings(*configs), stop)


@contextlib.contextmanager
def _progress_shown():
    """absl's INFO lines while the block runs, where the verbosity hides them (absl's default
    before flags are parsed); afterwards absl's verbosity and its logger's level are as
    before (setting the verbosity also sets the level, which may have been unset)."""
    before = logging.get_verbosity()
    if before >= logging.INFO:
        yield
        return
    absl_logger = logging.get_absl_logger()
    level = absl_logger.level
    logging.set_verbosity(logging.INFO)
    try:
        yield
    finally:
        logging.set_verbosity(before)
        absl_logger.setLevel(level)


def _run(settings: Settings, stop: StopSignals) -> Dict[str, object]:
    """The plan, then the engine; folders created only once every input is checked."""
    plan = make_plan(settings)
    logging.info("run plan:")
    for line in plan.lines(settings):
        logging.info("  %s", line)
    stop.check()
    if plan.position is not None and settings.run.seed is None:
        # The seed drawn for the data (or kept with its position) is the run's seed for all:
        # initialisers and dropout too, as --seed would be.
        settings = dataclasses.replace(settings, run=dataclasses.replace(
            settings.run, seed=plan.position.stream.run_seed))
    # TensorFlow is imported only now: the plan checked the flags and files without it (up to
    # the input pipeline's first graph object), so that a wrong one is answered at once rather
    # than after TensorFlow's import (seconds).
    from norbert.training import engines
    from norbert.training.model_fn import ModelFnConfig, build_model_fn

    model_fn = build_model_fn(ModelFnConfig(
        bert_config=plan.bert_config, optimizer=settings.optimizer,
        use_tpu=settings.tpu.use_tpu, use_one_hot_embeddings=settings.tpu.use_tpu,
        loss_scale=settings.precision.loss_scaling(), precision=settings.precision.precision,
        # --seed, or the one drawn when the run began and kept with its data position.
        dropout_seed=plan.position.stream.run_seed if plan.position is not None else None,
        objective=plan.objective, length_buckets=plan.length_buckets))
    engine = engines.on_estimator if plan.engine == TPU_ESTIMATOR else engines.on_loop
    output_dir = settings.run.output_dir
    # The output folder first (as Google's script does), so that an eval-only run into a new
    # folder can write its results; a training run takes its lock.
    created = fileio.make_folders(output_dir)
    try:
        with _one_training_run(output_dir, plan.train is not None and plan.chief):
            if plan.train is not None and plan.chief:  # for the export's model card
                objective_record.note(output_dir, plan.objective)
            result = engine(plan, settings, model_fn, stop)
    except BaseException:
        if plan.chief:  # the other workers leave the shared folder to the chief
            _remove_if_nothing_saved(output_dir, created)
        raise
    for key in sorted(result):
        logging.info("  %s = %s", key, result[key])
    return result


def make_plan(settings: Settings) -> RunPlan:
    """Every decision and check of a run, before any graph or folder: ``NorbertError`` for
    settings that cannot work, so that a wrong flag costs a second, not a TPU-hour."""
    config, run = settings.config, settings.run
    if not config.do_train and not config.do_eval:
        raise NorbertError("nothing to do: pass --do_train, --do_eval or both")
    fileio.check_writable_dir(run.output_dir, "--output_dir")
    bert_config = _checked_bert_config(settings)
    engine = _engine(settings)
    if config.do_train:
        settings.tpu.check_batch_divides(run.train_batch_size, "train_batch_size")
    if config.do_eval:
        settings.tpu.check_batch_divides(run.eval_batch_size, "eval_batch_size")
    cluster = None
    if settings.distribution.distribution == distribution_lib.MULTI_WORKER:
        cluster = distribution_lib.Cluster(settings.distribution)
    replicas = _replicas(settings, cluster)
    start = find_start(run.output_dir, config.init_checkpoint, config.init_optimizer_state,
                       config.keep_global_step)
    if start.resume and config.init_checkpoint and config.do_train:
        logging.info("resuming from %s: --init_checkpoint=%s is not used (the run's own "
                     "checkpoint in --output_dir wins)", start.resume[0], config.init_checkpoint)
    if config.do_eval and not config.do_train and not start.resume \
            and not start.init_checkpoint:
        raise NorbertError(
            "--do_eval: no checkpoint to evaluate in --output_dir=%s; train first (--do_train) "
            "or pass --init_checkpoint" % run.output_dir)
    guidance(config, settings.optimizer)
    boundaries = _length_buckets(config, engine)
    train, evaluation, objective = _inputs(settings, bert_config, start)
    tags = engine == TPU_ESTIMATOR  # fixed shapes there: batches tagged, not cut
    if evaluation is not None:
        evaluation = bucketed(evaluation, boundaries, tags)
    position = None
    if train is not None:
        train = bucketed(train, boundaries, tags)
        position = _data_position(settings, start, train, cluster, engine)
        train = reseeded(train, position.stream.stream_seed)
    return RunPlan(engine, bert_config, start, replicas, train, evaluation, cluster, position,
                   boundaries, objective)


def _length_buckets(config: PretrainingConfig, engine: str) -> Tuple[int, ...]:
    """--length_buckets' boundaries on ``engine``. TPUEstimator keeps its one fixed shape with
    ``auto``, and compiles one branch per bucket when the user names them (each bucket's
    program is compiled and kept on the TPU: a list is a choice of what to compile)."""
    boundaries = buckets_lib.parse(config.length_buckets, config.max_seq_length)
    if engine == TPU_ESTIMATOR and config.length_buckets.strip().lower() == buckets_lib.AUTO:
        return ()
    return boundaries


def _data_position(settings: Settings, start: Start, train: Inputs, cluster,
                   engine: str) -> Position:
    """The training data's stream: continued from the resumed checkpoint's position, or begun
    (with a seed drawn now when --seed is unset), and the line saying which and why."""
    run = settings.run
    workers = cluster.num_workers if cluster is not None else 1
    # TPUEstimator's input numbers its batches for dropout (tpu.numbered): part of the stream;
    # so is the batch each call of its input yields.
    estimator = engine == TPU_ESTIMATOR
    setup = data_position.setup_of(
        train.input_fn.config, run.train_batch_size // workers, workers, numbered=estimator,
        core_batch_size=settings.tpu.input_batch_size(run.train_batch_size) if estimator
        else None)
    saved = None
    if start.resume:
        saved = data_position.read_saved(run.output_dir, start.resume[0], workers)
    return data_position.decide(setup, run.seed, saved,
                                cluster.task_id if cluster is not None else 0,
                                run.resume_data_position, random.SystemRandom())


def _inputs(settings: Settings, bert_config: BertConfig, start: Start):
    """(training inputs, evaluation inputs, the records' objective), the inputs None when not
    asked for; every record file's sidecar read once for all three."""
    config, run = settings.config, settings.run
    shape = RecordShape(config.max_seq_length, config.max_predictions_per_seq,
                        (bert_config.vocab_size, config.bert_config_file))
    train_sources = sources_of(config.input_file, "--input_file") if config.do_train else None
    eval_sources = None
    if config.do_eval:
        eval_sources = sources_of(config.eval_input_file or config.input_file,
                                  "--eval_input_file" if config.eval_input_file
                                  else "--input_file")
    named = [s for s in (train_sources, eval_sources) if s is not None]
    files = list(dict.fromkeys(path for s in named for path in s.files))
    sidecars = record_checks.read_sidecars(files)
    objective = record_checks.objective_of(files, sidecars)  # one for training and evaluation
    train = evaluation = None
    if train_sources is not None:
        train = training_inputs(train_sources, shape, run.seed, settings.mixing, sidecars)
        if start.init_checkpoint:
            # Groups may come from builds of their own: each one's sidecar speaks for it.
            for files in train.files_by_source():
                check_records_fit_model(files, start.init_checkpoint, sidecars)
    if eval_sources is not None:
        evaluation = evaluation_inputs(eval_sources, shape, run.seed, run.eval_batch_size,
                                       sidecars)
    return train, evaluation, objective


def _checked_bert_config(settings: Settings) -> BertConfig:
    config = settings.config
    if settings.tpu.use_tpu and settings.precision.precision == FP16:
        raise NorbertError("--precision=fp16 is for GPUs; TPUs compute in bfloat16: use "
                           "--precision=bf16 with --use_tpu")
    bert_config = BertConfig.from_json_file(config.bert_config_file, flag="--bert_config_file")
    if config.max_seq_length > bert_config.max_position_embeddings:
        raise NorbertError(
            "--max_seq_length=%d is longer than the model's max_position_embeddings=%d (%s): "
            "use a shorter --max_seq_length"
            % (config.max_seq_length, bert_config.max_position_embeddings, config.bert_config_file)
        )
    return bert_config


def _engine(settings: Settings) -> str:
    engine = TPU_ESTIMATOR if settings.tpu.use_tpu else settings.config.engine
    if settings.distribution.enabled and engine == TPU_ESTIMATOR:
        raise NorbertError("--distribution=%s is for norbert's loop on GPUs and CPUs; a TPU "
                           "(a pod too) is named with --tpu_name and runs TPUEstimator"
                           % settings.distribution.distribution)
    return engine


def _replicas(settings: Settings, cluster) -> int:
    """Replicas sharing each step's batch over every worker; the batch must divide among them."""
    if not settings.distribution.enabled:
        return 1
    replicas = len(distribution_lib.local_devices(settings.distribution)) * (
        cluster.num_workers if cluster else 1)
    if settings.config.do_train:
        distribution_lib.check_batch_divides(settings.run.train_batch_size, replicas)
    return replicas


def _one_training_run(output_dir: str, do_train: bool):
    """The output folder's lock while a run trains into it: a second run stops at once.

    An eval-only run takes none: evaluating beside a training run is how one watches it.
    """
    return run_lock.exclusive_folder(output_dir) if do_train else contextlib.nullcontext()


def _remove_if_nothing_saved(output_dir: str, created) -> None:
    """After a failed run: the folders it created go again, unless a checkpoint is in them.

    Whatever is in a folder this run created is this run's (events, a lock): without a
    checkpoint it is worth nothing, and a user's next try should find the path as it was.
    """
    if not created:
        return
    folder = created[-1]  # output_dir itself; the rest are folders above it
    try:
        names = os.listdir(folder)
    except OSError:
        return
    if any(n == "checkpoint" or n.endswith(".index") for n in names):
        return
    shutil.rmtree(folder, ignore_errors=True)
    fileio.remove_folders(created[:-1])
