"""What graph code built once per replica needs from the other replicas, under tf.distribute.

The model_fn and the optimizer are built once per replica when a ``tf.distribute`` strategy runs
them (``norbert.training.distribution``). Two things then need the other replicas:

* the gradients: norbert's optimizers assign the variables themselves, so the base
  ``Optimizer``'s all-reduce never runs; ``mean`` averages them across replicas explicitly, or
  every replica would silently update its own copy with its own gradients;
* the masked-LM loss's denominator: a weighted mean over the real (not padding) predictions of
  the whole global batch, not of each replica's share, or a step would compute something else
  than one device does on the same batch whenever replicas hold different numbers of masked
  tokens (real data always does). ``weighted_mean`` sums the weights across replicas.

Each call is one ``merge_call``; every replica makes the same ones in the same order, and none
may sit inside a ``tf.cond`` or loop. Without a strategy (one device, or TPUEstimator, whose
``CrossShardOptimizer`` sums the cores' gradients itself) each helper computes what one device
always computed.
"""

from typing import List, Optional, Sequence

import tensorflow.compat.v1 as tf


def _replica_context():
    """The replica context of a running strategy, or None (no strategy, or cross-replica)."""
    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return None
    return tf.distribute.get_replica_context()


def count() -> int:
    """Replicas in sync: 1 without a strategy."""
    context = _replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def _reduce(op, tensors: Sequence[tf.Tensor]) -> List[tf.Tensor]:
    """``tensors`` reduced across replicas by ``op``; in the replica context, this replica's."""

    def merge(strategy, *per_replica):
        return strategy.extended.batch_reduce_to(op, [(t, t) for t in per_replica])

    return list(_replica_context().merge_call(merge, args=tuple(tensors)))


def mean(grads: Sequence[Optional[tf.Tensor]]) -> List[Optional[tf.Tensor]]:
    """The replicas' mean of each gradient (None stays None); the identity on one device.

    Embedding gradients (IndexedSlices) are made dense first: the all-reduce of a
    ``[vocab, hidden]`` dense tensor is what the optimizer would build from them anyway.
    """
    if _replica_context() is None or count() == 1:
        return list(grads)
    present = [i for i, g in enumerate(grads) if g is not None]
    reduced = _reduce(tf.distribute.ReduceOp.MEAN,
                      [tf.convert_to_tensor(grads[i]) for i in present])
    out = list(grads)
    for i, g in zip(present, reduced):
        out[i] = g
    return out


def total(value: tf.Tensor) -> tf.Tensor:
    """``value`` summed over every replica (of every worker); itself on one device."""
    if _replica_context() is None or count() == 1:
        return value
    return _reduce(tf.distribute.ReduceOp.SUM, [value])[0]


def weighted_mean(numerator: tf.Tensor, weight: tf.Tensor, epsilon: float) -> tf.Tensor:
    """This replica's share of the global batch's weighted mean ``sum(w x) / (sum(w) + eps)``.

    ``numerator`` is this replica's ``sum(w x)`` and ``weight`` its ``sum(w)`` (scalars). On one
    device: ``numerator / (weight + epsilon)``. Across R replicas: ``R numerator / (W + eps)``
    with W the weights summed over every replica, so that the replicas' mean (the gradient
    all-reduce, and the logged scalars) is the global batch's weighted mean exactly. The sum of
    weights is a constant to the gradient, as it is on one device.
    """
    if _replica_context() is None or count() == 1:
        return numerator / (weight + epsilon)
    return numerator * float(count()) / (total(tf.stop_gradient(weight)) + epsilon)
