"""An estimator-style training and evaluation loop for CPU and GPU, on any TF from 1.15 on.

It runs the same ``model_fn(features, labels, mode, params)`` and ``input_fn(params)`` as
``TPUEstimator`` (``params["batch_size"]`` set by the caller's config), in a plain
``tf.compat.v1.Session``, so it also works where ``tf.estimator`` no longer exists (TF >= 2.16).

What it adds for long runs on preemptible machines:

* resume: the latest checkpoint in ``output_dir`` (variables, optimizer state and
  ``global_step``) always wins over ``--init_checkpoint``; one whose files were cut short or
  damaged is passed over, with a warning, for the newest intact one; the training data goes on
  from the position saved with it (``norbert.training.data_position``), when the caller
  passes the run's ``Position``;
* a checkpoint every ``save_checkpoints_steps`` updates, ``keep_checkpoint_max`` kept, and one
  more on SIGTERM or Ctrl-C before the loop returns;
* a NaN or Inf loss, or a damaged record in the data, stops the run with a clear error (the
  file and record named), leaving the last good checkpoint and saving nothing more;
* a log line with steps/s and ETA, and TensorBoard scalars.

``train`` builds the graph, restores, and hands the session to a ``_Trainer``, whose named
steps (run a step, check its loss, log, save, stop) make up the loop. Where the variables start
from is a ``Start`` (``norbert.training.start``), decided by the caller or found in
``output_dir``; stop signals are recorded by ``norbert.training.stop`` and acted on after a step.
"""

import collections
import contextlib
import dataclasses
import os
import time
import warnings
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow.compat.v1 as tf
from absl import logging

from norbert.errors import NorbertError
from norbert.model import checkpoints
from norbert.training import length_buckets, replicas
from norbert.training.data_position import Position, PositionSaver
from norbert.training.distribution import (MULTI_WORKER, Cluster, DistributionConfig,
                                           check_batch_divides, make_strategy)
from norbert.training.spec import EVAL, TRAIN, RunConfig
from norbert.training.start import Start, find_start, initialise
from norbert.training.stop import StopSignals


# The pretraining heads (and the pooler under the next-sentence head): what a published
# encoder's weights often lack, and evaluation can start afresh.
HEAD_SCOPES = ("cls/", "bert/pooler/")


class UntrainedHeadWarning(UserWarning):
    """Evaluation runs with heads the checkpoint lacks, freshly initialised."""


@dataclasses.dataclass
class TrainResult:
    global_step: int
    loss: float
    checkpoint: Optional[str]
    # "SIGTERM" or "SIGINT" when a stop signal ended the run (after saving; SIGTERM too when
    # another worker was told to stop), else None
    stopped_by: Optional[str] = None

    @property
    def interrupted(self) -> bool:
        return self.stopped_by is not None


def latest_checkpoint(output_dir: str) -> Optional[str]:
    """The newest intact checkpoint in ``output_dir`` (damaged newer ones skipped with a
    warning), or None; ``NorbertError`` when there are checkpoints but all are damaged."""
    return checkpoints.latest_intact(output_dir)


def describe_data_loss(error: Exception, input_fn: Callable, what: str) -> str:
    """What a ``DataLossError`` from the input pipeline means, naming the file if it can."""
    describe = getattr(input_fn, "describe_data_loss", None)
    found = describe(error.message) if describe is not None else None
    if found is None:
        found = "a record of the %s data is damaged (%s)" % (what, checkpoints.tf_message(error))
    return found


def session_config(config: RunConfig,
                   distribution: Optional[DistributionConfig] = None) -> tf.ConfigProto:
    """The loop's session options; with ``use_xla``, XLA auto-clustering on GPU and CPU.

    ``num_cpu_replicas`` splits the CPU into that many devices (a session given options sees
    only the CPU devices they count).
    """
    options = tf.ConfigProto(allow_soft_placement=True)
    if distribution is not None and distribution.num_cpu_replicas:
        options.device_count["CPU"] = distribution.num_cpu_replicas
    options.gpu_options.allow_growth = True
    if config.use_xla:
        enable_xla_on_cpu()
        options.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
    return options


def enable_xla_on_cpu() -> None:
    """Lets ``--use_xla`` cluster CPU ops too, not only GPU ones.

    The session's global JIT level (what ``RunConfig.use_xla`` sets) applies to CPU ops only
    with TF's ``--tf_xla_cpu_global_jit`` flag, read from ``TF_XLA_FLAGS`` when the first
    graph is optimised: measured 1.6x faster steps on a tiny BERT on CPU with it, no change
    without it. Harmless on GPU, where the GPU ops are clustered either way. A process that
    runs other sessions first (a benchmark, a notebook) calls it before any of them.
    """
    flag = "--tf_xla_cpu_global_jit"
    current = os.environ.get("TF_XLA_FLAGS", "")
    if flag not in current.split():
        os.environ["TF_XLA_FLAGS"] = (current + " " + flag).strip()


def _format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)
    if seconds >= 60:
        return "%dm%02ds" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


def _write_scalars(writer, step: int, values: Dict[str, float]) -> None:
    summary = tf.Summary(
        value=[tf.Summary.Value(tag=k, simple_value=float(v)) for k, v in sorted(values.items())]
    )
    writer.add_summary(summary, step)


def _features(input_fn: Callable, params: dict, batch_size: int):
    dataset = input_fn(dict(params, batch_size=batch_size))
    return tf.data.make_one_shot_iterator(dataset).get_next()


def _train_iterator(input_fn: Callable, params: dict, batch_size: int, context=None):
    """The training data's iterator: one per worker, whose state is its data position
    (``norbert.training.data_position``), initialised in the session."""
    with tf.name_scope("data_position"):  # a stable name: positions restore by it
        dataset = input_fn(dict(params, batch_size=batch_size, **(
            {"input_context": context} if context is not None else {})))
        return tf.data.make_initializable_iterator(dataset)


def _check_params(params: dict) -> dict:
    """The estimator contract's ``params``: the caller's own values for its model_fn and
    input_fn. Where a run starts from is not one of them: it is ``start``."""
    stale = sorted(set(params) & {"init_checkpoint", "init_optimizer_state", "keep_global_step"})
    if stale:
        raise ValueError("params %s: a run's starting point is passed as start=Start(...) "
                         "(norbert.training.start), not in params" % ", ".join(stale))
    return dict(params)


# One update's graph: global_step, loss, train op and scalars (global values), ops to run once;
# with replicas also ``stop_request``, a placeholder this process sets to 1 when a stop signal
# came, and ``stop_agreed``, the requests summed over every replica of every worker (fetched
# with the step, so that all workers stop after the same step).
# ``tokens``: int64 [2], the global batch's real tokens and the positions computed for it.
_Step = collections.namedtuple(
    "_Step", "global_step loss train_op scalars initializers stop_request stop_agreed iterator "
    "tokens")


def _one_device_step(model_fn, input_fn, params, config: RunConfig, start: Start) -> _Step:
    global_step = tf.train.get_or_create_global_step()
    iterator = _train_iterator(input_fn, params, config.train_batch_size)
    features = iterator.get_next()
    spec = model_fn(features, None, TRAIN, dict(params, batch_size=config.train_batch_size))
    initialise(start, TRAIN)  # after the optimizer: its moments exist for a restore to fill
    return _Step(global_step, spec.loss, spec.train_op, dict(spec.scalars or {}),
                 [iterator.initializer], None, None, iterator,
                 length_buckets.token_counts(features))


def _replicated_step(model_fn, input_fn, params, config: RunConfig, strategy,
                     start: Start, cluster) -> _Step:
    """The model_fn once per replica of ``strategy``; each replica gets its share of the batch.

    ``train_batch_size`` is the global batch, as on TPUEstimator. Each worker's one iterator
    yields the worker's whole batch on the host, and each replica keeps its slice: the
    iterator's state is then the worker's data position, saveable (tf.distribute's own
    per-replica iterators are not), and the global order is the one-device order whatever the
    number of replicas. The replicas' losses and scalars are averaged (each is its share of the
    global batch's value: see ``norbert.training.replicas``).
    """
    mean = tf.distribute.ReduceOp.MEAN
    workers = cluster.num_workers if cluster is not None else 1
    local_replicas = strategy.num_replicas_in_sync // workers
    with strategy.scope():
        # Made here, in the strategy's scope and with no aggregation: a global step that the
        # optimizer made inside a replica would be incremented through a merge_call, which the
        # tf.cond of accumulation and loss scaling cannot hold. Every replica adds 1 to its copy.
        global_step = tf.get_variable(
            "global_step", shape=[], dtype=tf.int64, initializer=tf.zeros_initializer(),
            trainable=False, aggregation=tf.VariableAggregation.NONE,
            collections=[tf.GraphKeys.GLOBAL_VARIABLES, tf.GraphKeys.GLOBAL_STEP])
        # The workers' shares of the records, as tf.distribute's input context says them.
        context = tf.distribute.InputContext(
            num_input_pipelines=workers,
            input_pipeline_id=cluster.task_id if cluster is not None else 0,
            num_replicas_in_sync=strategy.num_replicas_in_sync)
        iterator = _train_iterator(input_fn, params, config.train_batch_size // workers,
                                   context)
        stop_request = tf.placeholder_with_default(0.0, [], name="stop_request")

        def replica_step(worker_batch):
            features = _replica_slice(worker_batch, local_replicas)
            if workers > 1:
                features = _same_length(features, input_fn)
            tokens = length_buckets.token_counts(features)
            spec = model_fn(features, None, TRAIN, dict(params))
            # A worker that stopped alone would leave the others waiting in the next
            # all-reduce: every worker's request goes into every step, and all act on the sum.
            agreed = replicas.total(tf.identity(stop_request))  # this replica's copy
            with tf.control_dependencies([agreed]):  # every replica joins that all-reduce
                train_op = tf.group(spec.train_op)
            return spec.loss, train_op, dict(spec.scalars or {}), agreed, tokens

        # Autograph would rewrite the model_fn's Python control flow: this is graph code.
        loss, train_op, scalars, agreed, tokens = strategy.extended.call_for_each_replica(
            tf.autograph.experimental.do_not_convert(replica_step), args=(iterator.get_next(),))
        # After the replica call, in cross-replica context: inside it, replica 1's variables
        # are named .../replica_1 and would not be found in the checkpoint.
        initialise(start, TRAIN)
        scalars = {k: strategy.reduce(mean, v, axis=None) for k, v in scalars.items()}
        return _Step(global_step, strategy.reduce(mean, loss, axis=None),
                     strategy.group(train_op), scalars, [iterator.initializer], stop_request,
                     strategy.experimental_local_results(agreed)[0], iterator,
                     strategy.reduce(tf.distribute.ReduceOp.SUM, tokens, axis=None))


def _same_length(features: Dict[str, tf.Tensor], input_fn: Callable) -> Dict[str, tf.Tensor]:
    """Multi-worker: each worker's batch cut to its own length bucket (and its predictions to
    their own size), padded to the longest any worker holds at this step (small all-reduces),
    so that every replica of every worker runs the same shape. Batches of a fixed length need
    nothing."""
    config = getattr(input_fn, "config", None)
    max_seq_length = getattr(config, "max_seq_length", None)
    if features["input_ids"].shape[1] is not None or max_seq_length is None:
        return features
    cut_predictions = ("masked_lm_weights" in features
                       and features["masked_lm_weights"].shape[1] is None)
    return length_buckets.agreed_length(
        features, max_seq_length, replicas.total,
        config.max_predictions_per_seq if cut_predictions else 0)


def _replica_slice(batch: Dict[str, tf.Tensor], local_replicas: int) -> Dict[str, tf.Tensor]:
    """This replica's share of its worker's batch: the k-th of ``local_replicas`` equal
    slices, k its place among the worker's replicas (ids run on over the workers)."""
    if local_replicas == 1:
        return batch
    index = tf.distribute.get_replica_context().replica_id_in_sync_group % local_replicas

    def share(value):  # [worker batch, ...] -> [worker batch / local_replicas, ...]
        shape = value.shape.as_list()
        # A batch cut to its length bucket knows its length only when run.
        rest = [d if d is not None else tf.shape(value)[i + 1] for i, d in enumerate(shape[1:])]
        return tf.reshape(value, [local_replicas, shape[0] // local_replicas] + rest)[index]

    return {name: share(value) for name, value in batch.items()}


# The training graph, finalised: one update (``step``), the saver, the initializers, and the
# strategy (None on one device) whose config a multi-worker session needs.
_TrainGraph = collections.namedtuple("_TrainGraph", "graph step saver init strategy positions")


def _build_train_graph(model_fn, input_fn, params, config: RunConfig, start: Start,
                       distribution: DistributionConfig, cluster,
                       position: Optional[Position] = None) -> _TrainGraph:
    graph = tf.Graph()
    with graph.as_default():
        if config.seed is not None:
            tf.set_random_seed(config.seed)
        strategy = make_strategy(distribution, cluster)
        if strategy is None:
            step = _one_device_step(model_fn, input_fn, params, config, start)
        else:
            check_batch_divides(config.train_batch_size, strategy.num_replicas_in_sync)
            step = _replicated_step(model_fn, input_fn, params, config, strategy, start,
                                    cluster)
        saver = tf.train.Saver(max_to_keep=config.keep_checkpoint_max, save_relative_paths=True)
        positions = None
        if position is not None:  # after the model's Saver, which must not see it
            positions = PositionSaver([step.iterator], position, config.output_dir,
                                      config.keep_checkpoint_max)
        init = [tf.global_variables_initializer(), tf.local_variables_initializer()]
        if positions is not None:
            init += positions.initializers
        graph.finalize()  # nothing may add ops inside the loop (a classic slow leak)
    return _TrainGraph(graph, step, saver, init, strategy, positions)


def train(
    model_fn: Callable,
    input_fn: Callable,
    params: dict,
    config: RunConfig,
    max_steps: int,
    distribution: Optional[DistributionConfig] = None,
    cluster: Optional[Cluster] = None,
    start: Optional[Start] = None,
    stop: Optional[StopSignals] = None,
    position: Optional[Position] = None,
) -> TrainResult:
    """Trains until ``global_step`` reaches ``max_steps``, the data ends, or a stop signal.

    ``start`` says where the variables come from (``norbert.training.start``); unset, it is
    found in ``output_dir`` (its newest checkpoint that restores, else fresh weights).
    ``distribution`` runs one replica per device (``norbert.training.distribution``); the
    checkpoints are the same either way. With ``multi_worker`` every worker calls this
    (``cluster``: this process's place, read from the environment when not given); all restore
    the same checkpoint from the shared ``output_dir``, and the chief alone writes checkpoints
    and events. ``stop``: the run's stop signals, when the caller records them already.
    ``position``: the data stream (``norbert.training.data_position``, decided by the run
    plan): its position is saved with every checkpoint and restored on resume; None: not kept.
    """
    params = _check_params(params)
    start = start if start is not None else find_start(config.output_dir)
    distribution = distribution or DistributionConfig()
    if distribution.distribution == MULTI_WORKER and cluster is None:
        cluster = Cluster(distribution)
    built = _build_train_graph(model_fn, input_fn, params, config, start, distribution,
                               cluster, position)
    options = session_config(config, distribution)
    target = ""
    if cluster is not None:  # this worker's server, which the others reach for the all-reduce
        options = built.strategy.update_config_proto(options)
        target = cluster.server(options).target
        logging.info("worker %d of %d%s", cluster.task_id, cluster.num_workers,
                     " (the chief)" if cluster.is_chief else "")
    # Only now that the graph stands: a bad config or checkpoint leaves no folder behind.
    tf.io.gfile.makedirs(config.output_dir)
    with tf.Session(target, graph=built.graph, config=options) as sess, \
            _stop_signals(stop) as signals:
        sess.run(built.init)
        sess.run(built.step.initializers)
        resumed = _restore_newest(sess, built.saver, start.resume, config.output_dir)
        if built.positions is not None:
            said = built.positions.restore(sess, int(sess.run(built.step.global_step)))
            if said:
                logging.info("%s", said)
        trainer = _Trainer(sess, built.step, _Checkpointer(sess, built.saver, config, cluster,
                                                           resumed, built.positions),
                           input_fn, _loop_settings(config, max_steps, distribution, cluster),
                           signals)
        return trainer.run()


@contextlib.contextmanager
def _stop_signals(stop: Optional[StopSignals]):
    """The caller's stop signals, or this run's own while it trains."""
    if stop is not None:
        yield stop
        return
    with StopSignals() as own:
        yield own


# How the trainer runs: ``timeout`` seconds a step may take (0: no limit; multi-worker only:
# a lost worker leaves the others waiting in the all-reduce for ever); ``log_secs`` a log line
# at least this often besides every ``log_every_steps`` (0 with workers: the logged scalars are
# all-reduced, so every worker must fetch them at the same steps, by count only).
_LoopSettings = collections.namedtuple("_LoopSettings", "config max_steps timeout log_secs")


def _loop_settings(config: RunConfig, max_steps: int, distribution: DistributionConfig,
                   cluster) -> _LoopSettings:
    if cluster is None:
        return _LoopSettings(config, max_steps, 0, config.log_every_secs)
    return _LoopSettings(config, max_steps, distribution.worker_timeout_secs, 0)


def _restore_newest(sess, saver, candidates, output_dir: str) -> Optional[str]:
    """Restores the newest of ``candidates`` that restores; returns it (None: none given).

    The cheap check that chose them sees cut-short files only; flipped bytes show here, as a
    checksum error, and that checkpoint is passed over too. The older ones stay tracked, so
    that ``keep_checkpoint_max`` goes on deleting them as the run saves new ones.
    """
    if not candidates:
        return None
    for i, candidate in enumerate(candidates):
        _check_shapes(sess, candidate, output_dir)
        try:
            saver.restore(sess, candidate)
        except tf.errors.DataLossError as e:
            logging.warning("--output_dir=%s: skipping the damaged checkpoint %s (%s)",
                            output_dir, candidate, checkpoints.tf_message(e))
            continue
        except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as e:
            raise NorbertError(
                "--output_dir=%s: cannot resume from %s, it does not fit this model (%s): use "
                "the --bert_config_file and settings the run was started with, or another "
                "--output_dir" % (output_dir, candidate, checkpoints.tf_message(e))
            ) from None
        saver.recover_last_checkpoints(list(reversed(candidates[i:])))
        logging.info("restored %s", candidate)
        return candidate
    raise NorbertError(
        "--output_dir=%s: every checkpoint there is damaged (%s): move them away to start "
        "afresh, or restore the folder from a copy" % (output_dir, ", ".join(candidates)))


def _check_shapes(sess, candidate: str, output_dir: str) -> None:
    """A resource variable takes a value of another shape without complaint; the run would
    then fail at its first reshape. Compare the shapes first."""
    try:
        mismatch = checkpoints.shape_mismatch(
            checkpoints.variables_in(candidate),
            sess.graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES))
    except tf.errors.OpError:
        return  # damaged: the restore says so and passes it over
    if mismatch:
        raise NorbertError(
            "--output_dir=%s: cannot resume from %s: %s; use the --bert_config_file the run "
            "was started with, or another --output_dir" % (output_dir, candidate, mismatch))


class _Checkpointer:
    """Saves the run's checkpoints (the chief alone: the other workers name the one the chief
    saves at the same step) and remembers the last one."""

    def __init__(self, sess, saver, config: RunConfig, cluster, resumed: Optional[str],
                 positions: Optional[PositionSaver] = None):
        self._sess, self._saver, self._positions = sess, saver, positions
        self._chief = cluster is None or cluster.is_chief
        self._prefix = os.path.join(config.output_dir, "model.ckpt")
        self.checkpoint = resumed  # the newest checkpoint of this run, if any
        self.saved_step = None  # the step of the last save in this session

    def save(self, step: int) -> str:
        # The data position first: a checkpoint on disk always has its position beside it
        # (a run killed in between resumes the checkpoint before, whose position is there).
        if self._positions is not None:
            self._positions.save(self._sess, step)
        if self._chief:
            self.checkpoint = self._saver.save(self._sess, self._prefix, global_step=step)
        else:
            self.checkpoint = "%s-%d" % (self._prefix, step)
        self.saved_step = step
        return self.checkpoint

    def last_good(self) -> str:
        return self.checkpoint or "none (the run had not saved yet)"

    def events(self, graph):
        """The chief's TensorBoard writer (with the graph on a new run), or none."""
        return tf.summary.FileWriter(os.path.dirname(self._prefix), graph) if self._chief \
            else _NoEvents()


class _NoEvents:
    """A worker other than the chief writes no TensorBoard events."""

    def add_summary(self, summary, step) -> None:
        pass

    def close(self) -> None:
        pass


# Since the last log line: the step then, the batches run (more with accumulation), the time.
# Since the last log line: the step then, batches run, real tokens and positions computed.
_Window = collections.namedtuple("_Window", "step batches time tokens positions")


class _Trainer:
    """The steps of one training run, in a session that holds the restored state: run a step,
    check it, log, save, stop. Each is a method of its own."""

    def __init__(self, sess, graph_step: _Step, saving: _Checkpointer, input_fn,
                 settings: _LoopSettings, stop: StopSignals):
        self.sess, self.graph_step, self.saving = sess, graph_step, saving
        self.input_fn, self.settings, self.stop = input_fn, settings, stop
        self._bounded = (tf.RunOptions(timeout_in_ms=settings.timeout * 1000)
                         if settings.timeout else None)

    def run(self) -> TrainResult:
        """Trains from the restored step to ``max_steps``; saves at the end."""
        first = step = int(self.sess.run(self.graph_step.global_step))
        max_steps = self.settings.max_steps
        if step >= max_steps:
            logging.info("already at step %d of %d; nothing to train", step, max_steps)
        self.saving.saved_step = step  # the state restored (or fresh): nothing new to save
        writer = self.saving.events(self.sess.graph if step == 0 else None)
        started = time.time()
        loss, stopped_by = float("nan"), None
        window = _Window(step, 0, started, 0, 0)
        try:
            while step < max_steps:
                log_now = self._log_due(step, window)
                out = self._run_step(step, log_now)
                if out is None:  # the data ran out
                    break
                loss = self._checked_loss(out["loss"], step)
                before, step = step, int(self.sess.run(self.graph_step.global_step))
                window = window._replace(batches=window.batches + 1,
                                         tokens=window.tokens + int(out["tokens"][0]),
                                         positions=window.positions + int(out["tokens"][1]))
                # With accumulation the step stays put over its micro-batches: log the one
                # that completes the update.
                if log_now and step > before:
                    window = self._log(writer, step, loss, out["scalars"], window)
                if step - self.saving.saved_step >= self.settings.config.save_checkpoints_steps:
                    self.saving.save(step)
                stopped_by = self._stop_agreed(out, step)
                if stopped_by:
                    break
        finally:
            writer.close()
        if self.saving.saved_step != step or self.saving.checkpoint is None:
            self.saving.save(step)
        logging.info("trained %d steps in %s; checkpoint %s", step - first,
                     _format_seconds(time.time() - started), self.saving.checkpoint)
        return TrainResult(step, loss, self.saving.checkpoint, stopped_by)

    def _log_due(self, step: int, window: _Window) -> bool:
        log_secs = self.settings.log_secs
        return ((step + 1) % self.settings.config.log_every_steps == 0
                or step + 1 == self.settings.max_steps
                or 0 < log_secs <= time.time() - window.time)

    def _run_step(self, step: int, log_now: bool) -> Optional[dict]:
        """One batch through the train op; None when the data ran out. TensorFlow's errors
        become one-line ``NorbertError``s saying what was saved and how to go on."""
        graph_step = self.graph_step
        fetches = {"loss": graph_step.loss, "train_op": graph_step.train_op,
                   "tokens": graph_step.tokens}
        feed = {}
        if graph_step.stop_request is not None:
            fetches["stop"] = graph_step.stop_agreed
            feed[graph_step.stop_request] = 1.0 if self.stop.received else 0.0
        if log_now:
            fetches["scalars"] = graph_step.scalars
        try:
            return self.sess.run(fetches, feed, options=self._bounded)
        except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError,
                tf.errors.AbortedError) as e:
            if not self.settings.timeout:
                raise
            raise self._lost_worker(e, step) from None
        except tf.errors.OutOfRangeError:
            logging.info("the training data ran out at step %d", step)
            return None
        except tf.errors.DataLossError as e:
            raise self._damaged_data(e, step) from None

    def _lost_worker(self, error: Exception, step: int) -> NorbertError:
        cause = ("it took longer than --worker_timeout_secs=%d" % self.settings.timeout
                 if isinstance(error, tf.errors.DeadlineExceededError)
                 else checkpoints.tf_message(error))
        return NorbertError(
            "step %d failed: %s. A worker is lost, stuck or never started; stopped without "
            "saving, the last checkpoint is %s. Restart every worker: they resume from there"
            % (step + 1, cause, self.saving.last_good()))

    def _damaged_data(self, error: Exception, step: int) -> NorbertError:
        # The batch failed before the step ran: the variables hold the last good state, worth
        # saving (unlike after a NaN, whose step has run).
        saved = ""
        if self.saving.saved_step != step:
            self.saving.save(step)
            saved = " after saving it"
        return NorbertError(
            "%s; stopped at step %d%s, the last good checkpoint is %s. Replace or rebuild that "
            "file (or leave it out of --input_file) and run again: it resumes from there"
            % (describe_data_loss(error, self.input_fn, "training"), step, saved,
               self.saving.last_good()))

    def _checked_loss(self, value, step: int) -> float:
        loss = float(value)
        if not np.isfinite(loss):
            raise NorbertError(
                "the training loss became %s at step %d; stopped without saving, the last good "
                "checkpoint is %s. Lower --learning_rate (or raise --num_warmup_steps) and run "
                "again: it resumes from there" % (loss, step + 1, self.saving.last_good()))
        return loss

    def _log(self, writer, step: int, loss: float, scalars: dict, window: _Window) -> _Window:
        """A log line and TensorBoard points; returns the next window."""
        now = time.time()
        elapsed = max(now - window.time, 1e-9)
        rate = (step - window.step) / elapsed
        values = {k: float(v) for k, v in scalars.items()}
        # The global batch (every replica, every worker) of each batch run.
        values.update(loss=loss, global_step_per_sec=rate,
                      examples_per_sec=window.batches * self.settings.config.train_batch_size
                      / elapsed)
        tokens = ""
        if window.positions:  # pretraining features: real tokens (padding excluded), and the
            # share of the positions computed that is padding (what buckets cut is not computed)
            values.update(real_tokens_per_sec=window.tokens / elapsed,
                          padding_share=1.0 - window.tokens / window.positions)
            tokens = "  %.0f real tokens/s (%.0f%% padding)" % (
                values["real_tokens_per_sec"], 100 * values["padding_share"])
        _write_scalars(writer, step, values)
        max_steps = self.settings.max_steps
        eta = (max_steps - step) / rate if rate > 0 else float("inf")
        logging.info("step %d/%d  loss %.4f  %.2f steps/s  %.1f examples/s%s  ETA %s", step,
                     max_steps, loss, rate, values["examples_per_sec"], tokens,
                     _format_seconds(eta) if np.isfinite(eta) else "?")
        return _Window(step, 0, now, 0, 0)

    def _stop_agreed(self, out: dict, step: int) -> Optional[str]:
        """The signal that stops the run after this step, or None. With replicas, the
        requests summed over every worker: all stop after the same step."""
        if self.graph_step.stop_request is None:
            stop_now = self.stop.received is not None
        else:
            stop_now = out["stop"] > 0
        if not stop_now:
            return None
        logging.warning("%s at step %d: saving and stopping",
                        "%s received" % self.stop.received if self.stop.received
                        else "another worker was told to stop", step)
        return self.stop.received or "SIGTERM"


# The evaluation graph, finalised: the metrics' values and update ops, the step, and the saver
# that restores what the checkpoint has.
_EvalGraph = collections.namedtuple("_EvalGraph", "graph values updates global_step saver init")


def _build_eval_graph(model_fn, input_fn, params, config: RunConfig, checkpoint: str,
                      restore_step: bool) -> _EvalGraph:
    graph = tf.Graph()
    with graph.as_default():
        # A head the checkpoint lacks starts from the same random values at every evaluation.
        tf.set_random_seed(config.seed if config.seed is not None else 0)
        global_step = tf.train.get_or_create_global_step()
        features = _features(input_fn, params, config.eval_batch_size)
        spec = model_fn(features, None, EVAL, dict(params, batch_size=config.eval_batch_size))
        metric_fn, tensors = spec.eval_metrics
        metrics = dict(metric_fn(**tensors) if isinstance(tensors, dict) else metric_fn(*tensors))
        metrics["loss"] = tf.metrics.mean(spec.loss)
        # Restore what the checkpoint has: Google's released ones carry no global_step.
        stored = checkpoints.variables_in(checkpoint)
        _check_coverage(checkpoint, stored)
        restored = tf.global_variables() if restore_step else tf.trainable_variables()
        saver = tf.train.Saver([v for v in restored if v.op.name in stored])
        init = [tf.global_variables_initializer(), tf.local_variables_initializer()]
        graph.finalize()
    return _EvalGraph(graph, {k: v[0] for k, v in metrics.items()},
                      [v[1] for v in metrics.values()], global_step, saver, init)


def _check_coverage(checkpoint: str, stored: Dict[str, list]) -> None:
    """The checkpoint must hold the encoder; heads it lacks start afresh, with a warning."""
    missing = [v.op.name for v in tf.trainable_variables() if v.op.name not in stored]
    encoder = [n for n in missing if not n.startswith(HEAD_SCOPES)]
    if encoder:
        raise NorbertError(
            "checkpoint %s lacks %d variables of this model (%s): is --bert_config_file "
            "the checkpoint's own?" % (checkpoint, len(encoder), ", ".join(encoder[:3])))
    if missing:  # an encoder without its pretraining heads (BertModel weights, say)
        warnings.warn(
            "checkpoint %s has no %s: evaluating with them freshly initialised (seeded), so "
            "the numbers measure an untrained head, a baseline before training"
            % (checkpoint, ", ".join(missing)), UntrainedHeadWarning, stacklevel=4)


def evaluate(
    model_fn: Callable,
    input_fn: Callable,
    params: dict,
    config: RunConfig,
    checkpoint: str,
    max_steps: Optional[int] = None,
    restore_step: bool = True,
    stop: Optional[StopSignals] = None,
) -> Dict[str, np.generic]:
    """Runs the eval metrics over ``max_steps`` batches (or all data) of ``checkpoint``.

    Returns what TPUEstimator.evaluate returns: every metric, the mean ``loss`` and
    ``global_step``. Without ``restore_step`` only the model's trainable variables are taken
    from the checkpoint, as Google's script initialises from ``--init_checkpoint``: then
    ``global_step`` is 0, as it reports. ``stop``: the run's stop signals, acted on between
    batches (``KeyboardInterrupt``: the evaluation is not finished).
    """
    built = _build_eval_graph(model_fn, input_fn, _check_params(params), config, checkpoint,
                              restore_step)
    with tf.Session(graph=built.graph, config=session_config(config)) as sess:
        sess.run(built.init)
        try:
            built.saver.restore(sess, checkpoint)
        except tf.errors.DataLossError as e:
            raise NorbertError("checkpoint %s is damaged (%s): evaluate another one"
                               % (checkpoint, checkpoints.tf_message(e))) from None
        steps = 0
        while max_steps is None or steps < max_steps:
            if stop is not None:
                stop.check()
            try:
                sess.run(built.updates)
            except tf.errors.OutOfRangeError:
                break
            except tf.errors.DataLossError as e:
                raise NorbertError("%s; replace or rebuild that file and evaluate again"
                                   % describe_data_loss(e, input_fn, "evaluation")) from None
            steps += 1
        if steps == 0:
            raise NorbertError("evaluation found no data: check --input_file")
        # numpy scalars, as TPUEstimator returns them: str() then prints as Google's file does.
        result = sess.run(built.values)
        result["global_step"] = sess.run(built.global_step)
    logging.info("evaluated %s on %d batches", checkpoint, steps)
    return result


def write_eval_results(path: str, result: Dict[str, float]) -> None:
    """``key = value`` lines in sorted order: the format of Google's eval_results.txt."""
    from norbert import fileio

    with fileio.atomic_output(path, "w") as f:
        for key in sorted(result):
            f.write("%s = %s\n" % (key, str(result[key])))
