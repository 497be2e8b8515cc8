"""Mixed precision in TF1 graph style: float32 variables, bfloat16 or float16 arithmetic.

``--precision`` picks one of:

* ``fp32``: everything in float32; the graph is exactly the one without this module.
* ``bf16``: matmuls, activations and dropout in bfloat16 (TPU; CPUs and GPUs with bf16 kernels).
  bfloat16 has float32's exponent range, so no loss scaling is needed.
* ``fp16``: the same in float16 (GPUs with tensor cores). Its range ends at 65504 and small
  gradients underflow to zero, so the loss is scaled up before differentiation and the gradients
  scaled back down (``DynamicLossScale``, or a fixed number).

Variables are always stored in float32, with their usual names and shapes, so checkpoints do not
depend on the precision a run used: ``variable_scope(dtype)`` installs a custom getter that
creates each variable requested in a low-precision dtype as float32 and hands the model a cast
of it. Gradients flow back through the cast, so the optimizer sees float32 gradients of float32
variables. Code that wants a variable in float32 (layer norm's gamma and beta, the output
biases) simply asks for float32 and gets the variable itself.

The numerically sensitive parts stay in float32 wherever they are: layer-norm statistics, the
attention mask bias and softmax, the output log-softmax and the losses (see ``modeling`` and
``heads``). Only ``tensorflow.compat.v1`` symbols that TF 1.15 has are used. The settings
(``PrecisionConfig``, ``DynamicLossScale``) are in ``precision_config``, without TensorFlow.
"""

import contextlib
from typing import Iterator, List, Optional, Sequence

import tensorflow.compat.v1 as tf

from norbert.model.precision_config import BF16, FP16, FP32, DynamicLossScale, PrecisionConfig

_DTYPES = {FP32: tf.float32, BF16: tf.bfloat16, FP16: tf.float16}
_LOW = (tf.bfloat16, tf.float16)
# Graph collection holding the dynamic loss scale variable (for logging it).
LOSS_SCALE_COLLECTION = "norbert_loss_scale"


def compute_dtype(precision: str) -> tf.DType:
    """tf.float32, tf.bfloat16 or tf.float16 for "fp32", "bf16" or "fp16"."""
    return _DTYPES[PrecisionConfig(precision).precision]  # an unknown name: NorbertError


# ---- float32 storage, low-precision reads -------------------------------------------------


def float32_storage_getter(getter, name, *args, **kwargs):
    """A ``custom_getter``: a trainable variable asked for in bfloat16/float16 is created (or
    reused) as float32 and returned cast to the asked dtype; anything else passes through."""
    dtype = tf.as_dtype(kwargs.get("dtype") or tf.float32)
    trainable = kwargs.get("trainable", True)
    if dtype not in _LOW or trainable is False:
        return getter(name, *args, **kwargs)
    kwargs["dtype"] = tf.float32
    variable = getter(name, *args, **kwargs)
    # Casting inside the variable's own name scope keeps the graph readable in TensorBoard.
    return tf.cast(variable, dtype, name=name.split("/")[-1] + "/read_%s" % dtype.name)


@contextlib.contextmanager
def variable_scope(dtype: tf.DType) -> Iterator[None]:
    """Within it, variables asked for in a low-precision dtype are float32 underneath.

    For float32 it does nothing at all, so fp32 graphs stay exactly as they were. Variable and
    op names are not changed: the current scope is re-entered, only the getter is added.
    """
    if tf.as_dtype(dtype) == tf.float32:
        yield
        return
    scope = tf.get_variable_scope()
    with tf.variable_scope(scope, custom_getter=float32_storage_getter,
                           auxiliary_name_scope=False):
        yield


def to_float32(x: tf.Tensor) -> tf.Tensor:
    """``x`` as float32 (no op when it already is)."""
    return x if x.dtype == tf.float32 else tf.cast(x, tf.float32)


# ---- loss scaling ---------------------------------------------------------------------------


def all_finite(grads: Sequence) -> tf.Tensor:
    """A scalar bool: every value of every gradient (dense or IndexedSlices) is finite."""
    checks = []
    for grad in grads:
        if grad is None:
            continue
        values = grad.values if isinstance(grad, tf.IndexedSlices) else grad
        checks.append(tf.reduce_all(tf.is_finite(values)))
    if not checks:
        return tf.constant(True)
    return tf.reduce_all(tf.stack(checks))


class DynamicLossScaler:
    """The graph side of ``DynamicLossScale``: the scale variables and the guarded update."""

    def __init__(self, config: DynamicLossScale):
        self.config = config
        with tf.variable_scope("loss_scale"):
            self.scale = tf.get_variable(
                "scale", shape=[], dtype=tf.float32, trainable=False,
                initializer=tf.constant_initializer(config.initial_scale),
            )
            self.good_steps = tf.get_variable(
                "good_steps", shape=[], dtype=tf.int64, trainable=False,
                initializer=tf.zeros_initializer(),
            )
        tf.add_to_collection(LOSS_SCALE_COLLECTION, self.scale)

    def scaled_gradients(self, loss: tf.Tensor, variables: Sequence) -> List[Optional[tf.Tensor]]:
        """Gradients of ``loss`` computed at ``loss * scale``, divided back by the scale."""
        scale = tf.identity(self.scale)  # one read for both the multiply and the divide
        grads = tf.gradients(loss * scale, list(variables))
        inverse = 1.0 / scale
        out = []
        for grad in grads:
            if grad is None:
                out.append(None)
            elif isinstance(grad, tf.IndexedSlices):
                out.append(tf.IndexedSlices(grad.values * inverse, grad.indices, grad.dense_shape))
            else:
                out.append(grad * inverse)
        return out

    def guarded(self, grads: Sequence, apply_fn) -> tf.Tensor:
        """Runs ``apply_fn(grads)`` only if all ``grads`` are finite, and adjusts the scale.

        Returns a bool tensor: whether the update was applied. A skipped step leaves every
        variable and ``global_step`` as it was; the loss itself is unaffected, so the runner's
        NaN stop does not fire on it.
        """
        c = self.config
        finite = all_finite(grads)

        def apply_and_grow():
            with tf.control_dependencies([apply_fn(list(grads))]):
                good = self.good_steps + 1
                grow = good >= c.growth_interval
                new_scale = tf.where(grow, self.scale * c.factor, self.scale)
                updates = [
                    self.scale.assign(new_scale),
                    self.good_steps.assign(tf.where(grow, tf.zeros_like(good), good)),
                ]
            with tf.control_dependencies(updates):
                return tf.identity(finite)

        def skip_and_shrink():
            # At the floor, non-finite gradients are a real divergence, not an overflow of the
            # scaling: fail instead of skipping forever.
            at_floor = tf.Assert(
                self.scale > c.min_scale,
                ["gradients are not finite even at the minimum loss scale", self.scale],
            )
            with tf.control_dependencies([at_floor]):
                updates = [
                    self.scale.assign(tf.maximum(self.scale / c.factor, c.min_scale)),
                    self.good_steps.assign(tf.zeros_like(self.good_steps)),
                ]
            with tf.control_dependencies(updates):
                return tf.identity(finite)

        return tf.cond(finite, apply_and_grow, skip_and_shrink, name="loss_scale_guard")
