"""Data-parallel training through TensorFlow's own engine, tf.distribute, in TF1 graph style.

``DistributionConfig`` says where the replicas are; ``make_strategy`` builds the strategy (inside
the graph that uses it) and ``Cluster`` the multi-worker server it runs on. Norbert's loop
(``norbert.training.loop``) builds the model once per replica under the strategy; what the
replicas share inside the model_fn and the optimizer is in ``norbert.training.replicas``.

* ``mirrored``: every GPU of this machine (``num_gpus`` to use fewer), all-reduce by NCCL; or,
  with ``num_cpu_replicas=N``, N devices carved out of the CPU (tests, laptops: the machinery
  without a speed-up).
* ``multi_worker``: the same command on several machines; the cluster comes from ``TF_CONFIG``
  or from SLURM's environment (TF's ``SlurmClusterResolver``), one worker per machine with its
  GPUs mirrored. Worker 0 is the chief: it alone writes checkpoints, events and results.

No TensorFlow at import: the command line reads this module's config for its flags.
"""

import dataclasses
import json
import os
from typing import ClassVar, List, Optional

from norbert.errors import NorbertError

NONE, MIRRORED, MULTI_WORKER = "none", "mirrored", "multi_worker"
DISTRIBUTIONS = (NONE, MIRRORED, MULTI_WORKER)
# "auto": NCCL between GPUs, a reduction through one device between CPU replicas, TF's own
# choice between workers. "hierarchical" is HierarchicalCopyAllReduce (mirrored, e.g. GPUs
# without NVLink); "ring" the ring collective (multi_worker).
ALL_REDUCES = ("auto", "nccl", "hierarchical", "ring")
RESOLVERS = ("tf_config", "slurm")


@dataclasses.dataclass(frozen=True)
class DistributionConfig:
    """Where the replicas of a data-parallel run are, and how they sum their gradients."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Distribution"

    # "none": one device; "mirrored": every GPU of this machine (or num_cpu_replicas CPU
    # devices); "multi_worker": several machines, each running the same command.
    distribution: str = dataclasses.field(default=NONE, metadata={"choices": DISTRIBUTIONS})
    # GPUs of each machine to use (the first N); 0: all of them.
    num_gpus: int = 0
    # Splits the CPU into this many devices, one replica on each, so that
    # --distribution=mirrored runs on any machine; 0: use GPUs.
    num_cpu_replicas: int = 0
    # How replicas sum gradients: auto, nccl, hierarchical (mirrored) or ring (multi_worker).
    all_reduce: str = dataclasses.field(default="auto", metadata={"choices": ALL_REDUCES})
    # Where multi_worker finds the cluster: "tf_config" (the TF_CONFIG variable) or "slurm"
    # (the variables of a SLURM job step: one task per node).
    cluster_resolver: str = dataclasses.field(default="tf_config",
                                              metadata={"choices": RESOLVERS})
    # multi_worker: a training step that takes longer than this means a worker is lost (or
    # never started); the others stop with an error instead of waiting for ever. It must
    # cover the first step's start-up and the chief's checkpoint saves, which the others
    # wait for. 0: no limit.
    worker_timeout_secs: int = 600

    def __post_init__(self) -> None:
        for name, value, allowed in (("distribution", self.distribution, DISTRIBUTIONS),
                                     ("all_reduce", self.all_reduce, ALL_REDUCES),
                                     ("cluster_resolver", self.cluster_resolver, RESOLVERS)):
            if value not in allowed:
                raise NorbertError("--%s=%s is not known: use one of %s"
                                   % (name, value, ", ".join(allowed)))
        for name in ("num_gpus", "num_cpu_replicas", "worker_timeout_secs"):
            if getattr(self, name) < 0:
                raise NorbertError("--%s must not be negative" % name)
        if self.num_cpu_replicas and self.distribution != MIRRORED:
            raise NorbertError("--num_cpu_replicas needs --distribution=mirrored")
        if self.num_cpu_replicas and self.num_gpus:
            raise NorbertError("--num_cpu_replicas and --num_gpus exclude each other: replicas "
                               "are either CPU devices or GPUs")
        if self.distribution == MIRRORED and self.all_reduce == "ring":
            raise NorbertError("--all_reduce=ring is a multi-worker collective: use nccl or "
                               "hierarchical with --distribution=mirrored")
        if self.distribution == MULTI_WORKER and self.all_reduce == "hierarchical":
            raise NorbertError("--all_reduce=hierarchical is for --distribution=mirrored: use "
                               "ring or nccl with --distribution=multi_worker")
        if self.num_cpu_replicas and self.all_reduce == "nccl":
            raise NorbertError("--all_reduce=nccl needs GPUs: leave it at auto with "
                               "--num_cpu_replicas")

    @property
    def enabled(self) -> bool:
        return self.distribution != NONE


def _gpus() -> List[str]:
    import tensorflow as tf2

    return [d.name for d in tf2.config.experimental.list_physical_devices("GPU")]


def local_devices(config: DistributionConfig) -> List[str]:
    """This machine's devices that get a replica: ``["/cpu:0", ...]`` or ``["/gpu:0", ...]``."""
    if config.num_cpu_replicas:
        return ["/cpu:%d" % i for i in range(config.num_cpu_replicas)]
    found = len(_gpus())
    if config.num_gpus > found:
        raise NorbertError("--num_gpus=%d: this machine has %d GPU%s visible to TensorFlow"
                           % (config.num_gpus, found, "" if found == 1 else "s"))
    count = config.num_gpus or found
    if not count and config.distribution == MIRRORED:
        raise NorbertError("--distribution=mirrored: TensorFlow sees no GPU here; pass "
                           "--num_cpu_replicas=N to run N replicas on the CPU")
    return ["/gpu:%d" % i for i in range(count)] or ["/cpu:0"]


def check_batch_divides(batch_size: int, parts: int, flag: str = "train_batch_size",
                        among: str = "", each: str = "replica") -> None:
    """``--flag`` is a global batch: each of the ``parts`` it is split over (replicas, or
    ``each`` of ``among``: TPU cores) must get the same share."""
    if batch_size % parts:
        raise NorbertError(
            "--%s=%d does not divide among %s: use a multiple of %d (each %s gets %s / %ss "
            "examples)" % (flag, batch_size, among or "%d replicas" % parts, parts, each, flag,
                           each))


class Cluster:
    """A multi-worker job: the cluster's spec, this worker's index, and its server.

    Built from ``TF_CONFIG`` or from SLURM's variables, before any graph; ``server`` starts this
    worker's gRPC server once per process (it serves the other workers' collectives).
    """

    def __init__(self, config: DistributionConfig):
        import tensorflow as tf2

        self.config = config
        if config.cluster_resolver == "slurm":
            gpus = config.num_gpus or len(_gpus())
            tasks = max(_tasks_per_node())
            if gpus and tasks > 1:
                raise NorbertError(
                    "--cluster_resolver=slurm with GPUs runs one task per node "
                    "(SLURM_STEP_TASKS_PER_NODE=%s): start it with srun --ntasks-per-node=1; "
                    "each task uses its node's GPUs" % os.environ["SLURM_STEP_TASKS_PER_NODE"])
            try:
                # Every task of the job step is a worker; tasks on one node get consecutive
                # ports from the base. With GPUs each task mirrors its node's; without, the
                # resolver still hands out one (unused) "GPU" slot per task, so give it those.
                self.resolver = tf2.distribute.cluster_resolver.SlurmClusterResolver(
                    port_base=_slurm_port(), gpus_per_node=gpus or tasks,
                    gpus_per_task=gpus or 1, auto_set_gpu=False)
            except (RuntimeError, KeyError, ValueError) as e:
                raise NorbertError("--cluster_resolver=slurm: %s (run inside a SLURM job step, "
                                   "e.g. with srun, one task per node)" % e) from None
        else:
            _check_tf_config()
            self.resolver = tf2.distribute.cluster_resolver.TFConfigClusterResolver()
        self.cluster_spec = self.resolver.cluster_spec()
        self.task_type = self.resolver.task_type or "worker"
        self.task_id = int(self.resolver.task_id or 0)
        self.num_workers = len(self.cluster_spec.as_dict().get("worker", []))
        self._server = None

    @property
    def is_chief(self) -> bool:
        """Worker 0 (or a task named "chief") writes checkpoints, events and results."""
        return self.task_type == "chief" or (self.task_type == "worker" and self.task_id == 0)

    def server(self, session_config):
        if self._server is None:
            import tensorflow as tf2

            self._server = tf2.distribute.Server(
                self.cluster_spec, job_name=self.task_type, task_index=self.task_id,
                config=session_config, start=True)
        return self._server


def _tasks_per_node() -> List[int]:
    """The tasks on each node of the SLURM job step (``[1]`` when SLURM does not say)."""
    value = os.environ.get("SLURM_STEP_TASKS_PER_NODE", "1")
    try:  # SLURM's form: "2(x3),1" is 2 tasks on each of 3 nodes, then 1
        return [int(part.split("(")[0]) for part in value.split(",") if part] or [1]
    except ValueError:
        raise NorbertError("SLURM_STEP_TASKS_PER_NODE=%s is not SLURM's form (e.g. 2(x3),1)"
                           % value) from None


def _slurm_port() -> int:
    """The first port of the workers' servers: ``NORBERT_SLURM_PORT``, else 8888 (TF's)."""
    value = os.environ.get("NORBERT_SLURM_PORT", "8888")
    try:
        return int(value)
    except ValueError:
        raise NorbertError("NORBERT_SLURM_PORT=%s is not a port number" % value) from None


def _check_tf_config() -> None:
    """A missing or malformed TF_CONFIG as a one-line error, before TensorFlow reads it."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise NorbertError("--distribution=multi_worker: TF_CONFIG is not set; set it on each "
                           "machine (see docs/distributed.md), or pass --cluster_resolver=slurm")
    try:
        spec = json.loads(raw)
        workers = spec["cluster"]["worker"]
        task = spec["task"]
        if not isinstance(workers, list) or not workers or task["type"] not in (
                "worker", "chief"):
            raise ValueError
        int(task["index"])
    except (ValueError, KeyError, TypeError):
        raise NorbertError(
            'TF_CONFIG is not a cluster description: it needs {"cluster": {"worker": '
            '["host:port", ...]}, "task": {"type": "worker", "index": i}}') from None


def make_strategy(config: DistributionConfig, cluster: Optional[Cluster] = None):
    """The strategy for ``config`` (call inside the graph that uses it); None for one device."""
    import tensorflow.compat.v1 as tf

    if config.distribution == NONE:
        return None
    devices = local_devices(config)
    if config.distribution == MIRRORED:
        on_gpus = devices[0].startswith("/gpu")
        if config.all_reduce == "hierarchical":
            ops = tf.distribute.HierarchicalCopyAllReduce()
        elif on_gpus and len(devices) > 1:
            ops = tf.distribute.NcclAllReduce()
        else:  # CPU replicas (NCCL has no CPU kernel), or one GPU
            ops = tf.distribute.ReductionToOneDevice()
        return tf.distribute.MirroredStrategy(devices, cross_device_ops=ops)
    if cluster is None:
        raise ValueError("multi_worker needs its Cluster")
    communication = {"auto": tf.distribute.experimental.CollectiveCommunication.AUTO,
                     "ring": tf.distribute.experimental.CollectiveCommunication.RING,
                     "nccl": tf.distribute.experimental.CollectiveCommunication.NCCL}
    return tf.distribute.experimental.MultiWorkerMirroredStrategy(
        communication=communication[config.all_reduce], cluster_resolver=cluster.resolver)
