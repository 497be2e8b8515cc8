"""Pretraining end to end: checks, then training and evaluation on the chosen engine.

``run_pretraining`` is what ``scripts/run_pretraining.py`` calls, and what a notebook calls.
Everything that can be checked before a graph exists is checked first, so that a wrong flag
costs a second, not a TPU-hour: the config against the sequence length, the records against
the flags (and their ends: a file cut short), the init checkpoint's existence and wholeness.

Named groups of record files (``--input_file=nb=data/nb-*,en=data/en-*``) are mixed while
training with the shares ``MixingConfig`` makes (``norbert.training.mixing``); named groups in
``--eval_input_file`` add each group's metrics (``masked_lm_accuracy/nb``) to the overall ones.

Only then is ``--output_dir`` created (``mkdir -p``, as Google's script does), and a training
run takes its lock (``run_lock.exclusive_folder``): a second run into the same folder stops at
once. A run that fails before it saved a checkpoint removes the folders it created, so that bad
input leaves nothing behind; SIGTERM outside the training loop counts as Ctrl-C for that.
"""

import contextlib
import dataclasses
import hashlib
import os
import shutil
import warnings
from typing import Dict, Optional

import tensorflow.compat.v1 as tf
from absl import logging

from norbert import fileio, run_lock
from norbert.data import defaults
from norbert.errors import NorbertError
from norbert.model import checkpoints
from norbert.model.bert_config import BertConfig
from norbert.model.precision import FP16, PrecisionConfig
from norbert.settings import make_configs
from norbert.tokenization import vocab as vocablib
from norbert.training import distribution as distribution_lib
from norbert.training import input_pipeline, loop
from norbert.training.distribution import DistributionConfig
from norbert.training.mixing import MixingConfig, describe, mix, parse_groups
from norbert.training.model_fn import ModelFnConfig, build_model_fn
from norbert.training.optimization import OptimizerConfig
from norbert.training.spec import RunConfig
from norbert.training.tpu import TpuConfig, make_estimator

LOOP, TPU_ESTIMATOR = "loop", "tpu_estimator"
ENGINES = (LOOP, TPU_ESTIMATOR)


class TrainingWarning(UserWarning):
    """A setting that experience says is probably a mistake."""


@dataclasses.dataclass(frozen=True)
class PretrainingConfig:
    """What a run trains and evaluates on, and with which engine."""

    # TFRecord files to train on (and evaluate on without eval_input_file): comma-separated
    # paths or globs, as create_pretraining_data.py writes them; or named groups to mix,
    # name=glob,... (nb=data/nb-*,en=data/en-*), with shares from --sampling_exponent or
    # --sampling_weights.
    input_file: str
    # The bert_config.json of the model to train (Google's keys).
    bert_config_file: str
    # Tokens per record; must match the records.
    max_seq_length: int = defaults.MAX_SEQ_LENGTH
    # Masked-LM predictions per record; must match the records.
    max_predictions_per_seq: int = defaults.MAX_PREDICTIONS_PER_SEQ
    # Checkpoint (prefix or folder) to start from, for example Google's bert_model.ckpt; a
    # checkpoint already in output_dir takes precedence, so that a rerun resumes.
    init_checkpoint: Optional[str] = None
    # With init_checkpoint from an earlier phase of the same training (sequence length 512
    # after 128, another batch size): take its optimizer moments as well as its weights (the
    # same optimizer's). Warm-up and decay start again from step 0 unless keep_global_step.
    init_optimizer_state: bool = False
    # With init_checkpoint: go on counting from its global_step, so that the schedule continues
    # where it stopped; num_train_steps is then the total of all phases.
    keep_global_step: bool = False
    # Train for num_train_steps updates (resuming from output_dir's latest checkpoint).
    do_train: bool = False
    # Evaluate the latest checkpoint; the numbers go to output_dir/eval_results.txt.
    do_eval: bool = False
    # Held-out records to evaluate on; unset: input_file. Named groups (name=glob,...) add
    # each group's metrics (masked_lm_accuracy/nb) to the overall ones.
    eval_input_file: Optional[str] = None
    # Batches to evaluate.
    max_eval_steps: int = 100
    # Without use_tpu: "loop" (norbert's own, CPU/GPU) or "tpu_estimator" (TPUEstimator on
    # the CPU). use_tpu always runs TPUEstimator.
    engine: str = dataclasses.field(default=LOOP, metadata={"choices": ENGINES})

    def __post_init__(self) -> None:
        """Raises ``NorbertError`` naming the flag for settings that cannot work."""
        for flag in ("input_file", "bert_config_file"):
            if not getattr(self, flag):
                raise NorbertError("--%s is required" % flag)
        if self.engine not in ENGINES:
            raise NorbertError("--engine=%s is not known: use one of %s"
                               % (self.engine, ", ".join(ENGINES)))
        for flag in ("init_optimizer_state", "keep_global_step"):
            if getattr(self, flag) and not self.init_checkpoint:
                raise NorbertError("--%s needs --init_checkpoint: the earlier phase's run "
                                   "folder or checkpoint" % flag)
        if self.max_eval_steps < 1:
            raise NorbertError("--max_eval_steps=%d must be at least 1" % self.max_eval_steps)
        parse_groups(self.input_file, "--input_file")  # named groups well formed, if any
        if self.eval_input_file:
            parse_groups(self.eval_input_file, "--eval_input_file")


def _warn(message: str) -> None:
    warnings.warn(message, TrainingWarning, stacklevel=3)


def check_records_fit_model(record_files, init_checkpoint: str, sidecars=None) -> None:
    """Warns when the records were built with another vocab (or casing) than the model beside
    ``init_checkpoint`` has: its folder's vocab.txt, as Google's and import_hf's folders hold.

    The records' sidecar names the vocab and its hash, and the casing; records without one, or
    a checkpoint without a vocab.txt beside it, are not judged.
    """
    model_vocab = os.path.join(os.path.dirname(init_checkpoint), "vocab.txt")
    if not tf.io.gfile.exists(model_vocab):
        return
    vocab_bytes = fileio.read_bytes(model_vocab, what="vocab file")
    digest = hashlib.sha256(vocab_bytes).hexdigest()
    for path in record_files:
        meta = input_pipeline.sidecar_of(path, sidecars)
        if meta is None:
            continue
        settings = meta.get("settings", meta)
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
    with _progress_shown():
        return _run_pretraining(config, optimizer, run, tpu, precision, distribution, mixing,
                                settings)


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


def _run_pretraining(config, optimizer, run, tpu, precision, distribution, mixing,
                     settings) -> Dict[str, object]:
    config, optimizer, run, tpu, precision, distribution, mixing = make_configs(
        "run_pretraining",
        dict(config=config, optimizer=optimizer, run=run, tpu=tpu, precision=precision,
             distribution=distribution, mixing=mixing),
        settings, [PretrainingConfig, OptimizerConfig, RunConfig, TpuConfig, PrecisionConfig,
                   DistributionConfig, MixingConfig])
    if not config.do_train and not config.do_eval:
        raise NorbertError("nothing to do: pass --do_train, --do_eval or both")
    fileio.check_writable_dir(run.output_dir, "--output_dir")
    if tpu.use_tpu and precision.precision == FP16:
        raise NorbertError("--precision=fp16 is for GPUs; TPUs compute in bfloat16: use "
                           "--precision=bf16 with --use_tpu")
    bert_config = BertConfig.from_json_file(config.bert_config_file)
    if config.max_seq_length > bert_config.max_position_embeddings:
        raise NorbertError(
            "--max_seq_length=%d is longer than the model's max_position_embeddings=%d (%s): "
            "use a shorter --max_seq_length"
            % (config.max_seq_length, bert_config.max_position_embeddings, config.bert_config_file)
        )
    engine = TPU_ESTIMATOR if tpu.use_tpu else config.engine
    if distribution.enabled and engine == TPU_ESTIMATOR:
        raise NorbertError("--distribution=%s is for norbert's loop on GPUs and CPUs; a TPU "
                           "(a pod too) is named with --tpu_name and runs TPUEstimator"
                           % distribution.distribution)
    # Multi-worker: this process's place in the cluster (from TF_CONFIG or SLURM), before any
    # graph. Worker 0 is the chief: it alone takes the lock, saves, evaluates and writes results.
    cluster = None
    if distribution.distribution == distribution_lib.MULTI_WORKER:
        cluster = distribution_lib.Cluster(distribution)
    chief = cluster is None or cluster.is_chief
    if distribution.enabled and config.do_train:
        replicas = len(distribution_lib.local_devices(distribution))
        loop.check_batch_divides(run.train_batch_size,
                                 replicas * (cluster.num_workers if cluster else 1))
    # The newest intact checkpoint (damaged newer ones are skipped with a warning).
    resume_from = loop.latest_checkpoint(run.output_dir)
    init_checkpoint = None
    if config.init_checkpoint and resume_from is None:
        init_checkpoint = checkpoints.resolve(config.init_checkpoint)
    elif config.init_checkpoint and config.do_train:
        logging.info("resuming from %s: --init_checkpoint=%s is not used (the run's own "
                     "checkpoint in --output_dir wins)", resume_from, config.init_checkpoint)
    if config.do_eval and not config.do_train and resume_from is None and init_checkpoint is None:
        raise NorbertError(
            "--do_eval: no checkpoint to evaluate in --output_dir=%s; train first (--do_train) "
            "or pass --init_checkpoint" % run.output_dir
        )
    guidance(config, optimizer)

    sidecars = {}  # every record file's sidecar, read once (input_pipeline.read_sidecars)

    def input_fn_for(spec: str, is_training: bool, flag: str):
        """The input_fn of ``spec``'s records, and [(name, input_fn)] of its named groups
        (training: mixed by their shares; evaluation: each group alone, for its metrics)."""
        named = input_pipeline.record_groups(spec, flag)
        if named is None:
            if is_training and mixing.given:
                raise NorbertError(
                    "--%s needs named groups in --input_file to mix: name=glob,... (e.g. "
                    "nb=data/nb-*,en=data/en-*)" % ("sampling_weights" if mixing.sampling_weights
                                                    is not None else "sampling_exponent"))
            files = input_pipeline.record_files(spec, flag)
        else:
            files = [path for _, group_files in named for path in group_files]
        input_config = input_pipeline.InputConfig(
            input_files=files,
            max_seq_length=config.max_seq_length,
            max_predictions_per_seq=config.max_predictions_per_seq,
            is_training=is_training,
            seed=run.seed,
        )
        metas = input_pipeline.read_sidecars(files)
        sidecars.update(metas)
        input_pipeline.check_data(input_config, flag,
                                  (bert_config.vocab_size, config.bert_config_file), metas)
        masking = input_pipeline.dynamic_masking_of(files, config.max_predictions_per_seq, flag,
                                                    metas)
        if masking is not None:
            logging.info("%s: masks drawn as records are read (masked_lm_prob %g%s)", flag,
                         masking.masked_lm_prob, ", whole words" if masking.whole_word else "")
        pairing = input_pipeline.dynamic_pairing_of(files, flag, metas)
        if pairing is not None:
            logging.info("%s: sentence pairs made of chunks as records are read", flag)
        input_config = dataclasses.replace(input_config, masking=masking, pairing=pairing)
        if named is None:
            return input_pipeline.make_input_fn(input_config), []
        sizes = [sum(input_pipeline.records_in(path, flag, metas) for path in group_files)
                 for _, group_files in named]
        if is_training:
            groups = mix(named, sizes, mixing, flag)
            for line in describe(groups, mixing):
                logging.info("%s: %s", flag, line)
            return input_pipeline.make_input_fn(
                dataclasses.replace(input_config, groups=groups)), []
        # Evaluation: one ordered pass over all, then each group alone for its own metrics.
        per_group = []
        for (name, group_files), size in zip(named, sizes):
            logging.info("%s: group %s: %d files, %d records", flag, name, len(group_files),
                         size)
            if size < run.eval_batch_size:
                logging.warning("%s: group %s has %d records, fewer than one batch "
                                "(--eval_batch_size=%d): no metrics of its own", flag, name,
                                size, run.eval_batch_size)
                continue
            per_group.append((name, input_pipeline.make_input_fn(
                dataclasses.replace(input_config, input_files=group_files))))
        return input_pipeline.make_input_fn(input_config), per_group

    train_input_fn = eval_input_fn = None
    eval_groups = []
    if config.do_train:
        train_input_fn, _ = input_fn_for(config.input_file, True, "--input_file")
        if init_checkpoint:
            # Groups may come from builds of their own: each one's sidecar speaks for it.
            groups = train_input_fn.config.groups
            for files in ([g.files for g in groups] if groups
                          else [train_input_fn.config.input_files]):
                check_records_fit_model(files, init_checkpoint, sidecars)
    if config.do_eval:
        spec = config.eval_input_file or config.input_file
        flag = "--eval_input_file" if config.eval_input_file else "--input_file"
        eval_input_fn, eval_groups = input_fn_for(spec, False, flag)

    model_fn = build_model_fn(
        ModelFnConfig(
            bert_config=bert_config,
            optimizer=optimizer,
            use_tpu=tpu.use_tpu,
            use_one_hot_embeddings=tpu.use_tpu,
            loss_scale=precision.loss_scaling(),
            precision=precision.precision,
        )
    )
    params = {"init_checkpoint": init_checkpoint,
              "init_optimizer_state": config.init_optimizer_state,
              "keep_global_step": config.keep_global_step}

    # Every input checked: only now is anything created, the output folder first (as Google's
    # script does), so that an eval-only run into a new folder can write its results.
    created = fileio.make_folders(run.output_dir)
    try:
        with loop.interrupt_on_stop_signals(), \
                _one_training_run(run.output_dir, config.do_train and chief):
            result = _run(engine, config, optimizer, run, tpu, (distribution, cluster),
                          model_fn, params, train_input_fn, (eval_input_fn, eval_groups),
                          init_checkpoint)
    except BaseException:
        if chief:  # the other workers leave the shared folder to the chief
            _remove_if_nothing_saved(run.output_dir, created)
        raise
    for key in sorted(result):
        logging.info("  %s = %s", key, result[key])
    return result


def _run(engine, config, optimizer, run, tpu, placement, model_fn, params, train_input_fn,
         evaluation, init_checkpoint) -> Dict[str, object]:
    """Training and/or evaluation on ``engine``, once everything is checked and in place.

    ``placement`` is the distribution config and this worker's cluster (None on one machine);
    ``evaluation`` the eval input_fn and [(name, input_fn)] of its named groups, whose metrics
    are added as ``<metric>/<name>``.
    """
    distribution, cluster = placement
    eval_input_fn, eval_groups = evaluation
    result: Dict[str, object] = {}
    if engine == TPU_ESTIMATOR:
        estimator = make_estimator(model_fn, run, tpu, params)
        try:
            if config.do_train:
                input_fn = train_input_fn
                estimator.train(input_fn=train_input_fn, max_steps=optimizer.num_train_steps)
            if config.do_eval:
                input_fn = eval_input_fn
                result = estimator.evaluate(input_fn=eval_input_fn, steps=config.max_eval_steps)
                for name, input_fn in eval_groups:
                    _add_group(result, name, estimator.evaluate(
                        input_fn=input_fn, steps=config.max_eval_steps, name=name))
        except tf.errors.DataLossError as e:
            raise NorbertError("%s; replace or rebuild that file and run again"
                               % loop.describe_data_loss(e, input_fn, "input")) from None
    else:
        if config.do_train:
            trained = loop.train(model_fn, train_input_fn, params, run,
                                 optimizer.num_train_steps, distribution, cluster)
            if trained.interrupted:
                # Saved, but not finished: no evaluation, and the caller (a job scheduler
                # through the exit status) must see that the run has more to do.
                logging.warning("stopped at step %d of %d (%s saved): run the same command "
                                "again to go on", trained.global_step,
                                optimizer.num_train_steps, trained.checkpoint)
                raise KeyboardInterrupt(trained.stopped_by)
        if config.do_eval and cluster is not None and not cluster.is_chief:
            logging.info("worker %d: training done; the chief evaluates", cluster.task_id)
            return result
        if config.do_eval:
            checkpoint = loop.latest_checkpoint(run.output_dir)
            for name, input_fn in [(None, eval_input_fn)] + list(eval_groups):
                found = loop.evaluate(
                    model_fn, input_fn, params, run, checkpoint or init_checkpoint,
                    config.max_eval_steps,
                    # An --init_checkpoint is evaluated as Google's script does: its trainable
                    # variables only, so global_step is 0 (the run's own checkpoints keep theirs).
                    restore_step=checkpoint is not None,
                )
                if name is None:
                    result = found
                else:
                    _add_group(result, name, found)
    if config.do_eval:
        loop.write_eval_results(os.path.join(run.output_dir, "eval_results.txt"), result)
    return result


def _add_group(result: Dict[str, object], name: str, found: Dict[str, object]) -> None:
    """One eval group's metrics into ``result``, as ``<metric>/<name>``."""
    result.update(("%s/%s" % (key, name), value) for key, value in found.items()
                  if key != "global_step")


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
