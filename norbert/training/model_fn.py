"""The pretraining ``model_fn``: TPUEstimator's contract, run by norbert's loop or TPUEstimator.

``model_fn(features, labels, mode, params)`` builds BERT with both heads; in training mode the
optimizer (``norbert.training.optimization``), in eval mode the metrics of Google's run_pretraining
(with ``objective="mlm"`` the masked-LM loss and metrics alone).
It builds the model only: where the variables start from (``norbert.training.start``) is the
engine's to apply, after the model is built (the loop: after the per-replica call under a
tf.distribute strategy, where a replica's variables are named ``.../replica_1``; TPUEstimator:
in its scaffold). Under a strategy the masked-LM loss is the global batch's (``replicas``).

Training dropout is keyed (``dropout_key``; ``norbert.model.modeling.DropoutKey``): each mask
is a function of (seed, batches trained, replica, site), so a resumed run draws the
uninterrupted run's masks. The batch count is read from what every checkpoint already holds,
``global_step`` and, with accumulation, ``gradient_accumulation/micro_step``
(``optimization.batches_trained``): no variable is added, and Google's checkpoints keep their
names. The seed is ``ModelFnConfig.dropout_seed`` (the run plan passes --seed, or the seed drawn
when the run began and kept with its data position, so that a resume without --seed draws the
same masks), else the graph's seed (the loop sets --seed as that), else 0.

On TPUEstimator the batch number comes from the input pipeline instead, as the feature
``BATCH_NUMBER`` (``norbert.training.tpu.numbered``): a TPU's cores run the model_fn outside any
replica context, and TF 1.15's API gives them no core number, but each core's batch is one of
its host's numbered batches. The model_fn takes that feature out before the model sees it.
"""

import dataclasses
from typing import Callable, Optional

import tensorflow.compat.v1 as tf
from norbert.data.features import MLM_NSP, OBJECTIVES
from norbert.errors import NorbertError
from norbert.model import heads
from norbert.model import modeling
from norbert.model import precision
from norbert.model.bert_config import BertConfig
from norbert.training import replicas
from norbert.training.optimization import OptimizerConfig, batches_trained, create_train_op
from norbert.training.spec import EVAL, TRAIN, ModelSpec

# The feature TPUEstimator's training input carries for dropout (``tpu.numbered``): int32
# [B, 2], every row (the batch's number in its input host's stream, that host's number).
BATCH_NUMBER = "batch_number"


@dataclasses.dataclass(frozen=True)
class ModelFnConfig:
    bert_config: BertConfig
    optimizer: OptimizerConfig
    use_tpu: bool = False  # CrossShardOptimizer
    use_one_hot_embeddings: bool = False  # faster embedding lookups on TPU
    # Static loss scaling (a float; 1.0: none) or a precision.DynamicLossScale, for float16.
    loss_scale: precision.LossScale = 1.0
    # "fp32", "bf16" or "fp16": the activations' dtype (variables are float32 in all three).
    precision: str = precision.FP32
    # Seed of the training dropout's masks; None: the graph's seed (the loop sets --seed as
    # the graph's), or 0 when the graph has none.
    dropout_seed: Optional[int] = None
    # What the records train (their sidecars say it): "mlm_nsp", masked LM and next sentence
    # (Google's); "mlm", masked LM alone: the next-sentence head is built but left out of the
    # loss (its variables keep their values) and out of the scalars and eval metrics.
    objective: str = MLM_NSP

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise NorbertError("objective %r: use one of %s"
                               % (self.objective, ", ".join(OBJECTIVES)))

    @property
    def next_sentence_trained(self) -> bool:
        return self.objective == MLM_NSP


def _batch_masked_lm_accuracy(output, features):
    """Share of real (weighted) masked-LM predictions that are right, in the (global) batch."""
    log_probs = output.masked_lm.log_probs  # [B*M, V]
    predictions = tf.argmax(log_probs, axis=-1, output_type=tf.int32)  # [B*M]
    labels = tf.cast(tf.reshape(features["masked_lm_ids"], [-1]), tf.int32)  # [B*M]
    weights = tf.reshape(tf.cast(features["masked_lm_weights"], tf.float32), [-1])  # [B*M]
    right = tf.cast(tf.equal(predictions, labels), tf.float32)
    return replicas.weighted_mean(tf.reduce_sum(right * weights), tf.reduce_sum(weights),
                                  heads.MASKED_LM_LOSS_EPSILON)


def dropout_key(config: ModelFnConfig, numbered: Optional[tf.Tensor] = None,
                hosts: int = 1) -> Optional[modeling.DropoutKey]:
    """The training dropout's key: (seed, batch number, replica); None when the model has no
    dropout (its graph then has no op of it), or on a TPU without ``numbered``.

    ``numbered`` (TPUEstimator: the ``BATCH_NUMBER`` feature, [B, 2]) keys the masks by the
    batch's number in its input host's stream and the host's number among ``hosts``: a TPU
    core's batch is one of its host's batches, so every core draws masks of its own, and the
    numbers are part of the iterator's state that the data position saves. Without it, the
    batches come from the checkpointed counters (``optimization.batches_trained``) and the
    replica from the tf.distribute replica context (0 of 1 outside one): norbert's loop. A
    TPU's cores run outside any replica context and TF 1.15's API gives them no core number, so
    there, without ``numbered``, dropout stays ``tf.nn.dropout``, whose random state no
    checkpoint keeps.
    """
    if not config.bert_config.has_dropout or (config.use_tpu and numbered is None):
        return None
    seed = config.dropout_seed
    if seed is None:
        seed = tf.get_default_graph().seed or 0
    if numbered is not None:
        row = numbered[0]  # [2]: every row of the batch is the same
        return modeling.DropoutKey(seed, row[0], row[1], hosts)
    context = tf.distribute.get_replica_context()
    replica, count = 0, 1
    if context is not None:
        replica, count = context.replica_id_in_sync_group, context.num_replicas_in_sync
    return modeling.DropoutKey(seed, batches_trained(config.optimizer), replica, count)


def _input_hosts(config: ModelFnConfig, params: Optional[dict]) -> int:
    """The input hosts feeding the cores: TPUEstimator's TPUContext says on a TPU; else 1."""
    context = (params or {}).get("context")
    return int(context.num_hosts) if config.use_tpu and context is not None else 1


def build_model_fn(config: ModelFnConfig) -> Callable:
    def model_fn(features, labels, mode, params):
        del labels  # pretraining labels are features
        is_training = mode == TRAIN
        features = dict(features)
        numbered = features.pop(BATCH_NUMBER, None)  # dropout's alone: not the model's
        output = heads.pretraining_forward(
            config.bert_config, features, is_training, config.use_one_hot_embeddings,
            compute_dtype=precision.compute_dtype(config.precision),
            weighted_mean=replicas.weighted_mean,
            dropout_key=(dropout_key(config, numbered, _input_hosts(config, params))
                         if is_training else None),
            next_sentence_trained=config.next_sentence_trained,
        )
        train_op = learning_rate = None
        if mode == TRAIN:  # first: the optimizer's moments exist for a restore to fill
            train_op, learning_rate = create_train_op(
                output.total_loss, config.optimizer, config.use_tpu, loss_scale=config.loss_scale
            )
        if mode == TRAIN:
            scalars = {
                "learning_rate": learning_rate,
                "masked_lm_loss": output.masked_lm.loss,
                "next_sentence_loss": output.next_sentence.loss,
                "masked_lm_accuracy": _batch_masked_lm_accuracy(output, features),
            }
            if not config.next_sentence_trained:
                del scalars["next_sentence_loss"]
            if isinstance(config.loss_scale, precision.DynamicLossScale):
                # Logged so that a scale stuck low (many skipped steps) is visible.
                scalars["loss_scale"] = tf.get_collection(precision.LOSS_SCALE_COLLECTION)[0]
            return ModelSpec(mode=mode, loss=output.total_loss, train_op=train_op,
                             scalars=scalars)
        if mode == EVAL:
            trained = config.next_sentence_trained
            metrics = (heads.metrics_fn(trained), heads.metric_inputs(output, features, trained))
            return ModelSpec(mode=mode, loss=output.total_loss, eval_metrics=metrics)
        raise ValueError("pretraining has no %r mode: only train and eval" % mode)

    return model_fn
