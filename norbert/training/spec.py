"""The contract between a model_fn and the engines that run it: norbert's loop and TPUEstimator.

Both call ``model_fn(features, labels, mode, params)`` and ``input_fn(params)``; the model_fn
returns a ``ModelSpec``, which the loop reads as it is and the TPU path turns into a
``TPUEstimatorSpec``. ``RunConfig`` holds the settings both engines share. No TensorFlow here.
"""

import collections
import dataclasses
from typing import ClassVar, Optional

from norbert.errors import NorbertError

TRAIN, EVAL = "train", "eval"  # the values of tf.estimator.ModeKeys.TRAIN / EVAL

# The fields of TPUEstimatorSpec that the loop uses; model_fn returns one of these and the
# TPU path converts it. ``scalars`` (name -> scalar tensor) feed TensorBoard and the log.
ModelSpec = collections.namedtuple(
    "ModelSpec", ["mode", "loss", "train_op", "eval_metrics", "scalars"]
)
ModelSpec.__new__.__defaults__ = (None, None, None, None)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Where a run writes and how it batches, saves and logs; shared by the loop and the TPU."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Checkpoints, batches and logging"

    # Where checkpoints, TensorBoard events and eval_results.txt go (created when missing).
    output_dir: str
    # Updates between checkpoints.
    save_checkpoints_steps: int = 1000
    # Checkpoints kept in output_dir; older ones are deleted.
    keep_checkpoint_max: int = 5
    # Updates between log lines and TensorBoard points.
    log_every_steps: int = 100
    # Seconds between log lines at the most, so that a slow run is not silent for
    # log_every_steps updates; 0: by updates only.
    log_every_secs: int = 30
    # Batch size for training (all cores together).
    train_batch_size: int = 32
    # Batch size for evaluation.
    eval_batch_size: int = 8
    # XLA JIT compilation (CPU/GPU loop).
    use_xla: bool = False
    # Seed of initialisation, dropout and the data's order, masks and pairs; unset: a training
    # run draws one when it begins and keeps it with its data position (in output_dir).
    seed: Optional[int] = None
    # On resume, go on with the training data where the resumed checkpoint left it (its
    # position is saved with every checkpoint); false: the data starts again from its
    # beginning (for a new phase on other data, say).
    resume_data_position: bool = True

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise NorbertError("--output_dir is required: where checkpoints and results go")
        for name in ("save_checkpoints_steps", "keep_checkpoint_max", "log_every_steps",
                     "train_batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise NorbertError("--%s=%d must be at least 1" % (name, getattr(self, name)))
        if self.log_every_secs < 0:
            raise NorbertError("--log_every_secs=%d must not be negative" % self.log_every_secs)
