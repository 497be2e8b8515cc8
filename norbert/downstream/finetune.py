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
"""

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
from norbert.model.modeling import BertModel, create_initializer
from norbert.training.optimization import OptimizerConfig, create_train_op

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


def _logits(config: BertConfig, kind: str, num_labels: int, inputs, is_training: bool):
    """[B, S, C] (tokens) or [B, C] (sequences): the model and the classification layer."""
    model = BertModel(config, is_training, inputs["input_ids"], inputs["input_mask"],
                      inputs["segment_ids"])
    if kind == TOKEN_CLASSIFICATION:
        hidden = model.get_sequence_output()  # [B, S, H]
    else:
        hidden = model.get_pooled_output()  # [B, H]
    weights = tf.get_variable("output_weights", [num_labels, config.hidden_size],
                              initializer=create_initializer(0.02))  # [C, H]
    bias = tf.get_variable("output_bias", [num_labels], initializer=tf.zeros_initializer())
    if is_training:
        hidden = tf.nn.dropout(hidden, rate=HEAD_DROPOUT)
    # [B, (S,) H] x [H, C]: the last axis against each label's weights.
    return tf.tensordot(hidden, weights, [[hidden.shape.ndims - 1], [1]]) + bias


def _loss(logits: tf.Tensor, inputs) -> tf.Tensor:
    """The mean cross-entropy over the weighted positions (first pieces, or the examples)."""
    per_position = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=inputs["label_ids"], logits=logits)  # [B, S] or [B]
    weights = inputs["label_weights"]
    return tf.reduce_sum(per_position * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


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


def finetune(config: BertConfig, checkpoint: Optional[str], kind: str, num_labels: int,
             train: tasks.Arrays, evaluation: tasks.Arrays, settings: FinetuneConfig,
             seed: int) -> RunOutput:
    """Fine-tunes a copy on the ``train`` rows with ``seed``; predicts the ``evaluation`` rows."""
    started = time.time()
    rows = len(train["input_ids"])
    steps = tasks.train_steps(rows, settings.num_train_epochs, settings.train_batch_size)
    optimizer = OptimizerConfig(learning_rate=settings.learning_rate, num_train_steps=steps,
                                num_warmup_steps=int(steps * settings.warmup_proportion))
    with tf.Graph().as_default() as graph:
        tf.set_random_seed(seed)
        inputs = _placeholders(kind)
        with tf.variable_scope(tf.get_variable_scope(), reuse=tf.AUTO_REUSE):
            loss = _loss(_logits(config, kind, num_labels, inputs, True), inputs)
            predicted = tf.argmax(_logits(config, kind, num_labels, inputs, False), axis=-1,
                                  output_type=tf.int32)  # [B, S] or [B]
        train_op, learning_rate = create_train_op(loss, optimizer)
        _restore(checkpoint)
        init = tf.global_variables_initializer()
        graph.finalize()
        with tf.Session(graph=graph) as sess:
            sess.run(init)
            losses, rates = _train(sess, (train_op, loss, learning_rate), inputs, train, steps,
                                   settings, seed)
            predictions = _predict(sess, predicted, inputs, evaluation, settings)
    return RunOutput(predictions, steps, losses[max(losses)], time.time() - started, losses,
                     rates)


def _train(sess, fetches, inputs, train, steps, settings, seed):
    """Runs the updates (``fetches``: train op, loss, learning rate); returns the logged losses
    and learning rates (every ``log_every`` updates and the last), by update number."""
    rng = random.Random(seed)
    losses: Dict[int, float] = {}
    rates: Dict[int, float] = {}
    order = tasks.batch_order(len(train["input_ids"]), steps, settings.train_batch_size, rng)
    for step, indices in enumerate(order, 1):
        batch = tasks.trimmed(tasks.select(train, indices))
        # The learning rate read is the one this update used (the step before its increment).
        _, value, rate = sess.run(fetches, _feed(inputs, batch))
        if step % settings.log_every == 0 or step == steps:
            losses[step], rates[step] = float(value), float(rate)
            logging.info("seed %d: update %d of %d, loss %.4f, learning rate %.3g", seed, step,
                         steps, value, rate)
    return losses, rates


def _predict(sess, predicted, inputs, evaluation, settings) -> np.ndarray:
    """The predicted label ids of every evaluation row, in order ([N, S] or [N])."""
    rows, width = evaluation["input_ids"].shape
    parts: List[np.ndarray] = []
    for start in range(0, rows, settings.eval_batch_size):
        batch = tasks.select(evaluation, range(start, min(rows, start + settings.eval_batch_size)))
        part = sess.run(predicted, _feed(inputs, tasks.trimmed(batch)))
        if part.ndim == 2:  # back to the full width: the trimmed columns were padding
            part = np.pad(part, [(0, 0), (0, width - part.shape[1])])
        parts.append(part)
    return np.concatenate(parts, axis=0)
