"""The TPU path: the same model_fn and input_fn through ``TPUEstimator``.

``TPUEstimator`` lives in ``tf.compat.v1.estimator``, which TensorFlow removed after 2.15: on a
newer TF, ``--use_tpu`` is a clear error that says which TF to install. The TPU is found by
name through ``TPUClusterResolver`` (Cloud TPU VMs ship ``cloud-tpu-client`` for it).
"""

import dataclasses
from typing import Callable, Optional

import tensorflow as tf_root
import tensorflow.compat.v1 as tf

from norbert.errors import NorbertError
from norbert.training.spec import RunConfig
from norbert.training.start import Start, initialise


@dataclasses.dataclass(frozen=True)
class TpuConfig:
    """Where a TPUEstimator run goes: Google's TPU flags."""

    # Train on a Cloud TPU through TPUEstimator; without it, --engine=tpu_estimator runs
    # TPUEstimator on the CPU.
    use_tpu: bool = False
    # The Cloud TPU's name, or a grpc:// address.
    tpu_name: Optional[str] = None
    # The TPU's GCE zone; looked up from the metadata server when unset.
    tpu_zone: Optional[str] = None
    # The TPU's GCP project; looked up from the metadata server when unset.
    gcp_project: Optional[str] = None
    # A TPU master address, instead of tpu_name.
    master: Optional[str] = None
    # TPU cores the batch is split over (8 for a v2-8 or v3-8); used with use_tpu only.
    num_tpu_cores: int = 8
    # Steps per call to the TPU before control returns to the host.
    iterations_per_loop: int = 1000


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


class StopHook(tf.train.SessionRunHook):
    """Ends TPUEstimator's training (or evaluation) after the current loop of
    ``iterations_per_loop`` steps once ``stop`` (``norbert.training.stop``) recorded a signal;
    the estimator saves its checkpoint as it ends."""

    def __init__(self, stop):
        self._stop = stop

    def after_run(self, run_context, run_values):
        if self._stop.received is not None:
            run_context.request_stop()
