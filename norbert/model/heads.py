"""The pretraining heads on top of ``BertModel``: masked LM and next sentence, losses, metrics.

Variables, as in Google's ``run_pretraining.py`` and its checkpoints::

    cls/predictions/transform/dense/{kernel [H, H], bias [H]}
    cls/predictions/transform/LayerNorm/{beta, gamma} [H]
    cls/predictions/output_bias [V]          (output weights: the word embeddings, tied)
    cls/seq_relationship/output_weights [2, H]   (used transposed)
    cls/seq_relationship/output_bias [2]

Shape legend: B batch, S sequence length, H hidden size, V vocab size, M masked-LM predictions
per sequence (max_predictions_per_seq).

Precision: the heads compute their dense layers in the dtype of the encoder's output (bfloat16
or float16 under ``--precision``), but the logits are cast to float32 before the output biases,
the log-softmax and the losses, so ``log_probs`` and every loss are float32 in all precisions.
"""

import collections
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import tensorflow.compat.v1 as tf

from norbert.errors import NorbertError
from norbert.model import modeling
from norbert.model import precision
from norbert.model.bert_config import BertConfig

# The features the pretraining forward pass reads (the schema itself lives with the data).
PRETRAINING_FEATURES = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "masked_lm_positions",
    "masked_lm_ids",
    "masked_lm_weights",
    "next_sentence_labels",
)
# Keeps the masked-LM loss finite for a batch without a single real prediction (Google's value).
MASKED_LM_LOSS_EPSILON = 1e-5

# loss: scalar; per_example_loss: [B*M]; log_probs: [B*M, V].
MaskedLmOutput = collections.namedtuple("MaskedLmOutput", "loss per_example_loss log_probs")
# loss: scalar; per_example_loss: [B]; log_probs: [B, 2] (0: is the next sentence, 1: random).
NextSentenceOutput = collections.namedtuple(
    "NextSentenceOutput", "loss per_example_loss log_probs"
)
# total_loss = masked_lm.loss + next_sentence.loss (masked_lm.loss alone when the next-sentence
# head is not trained); model: the BertModel underneath.
PretrainingOutput = collections.namedtuple(
    "PretrainingOutput", "total_loss model masked_lm next_sentence"
)


# (sum of w x, sum of w, epsilon) -> the weighted mean; replicas pass one that sees them all.
WeightedMean = Callable[[tf.Tensor, tf.Tensor, float], tf.Tensor]


def local_weighted_mean(numerator: tf.Tensor, weight: tf.Tensor, epsilon: float) -> tf.Tensor:
    """``sum(w x) / (sum(w) + epsilon)`` over this batch: Google's masked-LM loss."""
    return numerator / (weight + epsilon)


def gather_positions(sequence_output: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """The vectors of ``sequence_output`` [B, S, H] at ``positions`` [B, M]: [B*M, H]."""
    batch, seq, width = modeling.shape_list(sequence_output)
    positions = tf.cast(positions, tf.int32)  # int64 straight from tf.Example works too
    # Row b of the flattened [B*S, H] sequence starts at b * S.
    starts = tf.reshape(tf.range(batch, dtype=tf.int32) * seq, [-1, 1])  # [B, 1]
    flat_positions = tf.reshape(positions + starts, [-1])  # [B*M]
    flat_sequence = tf.reshape(sequence_output, [batch * seq, width])  # [B*S, H]
    return tf.gather(flat_sequence, flat_positions)  # [B*M, H]


def masked_lm_output(
    config: BertConfig,
    sequence_output: tf.Tensor,
    embedding_table: tf.Tensor,
    positions: tf.Tensor,
    label_ids: tf.Tensor,
    label_weights: tf.Tensor,
    weighted_mean: WeightedMean = local_weighted_mean,
) -> MaskedLmOutput:
    """Predicts the tokens at ``positions`` [B, M] and scores them against ``label_ids`` [B, M].

    ``label_weights`` [B, M] is 1.0 for a real prediction and 0.0 for padding (a sequence with
    fewer than M masked tokens); the loss is the weighted mean over the real ones, taken by
    ``weighted_mean`` (over the whole global batch when replicas share it).
    """
    x = gather_positions(sequence_output, positions)  # [B*M, H]
    with precision.variable_scope(x.dtype), tf.variable_scope("cls/predictions"):
        # One more dense layer before the output; it is used only in pretraining.
        with tf.variable_scope("transform"):
            x = modeling.dense(
                x,
                config.hidden_size,
                config.initializer_range,
                modeling.get_activation(config.hidden_act),
            )
            x = modeling.layer_norm(x)  # [B*M, H]
        # The output weights are the word embeddings (tied); only the bias is the head's own.
        output_bias = tf.get_variable(
            "output_bias", [config.vocab_size], initializer=tf.zeros_initializer()
        )
        if embedding_table.dtype != x.dtype:  # a float32 variable under a low-precision model
            embedding_table = tf.cast(embedding_table, x.dtype)
        logits = precision.to_float32(tf.matmul(x, embedding_table, transpose_b=True))  # [B*M, V]
        logits = tf.nn.bias_add(logits, output_bias)
        # For eval metrics and callers; training fetches only the loss, so this is pruned there.
        log_probs = tf.nn.log_softmax(logits, axis=-1)  # [B*M, V]

        label_ids = tf.reshape(label_ids, [-1])  # [B*M]
        weights = tf.cast(tf.reshape(label_weights, [-1]), tf.float32)  # [B*M]
        # -log_softmax(logits)[label], as Google's one-hot product, but by the fused kernel:
        # no [B*M, V] one-hot, product and sum forward, and the gradient (softmax - one-hot)
        # comes from the forward pass. The same value to float rounding.
        per_example_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=label_ids, logits=logits
        )  # [B*M]
        loss = weighted_mean(tf.reduce_sum(weights * per_example_loss), tf.reduce_sum(weights),
                             MASKED_LM_LOSS_EPSILON)
    return MaskedLmOutput(loss, per_example_loss, log_probs)


def next_sentence_output(
    config: BertConfig, pooled_output: tf.Tensor, labels: tf.Tensor
) -> NextSentenceOutput:
    """Classifies ``pooled_output`` [B, H]: label 0 for "B follows A", 1 for a random B."""
    with precision.variable_scope(pooled_output.dtype), tf.variable_scope("cls/seq_relationship"):
        weights = tf.get_variable(
            "output_weights",
            [2, config.hidden_size],
            dtype=pooled_output.dtype,
            initializer=modeling.create_initializer(config.initializer_range),
        )
        bias = tf.get_variable("output_bias", [2], initializer=tf.zeros_initializer())
        logits = precision.to_float32(tf.matmul(pooled_output, weights, transpose_b=True))
        logits = tf.nn.bias_add(logits, bias)  # [B, 2], float32
        log_probs = tf.nn.log_softmax(logits, axis=-1)  # [B, 2]
        targets = tf.one_hot(tf.reshape(labels, [-1]), depth=2, dtype=tf.float32)  # [B, 2]
        per_example_loss = -tf.reduce_sum(log_probs * targets, axis=-1)  # [B]
        loss = tf.reduce_mean(per_example_loss)
    return NextSentenceOutput(loss, per_example_loss, log_probs)


def pretraining_forward(
    config: BertConfig,
    features: Mapping[str, tf.Tensor],
    is_training: bool,
    use_one_hot_embeddings: bool = False,
    compute_dtype: tf.DType = tf.float32,
    weighted_mean: WeightedMean = local_weighted_mean,
    dropout_key: Optional[modeling.DropoutKey] = None,
    next_sentence_trained: bool = True,
) -> PretrainingOutput:
    """BertModel plus both heads on a batch of pretraining features (the model_fn's forward).

    ``features`` holds ``PRETRAINING_FEATURES``: input_ids, input_mask, segment_ids [B, S];
    masked_lm_positions, masked_lm_ids, masked_lm_weights [B, M]; next_sentence_labels [B, 1].
    ``compute_dtype`` is the activations' dtype (``norbert.model.precision``); losses and log-probs
    are float32 in any case. ``weighted_mean`` takes the masked-LM loss's mean (see
    ``masked_lm_output``). ``dropout_key``: the encoder's training dropout drawn from it
    (``modeling.DropoutKey``: masks that a resumed run draws again); None: ``tf.nn.dropout``.
    ``next_sentence_trained=False`` (masked LM only): the next-sentence head is still built, so
    that its variables exist as in Google's checkpoints, but it is left out of ``total_loss``:
    no gradient reaches it (nor the pooler), and they keep their values.
    """
    missing = [name for name in PRETRAINING_FEATURES if name not in features]
    if missing:
        raise NorbertError(
            "pretraining features lack %s (the records must come from the pretraining-data "
            "builder)" % ", ".join(missing)
        )
    model = modeling.BertModel(
        config=config,
        is_training=is_training,
        input_ids=features["input_ids"],
        input_mask=features["input_mask"],
        token_type_ids=features["segment_ids"],
        use_one_hot_embeddings=use_one_hot_embeddings,
        compute_dtype=compute_dtype,
        dropout_key=dropout_key,
    )
    masked_lm = masked_lm_output(
        config,
        model.get_sequence_output(),
        model.get_embedding_table(),
        features["masked_lm_positions"],
        features["masked_lm_ids"],
        features["masked_lm_weights"],
        weighted_mean,
    )
    next_sentence = next_sentence_output(
        config, model.get_pooled_output(), features["next_sentence_labels"]
    )
    total_loss = masked_lm.loss + next_sentence.loss if next_sentence_trained else masked_lm.loss
    return PretrainingOutput(total_loss, model, masked_lm, next_sentence)


def metric_inputs(output: PretrainingOutput, features: Mapping[str, tf.Tensor],
                  next_sentence_trained: bool = True) -> List[tf.Tensor]:
    """The tensors ``pretraining_metrics`` takes, in its order: with it, a TPUEstimator
    ``eval_metrics`` pair ``(pretraining_metrics, metric_inputs(output, features))``; with
    ``next_sentence_trained=False``, the first four: ``masked_lm_metrics``' inputs."""
    masked_lm = [
        output.masked_lm.per_example_loss,
        output.masked_lm.log_probs,
        features["masked_lm_ids"],
        features["masked_lm_weights"],
    ]
    if not next_sentence_trained:
        return masked_lm
    return masked_lm + [
        output.next_sentence.per_example_loss,
        output.next_sentence.log_probs,
        features["next_sentence_labels"],
    ]


def metrics_fn(next_sentence_trained: bool = True) -> Callable:
    """The eval metrics' function that ``metric_inputs`` (same argument) feeds."""
    return pretraining_metrics if next_sentence_trained else masked_lm_metrics


def masked_lm_metrics(
    masked_lm_example_loss: tf.Tensor,
    masked_lm_log_probs: tf.Tensor,
    masked_lm_ids: tf.Tensor,
    masked_lm_weights: tf.Tensor,
) -> Dict[str, Tuple[tf.Tensor, tf.Tensor]]:
    """Streaming masked-LM eval metrics, ``{name: (value, update_op)}``: masked_lm_accuracy
    and masked_lm_loss weighted by masked_lm_weights (padding left out)."""
    vocab = masked_lm_log_probs.shape[-1]
    mlm_predictions = tf.argmax(
        tf.reshape(masked_lm_log_probs, [-1, vocab]), axis=-1, output_type=tf.int32
    )  # [B*M]
    mlm_weights = tf.reshape(masked_lm_weights, [-1])  # [B*M]
    return {
        "masked_lm_accuracy": tf.metrics.accuracy(
            labels=tf.reshape(masked_lm_ids, [-1]),
            predictions=mlm_predictions,
            weights=mlm_weights,
        ),
        "masked_lm_loss": tf.metrics.mean(
            values=tf.reshape(masked_lm_example_loss, [-1]), weights=mlm_weights
        ),
    }


def pretraining_metrics(
    masked_lm_example_loss: tf.Tensor,
    masked_lm_log_probs: tf.Tensor,
    masked_lm_ids: tf.Tensor,
    masked_lm_weights: tf.Tensor,
    next_sentence_example_loss: tf.Tensor,
    next_sentence_log_probs: tf.Tensor,
    next_sentence_labels: tf.Tensor,
) -> Dict[str, Tuple[tf.Tensor, tf.Tensor]]:
    """Streaming eval metrics, ``{name: (value, update_op)}``, as Google's run_pretraining:
    masked_lm_accuracy and masked_lm_loss weighted by masked_lm_weights (padding left out),
    next_sentence_accuracy and next_sentence_loss over all examples."""
    nsp_predictions = tf.argmax(
        tf.reshape(next_sentence_log_probs, [-1, 2]), axis=-1, output_type=tf.int32
    )  # [B]
    metrics = masked_lm_metrics(masked_lm_example_loss, masked_lm_log_probs, masked_lm_ids,
                                masked_lm_weights)
    return {
        **metrics,
        "next_sentence_accuracy": tf.metrics.accuracy(
            labels=tf.reshape(next_sentence_labels, [-1]), predictions=nsp_predictions
        ),
        "next_sentence_loss": tf.metrics.mean(
            values=tf.reshape(next_sentence_example_loss, [-1])
        ),
    }
