"""One fine-tuning run: a copy of the model plus a classification layer, trained on the task's
rows and scored on the evaluation rows, in TF1 graph code (``tf.compat.v1`` only).

The graph is norbert's ``BertModel`` (``norbert.model.modeling``) with a softmax layer on top,
named as Google's ``run_classifier.py`` names it (``output_weights`` [C, H], ``output_bias``
[C]): on every position's last hidden state for token classification, on the pooled [CLS]
state for sequence classification. Training and evaluation share the variables; training has
Google's dropout (``tf.nn.dropout``, seeded by the run's graph seed), evaluation none. The
optimizer is pretraining's (``norbert.training.optimization``: AdamWeightDecay, linear warm-up
over ``warmup_proportion`` of the updates, then linear decay to 0, gradients clipped to norm 1)
as run_classifier.py sets it up.

The encoder's variables start from ``checkpoint`` (``norbert.model.checkpoints``; pretraining
heads and optimizer state in it are left unused), or from random weights without one; the
classification layer always starts afresh from the run's seed. Batches are fed from numpy.

With ``--distribution=mirrored`` (``norbert.training.distribution``), the model is built once
per replica under the strategy, as pretraining's loop does: each replica takes its equal slice
of every fed batch, the gradients are averaged over the replicas before the optimizer reads
them, and the loss is the global batch's weighted mean.
"""

import collections
import dataclasses
import random
import time
from typing import Dict, List, Optional

import numpy as np
import tensorflow.compat.v1 as tf
from absl import logging

from norbert.downstream import tasks
from norbert.downstream.config import TOKEN_CLASSIFICATION, FinetuneConfig
from norbert.errors import NorbertError
from norbert.model import checkpoints
from norbert.model.bert_config import BertConfig
from norbert.model.modeling import BertModel
from norbert.training import replicas
from norbert.training.config import OptimizerConfig
from norbert.training.distribution import DistributionConfig, check_batch_divides, make_strategy
from norbert.training.optimization import create_train_op

INPUTS = ("input_ids", "input_mask", "segment_ids", "label_ids", "label_weights")
# Dropout on the encoder's output before the classification layer, as run_classifier.py.
HEAD_DROPOUT = 0.1


@dataclasses.dataclass(frozen=True)
class RunOutput:
    """What one fine-tuning run gives back."""

    predictions: np.ndarray  # label ids: [N, S] (tokens) or [N] (sequences) for the eval rows
    steps: int  # updates trained
    final_loss: float  # the training loss of the last update
    seconds: float  # wall time, graph building included
    losses: Dict[int, float]  # update number -> training loss, every log_every updates
    learning_rates: Dict[int, float]  # update number -> its learning rate, at the same updates


def _placeholders(kind: str, seq: Optional[int] = None) -> Dict[str, tf.Tensor]:
    """The fed inputs: [B, S] int32 ids, mask and types; labels and weights [B, S] or [B].
    S is each batch's own (``tasks.trimmed``) unless ``seq`` fixes it."""
    label_shape = [None, seq] if kind == TOKEN_CLASSIFICATION else [None]
    out = {name: tf.placeholder(tf.int32, [None, seq], name=name)
           for name in ("input_ids", "input_mask", "segment_ids")}
    out["label_ids"] = tf.placeholder(tf.int32, label_shape, name="label_ids")
    out["label_weights"] = tf.placeholder(tf.float32, label_shape, name="label_weights")
    return out


def _logits(config: BertConfig, kind: str, num_labels: int, inputs, is_training: bool,
            seed: Optional[int] = None):
    """[B, S, C] (tokens) or [B, C] (sequences): the model and the classification layer, whose
    weights start from ``seed`` itself (not from the graph's op count), so that they are the
    same with or without replicas."""
    model = BertModel(config, is_training, inputs["input_ids"], inputs["input_mask"],
                      inputs["segment_ids"])
    if kind == TOKEN_CLASSIFICATION:
        hidden = model.get_sequence_output()  # [B, S, H]
    else:
        hidden = model.get_pooled_output()  # [B, H]
    weights = tf.get_variable("output_weights", [num_labels, config.hidden_size],
                              initializer=tf.truncated_normal_initializer(
                                  stddev=0.02, seed=seed))  # [C, H]
    bias = tf.get_variable("output_bias", [num_labels], initializer=tf.zeros_initializer())
    if is_training:
        hidden = tf.nn.dropout(hidden, rate=HEAD_DROPOUT)
    # [B, (S,) H] x [H, C]: the last axis against each label's weights.
    return tf.tensordot(hidden, weights, [[hidden.shape.ndims - 1], [1]]) + bias


def _loss(logits: tf.Tensor, inputs) -> tf.Tensor:
    """The mean cross-entropy over the weighted positions (first pieces, or the examples).

    Under R replicas, this replica's share of the global batch's mean: R x its sum over the
    weights of every replica, so that the replicas' mean (of the loss, and of the gradients)
    is the global batch's mean, whatever number of words each replica holds."""
    per_position = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=inputs["label_ids"], logits=logits)  # [B, S] or [B]
    weights = inputs["label_weights"]
    numerator, total = tf.reduce_sum(per_position * weights), tf.reduce_sum(weights)
    if replicas.count() > 1:
        numerator *= float(replicas.count())
        total = replicas.total(tf.stop_gradient(total))  # a constant, as on one device
    return numerator / tf.maximum(total, 1.0)


def _restore(checkpoint: Optional[str]) -> None:
    """Points the encoder variables' initializers at ``checkpoint`` (before the session)."""
    if checkpoint is None:
        logging.info("no --checkpoint: the encoder starts from random weights (a baseline)")
        return
    variables = [v for v in tf.trainable_variables() if v.op.name.startswith("bert/")]
    stored = checkpoints.variables_in(checkpoint)
    mismatch = checkpoints.shape_mismatch(stored, variables)
    if mismatch:
        raise NorbertError("--checkpoint=%s: %s; check that --bert_config_file is the "
                           "checkpoint's own bert_config.json" % (checkpoint, mismatch))
    report = checkpoints.init_from_checkpoint(checkpoint, variables)
    if not report.restored:
        raise NorbertError("--checkpoint=%s holds none of the model's variables (bert/...): "
                           "give a BERT checkpoint" % checkpoint)
    logging.info("%s", report.summary())


def _feed(inputs, arrays) -> dict:
    return {inputs[name]: arrays[name] for name in INPUTS}


# The graph of one run: the fed inputs; the train op, the training loss and the learning rate
# (global values, reduced over the replicas); the predicted label ids of the fed rows; the
# number of replicas a fed batch is split over (1 on one device).
_Graph = collections.namedtuple("_Graph", "inputs train_op loss learning_rate predicted replicas")


def finetune(config: BertConfig, checkpoint: Optional[str], kind: str, num_labels: int,
             train: tasks.Arrays, evaluation: tasks.Arrays, settings: FinetuneConfig,
             seed: int, distribution: Optional[DistributionConfig] = None) -> RunOutput:
    """Fine-tunes a copy on the ``train`` rows with ``seed``; predicts the ``evaluation`` rows.

    ``distribution`` (``--distribution=mirrored``): one replica per device, each taking its
    share of every batch (``train_batch_size`` is the global batch), gradients averaged."""
    started = time.time()
    rows = len(train["input_ids"])
    steps = tasks.train_steps(rows, settings.num_train_epochs, settings.train_batch_size)
    optimizer = OptimizerConfig(learning_rate=settings.learning_rate, num_train_steps=steps,
                                num_warmup_steps=int(steps * settings.warmup_proportion))
    distribution = distribution or DistributionConfig()
    with tf.Graph().as_default() as graph:
        tf.set_random_seed(seed)
        strategy = make_strategy(distribution)
        if strategy is None:
            built = _one_device(config, kind, num_labels, optimizer, seed)
        else:
            check_batch_divides(settings.train_batch_size, strategy.num_replicas_in_sync)
            built = _replicated(config, kind, num_labels, optimizer, seed, strategy)
        _restore(checkpoint)  # cross-replica context: every replica's copy is initialised
        init = tf.global_variables_initializer()
        graph.finalize()
        with tf.Session(graph=graph, config=_session_config(distribution)) as sess:
            sess.run(init)
            losses, rates = _train(sess, built, train, steps, settings, seed)
            predictions = _predict(sess, built, evaluation, settings)
    return RunOutput(predictions, steps, losses[max(losses)], time.time() - started, losses,
                     rates)


def _session_config(distribution: DistributionConfig) -> Optional[tf.ConfigProto]:
    """None (TensorFlow's defaults), or with CPU replicas, that many CPU devices (a session
    given options sees only the CPU devices they count)."""
    if not distribution.num_cpu_replicas:
        return None
    options = tf.ConfigProto(allow_soft_placement=True)
    options.device_count["CPU"] = distribution.num_cpu_replicas
    return options


def _model(config, kind, num_labels, inputs, optimizer, seed):
    """Loss, train op, learning rate and predictions on ``inputs`` (this replica's share)."""
    with tf.variable_scope(tf.get_variable_scope(), reuse=tf.AUTO_REUSE):
        loss = _loss(_logits(config, kind, num_labels, inputs, True, seed), inputs)
        predicted = tf.argmax(_logits(config, kind, num_labels, inputs, False, seed), axis=-1,
                              output_type=tf.int32)  # [B, S] or [B]
    train_op, learning_rate = create_train_op(loss, optimizer)
    return loss, train_op, learning_rate, predicted


def _one_device(config, kind, num_labels, optimizer, seed) -> _Graph:
    inputs = _placeholders(kind)
    loss, train_op, learning_rate, predicted = _model(config, kind, num_labels, inputs,
                                                      optimizer, seed)
    return _Graph(inputs, train_op, loss, learning_rate, predicted, 1)


def _replicated(config, kind, num_labels, optimizer, seed, strategy) -> _Graph:
    """The model once per replica of ``strategy``, each on its slice of the fed batch, as
    ``norbert.training.loop`` runs pretraining: the gradients are averaged over the replicas
    (``norbert.training.replicas``, inside ``create_train_op``) and the loss is the global
    batch's (``_loss``), so that an update is the one-device update of the same batch."""
    count = strategy.num_replicas_in_sync
    inputs = _placeholders(kind)
    with strategy.scope():
        # In the scope, no aggregation: each replica adds 1 to its own copy (a step made by
        # create_train_op inside a replica would be incremented through a merge_call).
        tf.get_variable("global_step", shape=[], dtype=tf.int64,
                        initializer=tf.zeros_initializer(), trainable=False,
                        aggregation=tf.VariableAggregation.NONE,
                        collections=[tf.GraphKeys.GLOBAL_VARIABLES, tf.GraphKeys.GLOBAL_STEP])

        def replica_fn(batch):
            return _model(config, kind, num_labels, _replica_share(batch, count), optimizer,
                          seed)

        # Autograph would rewrite the model's Python control flow: this is graph code.
        loss, train_op, learning_rate, predicted = strategy.extended.call_for_each_replica(
            tf.autograph.experimental.do_not_convert(replica_fn), args=(inputs,))
        mean = tf.distribute.ReduceOp.MEAN
        return _Graph(inputs, strategy.group(train_op), strategy.reduce(mean, loss, axis=None),
                      strategy.experimental_local_results(learning_rate)[0],
                      tf.concat(strategy.experimental_local_results(predicted), axis=0), count)


def _replica_share(batch: Dict[str, tf.Tensor], count: int) -> Dict[str, tf.Tensor]:
    """This replica's rows of the fed batch: the k-th of ``count`` equal slices, k its id (the
    replicas' predictions, joined in id order, are then the batch's in order)."""
    index = tf.distribute.get_replica_context().replica_id_in_sync_group

    def share(value):  # [B, ...] -> [B / count, ...]
        shape = tf.shape(value)
        return tf.reshape(value, tf.concat([[count, -1], shape[1:]], 0))[index]

    return {name: share(value) for name, value in batch.items()}


def _train(sess, built: _Graph, train, steps, settings, seed):
    """Runs the updates; returns the logged losses and learning rates (every ``log_every``
    updates and the last), by update number."""
    rng = random.Random(seed)
    losses: Dict[int, float] = {}
    rates: Dict[int, float] = {}
    order = tasks.batch_order(len(train["input_ids"]), steps, settings.train_batch_size, rng)
    for step, indices in enumerate(order, 1):
        batch = tasks.trimmed(tasks.select(train, indices))
        # The learning rate read is the one this update used (the step before its increment).
        _, value, rate = sess.run([built.train_op, built.loss, built.learning_rate],
                                  _feed(built.inputs, batch))
        if step % settings.log_every == 0 or step == steps:
            losses[step], rates[step] = float(value), float(rate)
            logging.info("seed %d: update %d of %d, loss %.4f, learning rate %.3g", seed, step,
                         steps, value, rate)
    return losses, rates


def _predict(sess, built: _Graph, evaluation, settings) -> np.ndarray:
    """The predicted label ids of every evaluation row, in order ([N, S] or [N])."""
    rows, width = evaluation["input_ids"].shape
    parts: List[np.ndarray] = []
    for start in range(0, rows, settings.eval_batch_size):
        end = min(rows, start + settings.eval_batch_size)
        batch = tasks.trimmed(tasks.select(evaluation, range(start, end)))
        # Replicas take equal shares: the last batch gets rows of padding (mask 0), dropped.
        extra = -(end - start) % built.replicas
        batch = {name: np.pad(value, [(0, extra)] + [(0, 0)] * (value.ndim - 1))
                 for name, value in batch.items()}
        part = sess.run(built.predicted, _feed(built.inputs, batch))[:end - start]
        if part.ndim == 2:  # back to the full width: the trimmed columns were padding
            part = np.pad(part, [(0, 0), (0, width - part.shape[1])])
        parts.append(part)
    return np.concatenate(parts, axis=0)
