"""Learning-rate schedule, AdamWeightDecay and LAMB, clipping and gradient accumulation.

Graph code on ``tf.compat.v1`` (TF 1.15 through the newest 2.x). The update rules:

* **AdamWeightDecay** is the rule Google pretrained BERT with: Adam moments without bias
  correction, and weight decay added to the update (decoupled from the moments) except for
  LayerNorm parameters and biases. Its slots are ``<variable>/adam_m`` and ``<variable>/adam_v``,
  the names in Google's checkpoints, so a run resumes from theirs. ``adamw`` (the default)
  runs it as a decay step and TensorFlow's fused Adam kernel: one pass over each variable and
  its slots instead of about ten (faster steps: see BENCHMARKS.md). The kernel adds
  ``(1 - beta_2)`` computed in float32 where Google adds the float32 of ``1 - beta_2``: for
  0.999, 1.3e-5 relatively less into ``v``, so each step is about 6e-6 relatively larger.
  ``adamw_exact`` computes the rule op by op as Google's code does (the same numbers to float
  rounding); both read and write the same slots.
* **LAMB** (You et al., 2019, "Large Batch Optimization for Deep Learning", Algorithm 2): the
  same moments with bias correction, then each variable's step rescaled by the trust ratio
  ``||w|| / ||update||``. Its slots are ``<variable>/lamb_m`` and ``<variable>/lamb_v``, so
  that Adam slots are never mistaken for LAMB state when a run switches optimizer.

With gradient accumulation, ``global_step`` counts optimizer updates, not micro-batches: the
schedule, ``num_train_steps`` and checkpoints all speak of updates of the effective batch.
``batches_trained`` counts the micro-batches from the two checkpointed counters (the training
dropout's key: ``norbert.training.model_fn``).
"""

import re
from typing import List, NamedTuple, Optional, Sequence

import tensorflow.compat.v1 as tf

from norbert.model import precision
from norbert.model.precision_config import DynamicLossScale, LossScale
from norbert.training import replicas
from norbert.training.config import OptimizerConfig


def learning_rate_schedule(global_step, config: OptimizerConfig):
    """Linear warm-up to ``learning_rate``, then polynomial decay to zero at the last step.

    As Google's: the decay is computed from step 0 and the warm-up replaces it while
    ``step < num_warmup_steps``, so the rate just after warm-up is slightly below the peak.
    """
    step = tf.cast(global_step, tf.float32)
    total = float(config.num_train_steps)
    progress = tf.minimum(step, total) / total
    rate = config.learning_rate * tf.pow(1.0 - progress, config.poly_power)
    if config.num_warmup_steps:
        warmup = float(config.num_warmup_steps)
        is_warmup = tf.cast(step < warmup, tf.float32)
        rate = (1.0 - is_warmup) * rate + is_warmup * (config.learning_rate * step / warmup)
    return rate


def _variable_name(variable) -> str:
    return re.sub(r":\d+$", "", variable.name)


def _is_resource(variable) -> bool:
    """Resource variables (TF 2.x graphs, TPUs) have a handle; TF 1.15's ref variables not."""
    return getattr(variable, "handle", None) is not None


class _DecoupledOptimizer(tf.train.Optimizer):
    """Shared frame: slots named after the variable, decay exclusions, no global-step update."""

    slot_names = ("m", "v")

    def __init__(self, learning_rate, config: OptimizerConfig, name: str):
        super().__init__(use_locking=False, name=name)
        self.learning_rate = learning_rate
        self.config = config
        self._exclude = [re.compile(p) for p in config.exclude_from_weight_decay]

    def decays(self, name: str) -> bool:
        """Whether the variable gets weight decay (and, for LAMB, layer adaptation)."""
        return (bool(self.config.weight_decay_rate)
                and not any(p.search(name) for p in self._exclude))

    def _slot(self, var, name: str, suffix: str):
        """The zero slot ``<name>/<suffix>`` of ``var``: its shape, and its kind (resource or
        ref), which the fused kernel needs to match."""
        return tf.get_variable(
            name + "/" + suffix,
            shape=var.shape.as_list(),
            dtype=tf.float32,
            trainable=False,
            initializer=tf.zeros_initializer(),
            use_resource=_is_resource(var),
        )

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        """Updates every variable; ``global_step`` is left to the caller (as Google's)."""
        updates = []
        for grad, var in grads_and_vars:
            if grad is None or var is None:
                continue
            updates.extend(self._update(grad, var, _variable_name(var)))
        return tf.group(*updates, name=name)

    def _moments(self, grad, var, name: str, prefix: str):
        """The slots ``<name>/<prefix>_m``, ``_v`` and Adam's next first and second moments."""
        c = self.config
        m, v = self._slot(var, name, prefix + "_m"), self._slot(var, name, prefix + "_v")
        next_m = c.beta_1 * m + (1.0 - c.beta_1) * grad
        next_v = c.beta_2 * v + (1.0 - c.beta_2) * tf.square(grad)
        return m, v, next_m, next_v

    def _update(self, grad, var, name: str) -> List:
        raise NotImplementedError


class AdamWeightDecayOptimizer(_DecoupledOptimizer):
    """Google's BERT optimizer: Adam without bias correction, decoupled weight decay."""

    def __init__(self, learning_rate, config: OptimizerConfig, name="AdamWeightDecayOptimizer",
                 fused: bool = True):
        super().__init__(learning_rate, config, name)
        self.fused = fused

    def _update(self, grad, var, name):
        if not self.fused:
            return self._exact_update(grad, var, name)
        # var' = var - lr (m' / (sqrt(v') + eps) + wd var) as the decay step var * (1 - lr wd)
        # then TensorFlow's fused Adam kernel with both bias-correction powers 0 (so that its
        # rate is lr itself): one pass over var, m and v. The update is memory-bound on CPU and
        # GPU, and the 30k x H embedding dominates small models.
        c = self.config
        m, v = self._slot(var, name, "adam_m"), self._slot(var, name, "adam_v")
        grad = tf.convert_to_tensor(grad)  # IndexedSlices of an embedding lookup: dense here
        decay = []
        if self.decays(name):
            # After the gradient: nothing else orders this in-place write after the forward
            # pass's read of var, and a decay that ran first changed the step's own loss
            # (a scheduling race: runs differed by about lr * wd, relatively).
            with tf.control_dependencies([grad]):
                decay = [var.assign_sub(self.learning_rate * c.weight_decay_rate * var)]
        with tf.control_dependencies(decay):
            args = dict(beta1_power=0.0, beta2_power=0.0,
                        lr=tf.cast(self.learning_rate, tf.float32), beta1=c.beta_1,
                        beta2=c.beta_2, epsilon=c.epsilon, grad=grad, use_locking=False)
            if _is_resource(var):
                return [tf.raw_ops.ResourceApplyAdam(var=var.handle, m=m.handle, v=v.handle,
                                                     **args)]
            return [tf.raw_ops.ApplyAdam(var=var, m=m, v=v, **args)]  # TF 1.15 ref variables

    def _exact_update(self, grad, var, name):
        c = self.config
        m, v, next_m, next_v = self._moments(grad, var, name, "adam")
        update = next_m / (tf.sqrt(next_v) + c.epsilon)
        if self.decays(name):
            update += c.weight_decay_rate * var
        return [var.assign(var - self.learning_rate * update), m.assign(next_m), v.assign(next_v)]


class LAMBOptimizer(_DecoupledOptimizer):
    """LAMB: bias-corrected Adam moments, each variable's step scaled by its trust ratio."""

    def __init__(self, learning_rate, global_step, config: OptimizerConfig, name="LAMBOptimizer"):
        super().__init__(learning_rate, config, name)
        # Bias correction needs the update count: global_step before this update, plus one.
        self._t = tf.cast(global_step, tf.float32) + 1.0

    def _update(self, grad, var, name):
        c = self.config
        m, v, next_m, next_v = self._moments(grad, var, name, "lamb")
        m_hat = next_m / (1.0 - tf.pow(c.beta_1, self._t))
        v_hat = next_v / (1.0 - tf.pow(c.beta_2, self._t))
        update = m_hat / (tf.sqrt(v_hat) + c.epsilon)
        ratio = 1.0
        if self.decays(name):
            update += c.weight_decay_rate * var
            w_norm = tf.norm(var)
            u_norm = tf.norm(update)
            # A zero weight or update norm (a fresh zero-initialised variable) falls back to 1.
            ratio = tf.where(
                w_norm > 0.0, tf.where(u_norm > 0.0, w_norm / tf.maximum(u_norm, 1e-30), 1.0), 1.0
            )
        step = self.learning_rate * ratio * update
        return [var.assign(var - step), m.assign(next_m), v.assign(next_v)]


def make_optimizer(config: OptimizerConfig, learning_rate, global_step, use_tpu: bool = False):
    if config.optimizer == "lamb":
        optimizer = LAMBOptimizer(learning_rate, global_step, config)
    else:
        optimizer = AdamWeightDecayOptimizer(learning_rate, config,
                                             fused=config.optimizer == "adamw")
    if use_tpu:
        optimizer = tf.tpu.CrossShardOptimizer(optimizer)
    return optimizer


class LossGradients:
    """A loss's gradients, loss-scaled as ``loss_scale`` says: a float multiplies the loss
    before differentiation and divides the gradients after (static loss scaling for float16;
    1.0 changes nothing); a ``DynamicLossScale`` scales by its variable (made here), which
    the update then guards (``create_train_op``)."""

    def __init__(self, loss_scale: LossScale = 1.0):
        self.loss_scale = loss_scale
        self.scaler = None
        if isinstance(loss_scale, DynamicLossScale):
            self.scaler = precision.DynamicLossScaler(loss_scale)

    def __call__(self, loss, variables: Sequence) -> List:
        """The gradients of ``loss`` for ``variables`` (None for those it does not reach)."""
        if self.scaler is not None:
            return self.scaler.scaled_gradients(loss, variables)
        scale = self.loss_scale
        grads = tf.gradients(loss * scale if scale != 1.0 else loss, list(variables))
        return grads if scale == 1.0 else [None if g is None else g / scale for g in grads]


class Computed(NamedTuple):
    """Gradients computed before ``create_train_op`` (TPUEstimator's length buckets: inside
    each bucket's branch)."""

    gradients: LossGradients  # what computed them, with its loss scaling
    grads: List  # [one per variable] (None: the loss does not reach it)
    variables: List  # the trainable variables, in the gradients' order


def create_train_op(
    loss,
    config: OptimizerConfig,
    use_tpu: bool = False,
    variables: Optional[Sequence] = None,
    loss_scale: LossScale = 1.0,
    computed: Optional[Computed] = None,
):
    """The training op for ``loss``: gradients, accumulation, clipping, update, step + 1.

    ``loss_scale``: see ``LossGradients``. With a dynamic scale, an update whose gradients hold
    Inf or NaN is skipped (variables and ``global_step`` unchanged) and the scale halved; the
    scale grows again after a run of good updates. ``computed``: the gradients, computed
    elsewhere; its variables and loss scaling are then the ones used.
    """
    global_step = tf.train.get_or_create_global_step()
    learning_rate = learning_rate_schedule(global_step, config)
    if computed is None:
        variables = list(variables if variables is not None else tf.trainable_variables())
        gradients = LossGradients(loss_scale)
        grads = gradients(loss, variables)
    else:
        gradients, grads, variables = computed
    scaler = gradients.scaler
    # Under a tf.distribute strategy: the replicas' mean, before anything reads the gradients
    # (clipping and the finite check must see the same numbers on every replica).
    grads = replicas.mean(grads)
    optimizer = make_optimizer(config, learning_rate, global_step, use_tpu)

    def unguarded_apply(grads):
        if config.clip_norm:
            grads, _ = tf.clip_by_global_norm(grads, clip_norm=config.clip_norm)
        update = optimizer.apply_gradients(zip(grads, variables))
        with tf.control_dependencies([update]):
            return global_step.assign_add(1)

    def apply(grads):
        if scaler is None:
            return unguarded_apply(grads)
        # With accumulation this sees the mean of the micro-batches: one overflow in any of
        # them skips the whole update (the sums are reset all the same).
        return scaler.guarded(grads, unguarded_apply)

    if config.gradient_accumulation_steps == 1:
        return tf.group(apply(grads), name="train_op"), learning_rate
    return _accumulating_train_op(grads, variables, config, apply), learning_rate


def _accumulating_train_op(grads, variables, config: OptimizerConfig, apply):
    """Sums gradients over ``gradient_accumulation_steps`` runs; applies their mean on the last.

    The sums live in non-trainable ``<variable>/grad_acc`` variables and a micro-step counter,
    all checkpointed, so a run stopped between updates resumes with its partial sums.
    """
    n = config.gradient_accumulation_steps
    counter = micro_step_counter()
    pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
    sums = [
        tf.get_variable(
            _variable_name(v) + "/grad_acc", shape=v.shape.as_list(), dtype=tf.float32,
            trainable=False, initializer=tf.zeros_initializer(),
        )
        for _, v in pairs
    ]
    # IndexedSlices (embedding gradients) become dense here: they are summed anyway.
    added = [s.assign_add(tf.convert_to_tensor(g)) for s, (g, _) in zip(sums, pairs)]
    with tf.control_dependencies(added):
        next_count = counter.assign_add(1)

    def update():
        mean = [s / float(n) for s in sums]
        # Unused variables keep a None gradient so that apply() skips them as before.
        by_var = dict(zip([v.name for _, v in pairs], mean))
        step = apply([by_var.get(v.name) for v in variables])
        with tf.control_dependencies([step]):
            resets = [s.assign(tf.zeros_like(s)) for s in sums]
        return tf.group(step, *resets)

    def wait():
        return tf.no_op()

    with tf.control_dependencies([next_count]):
        is_last = tf.equal(next_count % n, 0)
        return tf.cond(is_last, update, wait, name="train_op")


def micro_step_counter():
    """The accumulation's micro-batch counter, ``gradient_accumulation/micro_step`` (int64 [],
    checkpointed): micro-batches run since it began; made on first use, found after."""
    with tf.variable_scope("gradient_accumulation", reuse=tf.AUTO_REUSE):
        return tf.get_variable(
            "micro_step", shape=[], dtype=tf.int64, trainable=False,
            initializer=tf.zeros_initializer(),
        )


def batches_trained(config: OptimizerConfig) -> tf.Tensor:
    """int64 []: the (micro-)batches trained before the one this step runs, as the checkpoint
    holds them: ``global_step`` without accumulation; with it ``global_step * n`` plus the
    micro-batches already summed into the pending update (``micro_step`` mod n).

    Read by the forward pass, before this step's train op adds to either counter (the
    increments depend on the gradients, which depend on the read). An update that dynamic loss
    scaling skips leaves ``global_step`` as it was, so the batches after it count as the
    skipped ones did: the count stays a function of the checkpoint, which is what matters.
    """
    # One read, a tensor (tf.cast of an int64 variable would hand back the variable, and each
    # user would read it anew: a fetch of it could then see this step's increment).
    batches = tf.cast(tf.identity(tf.train.get_or_create_global_step()), tf.int64)
    n = config.gradient_accumulation_steps
    if n == 1:
        return batches
    return batches * n + micro_step_counter() % n
