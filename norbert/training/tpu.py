"""The TPU path: the same model_fn and input_fn through ``TPUEstimator``.

``TPUEstimator`` lives in ``tf.compat.v1.estimator``, which TensorFlow removed after 2.15: on a
newer TF, ``--use_tpu`` is a clear error that says which TF to install. The TPU is found by
name through ``TPUClusterResolver`` (Cloud TPU VMs ship ``cloud-tpu-client`` for it).

A resume goes on as the loop's does: the newest checkpoint that reads whole (``point_at_intact``:
a damaged one is passed over, with a warning), and the training data's position saved with it
(``PositionHook``: the input hosts' iterators, saved beside every model checkpoint, restored
at the resumed step; ``norbert.training.data_position``).

Training dropout is keyed by the batches' numbers (``numbered``): the training input numbers its
batches and carries the number as a feature, which the model_fn keys the masks by
(``norbert.training.model_fn.dropout_key``). Each core's batch has a number of its own, and the
numbering is part of the iterator's state, so a resumed run draws the masks the uninterrupted
run would have. Checked with TPUEstimator on the CPU (``use_tpu=False``, the same code path),
not on TPU hardware.
"""

import functools
import os
from typing import Callable, Optional, Sequence

import tensorflow as tf_root
import tensorflow.compat.v1 as tf
from absl import logging

from norbert.errors import NorbertError
from norbert.model import checkpoints
from norbert.training.config import TpuConfig
from norbert.training.data_position import Position, PositionSaver
from norbert.training.input_pipeline import RecordInput
from norbert.training.model_fn import BATCH_NUMBER
from norbert.training.spec import RunConfig
from norbert.training.start import Start, initialise

# tf.data's graph collection of the iterators a graph made (its GLOBAL_ITERATORS): TPUEstimator
# makes the training iterator itself and keeps only its resource, found there as TensorFlow's
# own CheckpointInputPipelineHook finds it.
_ITERATORS = "iterators"


def estimator_module():
    """``tf.compat.v1.estimator``, or ``NorbertError`` saying how to get it."""
    try:
        estimator = tf.estimator
        estimator.tpu.TPUEstimator  # noqa: B018 - raises where the estimator is gone
    except (AttributeError, ImportError):
        raise NorbertError(
            "--use_tpu needs TPUEstimator, which TensorFlow %s no longer has: use TensorFlow "
            "2.15 (pip install 'tensorflow==2.15.*', Python 3.9-3.11; the tpu-vm-tf-2.15 "
            "runtime) or 1.15, or train on CPU/GPU without --use_tpu" % tf_root.__version__
        ) from None
    return estimator


def _scalar_host_call(scalars: dict, output_dir: str):
    """TensorBoard scalars from the TPU, as TPUEstimator's ``host_call`` (fn, tensors)."""
    names = sorted(scalars)
    step = tf.reshape(tf.train.get_or_create_global_step(), [1])
    # host_call tensors need a leading batch dimension; the host sees one value per core.
    tensors = [step] + [tf.reshape(tf.cast(scalars[n], tf.float32), [1]) for n in names]
    metadata = tf.SummaryMetadata(
        plugin_data=tf.SummaryMetadata.PluginData(plugin_name="scalars")
    )

    def host_call_fn(global_step, *values):
        summary = tf_root.compat.v2.summary
        writer = summary.create_file_writer(output_dir)
        with writer.as_default(), summary.record_if(True):
            for name, value in zip(names, values):
                summary.write(name, tf.reduce_mean(value), step=global_step[0], metadata=metadata)
            return tf.summary.all_v2_summary_ops()

    return host_call_fn, tensors


def make_estimator(model_fn: Callable, run: RunConfig, tpu: TpuConfig,
                   start: Optional[Start] = None, params: Optional[dict] = None):
    """A ``TPUEstimator`` over ``model_fn`` (which returns ``norbert.training.spec.ModelSpec``).

    It resumes from ``run.output_dir`` itself; a new run starts from ``start.init_checkpoint``
    (if any), applied in the scaffold as TPUEstimator requires.
    """
    start = start or Start()
    estimator = estimator_module()
    cluster = None
    if tpu.use_tpu and tpu.tpu_name:
        try:
            cluster = tf.distribute.cluster_resolver.TPUClusterResolver(
                tpu.tpu_name, zone=tpu.tpu_zone, project=tpu.gcp_project
            )
        except Exception as e:  # the resolver's errors come from several client libraries
            raise NorbertError(
                "--tpu_name=%s: cannot find that TPU (%s); check --tpu_zone and --gcp_project"
                % (tpu.tpu_name, str(e).splitlines()[0] if str(e) else type(e).__name__)
            ) from None
    config = estimator.tpu.RunConfig(
        cluster=cluster,
        master=tpu.master,
        model_dir=run.output_dir,
        save_checkpoints_steps=run.save_checkpoints_steps,
        keep_checkpoint_max=run.keep_checkpoint_max,
        tpu_config=estimator.tpu.TPUConfig(
            iterations_per_loop=tpu.iterations_per_loop,
            num_shards=tpu.num_tpu_cores,
            per_host_input_for_training=estimator.tpu.InputPipelineConfig.PER_HOST_V2,
        ),
    )

    def tpu_model_fn(features, labels, mode, params):
        spec = model_fn(features, labels, mode, params)
        scaffold_fn = None
        if start.init_checkpoint:

            def scaffold_fn():
                initialise(start, mode)
                return tf.train.Scaffold()

        host_call = None
        if spec.scalars:
            host_call = _scalar_host_call(spec.scalars, run.output_dir)
        return estimator.tpu.TPUEstimatorSpec(
            mode=mode,
            loss=spec.loss,
            train_op=spec.train_op,
            eval_metrics=spec.eval_metrics,
            scaffold_fn=scaffold_fn,
            host_call=host_call,
        )

    return estimator.tpu.TPUEstimator(
        use_tpu=tpu.use_tpu,
        model_fn=tpu_model_fn,
        config=config,
        train_batch_size=run.train_batch_size,
        eval_batch_size=run.eval_batch_size,
        params=dict(params or {}),
    )


def numbered(input_fn: RecordInput) -> RecordInput:
    """``input_fn`` with its batches numbered for dropout: the feature ``BATCH_NUMBER``.

    With PER_HOST_V2 input each host's input_fn yields per-core batches, which the host's
    infeed hands to its cores in turn: the i-th batch of a host's stream goes to one core, so
    (i, host) is each core's batch's own. The number is counted by the iterator itself
    (``Dataset.enumerate``), so the data position saved with a checkpoint holds it and a resumed
    run goes on counting from there.
    """
    return RecordInput(input_fn.config, functools.partial(_numbered_batches, input_fn))


def _numbered_batches(input_fn: Callable, params: dict):
    """The batches of ``input_fn(params)``, each with ``BATCH_NUMBER`` int32 [B, 2]: every row
    (the batch's number in this host's stream, the host's number; 0 on the CPU)."""
    context = params.get("context")  # the input_fn's TPUContext, on a TPU only
    host = int(context.current_host) if context is not None else 0
    batch_size = params["batch_size"]  # per core with PER_HOST_V2: infeed needs static shapes

    @tf.autograph.experimental.do_not_convert
    def add_number(number, features):
        row = tf.stack([tf.cast(number, tf.int32), tf.constant(host, tf.int32)])  # [2]
        features = dict(features)
        features[BATCH_NUMBER] = tf.tile(row[None], [batch_size, 1])  # [B, 2]
        return features

    return input_fn(params).enumerate().map(add_number)


class StopHook(tf.train.SessionRunHook):
    """Ends TPUEstimator's training (or evaluation) after the current loop of
    ``iterations_per_loop`` steps once ``stop`` (``norbert.training.stop``) recorded a signal;
    the estimator saves its checkpoint as it ends."""

    def __init__(self, stop):
        self._stop = stop

    def after_run(self, run_context, run_values):
        if self._stop.received is not None:
            run_context.request_stop()


def point_at_intact(output_dir: str, candidates: Sequence[str]) -> Optional[str]:
    """Makes TPUEstimator resume from the newest of ``candidates`` (the plan's intact-looking
    checkpoints, newest first) that reads whole; returns it (None: none given).

    TPUEstimator restores what the folder's ``checkpoint`` state file names, and stops with an
    error when that one is damaged. Each candidate is read in full first (flipped bytes show
    only so, as a checksum error); a damaged one is passed over with a warning, and the state
    file is pointed at the one that reads, the older ones still listed so that
    ``keep_checkpoint_max`` goes on deleting them as the run saves new ones.
    """
    if not candidates:
        return None
    for i, candidate in enumerate(candidates):
        problem = checkpoints.unreadable(candidate)
        if problem:
            logging.warning("--output_dir=%s: skipping the damaged checkpoint %s (%s)",
                            output_dir, candidate, problem)
            continue
        state = tf.train.get_checkpoint_state(output_dir)
        if state is None or state.model_checkpoint_path != candidate:
            kept = [_relative(output_dir, p) for p in reversed(candidates[i:])]  # oldest first
            tf.train.update_checkpoint_state(output_dir, kept[-1], kept)
        logging.info("resuming from %s (read whole: intact)", candidate)
        return candidate
    raise NorbertError(
        "--output_dir=%s: every checkpoint there is damaged (%s): move them away to start "
        "afresh, or restore the folder from a copy" % (output_dir, ", ".join(candidates)))


def _relative(output_dir: str, checkpoint: str) -> str:
    """A checkpoint in ``output_dir`` by its name alone, as the estimator's saver writes the
    state file (the folder may be moved); one elsewhere as it is."""
    folder, name = os.path.split(checkpoint)
    return name if os.path.normpath(folder) == os.path.normpath(output_dir) else checkpoint


class _IteratorResource:
    """An iterator as ``tf.data.experimental.make_saveable_from_iterator`` reads it: its
    resource alone (so from TF 1.15 to 2.15, the TFs TPUEstimator runs on)."""

    def __init__(self, resource):
        self._iterator_resource = resource


class PositionHook(tf.train.SessionRunHook):
    """The data position on TPUEstimator (every input host's iterator): saved before each model
    checkpoint (through ``listener()``, TPUEstimator's saving listener, which is told of every
    checkpoint: the one when a session starts, those every ``save_checkpoints_steps``, and the
    last), restored at the resumed step when ``position.restore`` says so.

    The estimator's session calls its checkpoint saver's hook (a chief's hook) before the
    input's: the checkpoint written when a session starts comes before the iterator is
    initialised. So the first save or run of a session, whichever comes first, initialises the
    iterator and restores its position; the input's hook then initialises it again, and the
    first run restores once more (silently) what that first save wrote at the same step:
    either way the first batch is the right one.

    Checked on the CPU (``use_tpu=False``: one step per session call). On a TPU the host's
    infeed runs ``iterations_per_loop`` batches per session call, and the checkpoints (with
    the positions) fall between calls; that the infeed has then read exactly the batches the
    steps took, and that the restore comes before the first call's infeed, could not be checked
    without a TPU. A pod with several input hosts has an iterator per host (each reading its
    share of the data): they are saved together, in one position file, and restored together;
    checked with the hosts' input pipelines built in one graph on the CPU, not on a pod.
    """

    def __init__(self, position: Position, output_dir: str, keep: int):
        self._position, self._output_dir, self._keep = position, output_dir, keep
        self._saver = None  # built in begin(), in the estimator's graph
        self._initializers, self._global_step = [], None
        self._session, self._ran = None, False  # the session prepared; its first run done

    def begin(self):
        resources = tf.get_collection(_ITERATORS)  # one per input host, in the one graph
        self._saver, self._session = None, None
        if not resources:
            logging.warning("data: no input iterator found: the position is not kept, a "
                            "resume starts the stream at its beginning")
            return
        self._saver = PositionSaver([_IteratorResource(r) for r in resources], self._position,
                                    self._output_dir, self._keep)
        self._initializers = [op for r in resources for op in r.consumers()
                              if op.type == "MakeIterator"] + self._saver.initializers
        self._global_step = tf.train.get_global_step()

    def before_run(self, run_context):
        session = run_context.session
        if self._saver is None or (session is self._session and self._ran):
            return
        if not self._prepare(session):  # prepared by the session's first save
            self._saver.restore(session, self._step(session))
        self._ran = True

    def save(self, session, step: int) -> None:
        if self._saver is not None:
            self._prepare(session)
            self._saver.save(session, step)

    def listener(self) -> "tf.train.CheckpointSaverListener":
        return _PositionListener(self)

    def _prepare(self, session) -> bool:
        """The iterator initialised and its position restored, once per session; False when
        that was done already."""
        if session is self._session:
            return False
        self._session, self._ran = session, False
        session.run(self._initializers)
        said = self._saver.restore(session, self._step(session))
        if said:
            logging.info("%s", said)
        return True

    def _step(self, session) -> int:
        return int(session.run(self._global_step))


class _PositionListener(tf.train.CheckpointSaverListener):
    """Saves the data position before TPUEstimator writes a model checkpoint: a checkpoint on
    disk always has its position beside it."""

    def __init__(self, hook: PositionHook):
        self._hook = hook

    def before_save(self, session, global_step_value):
        self._hook.save(session, int(global_step_value))
