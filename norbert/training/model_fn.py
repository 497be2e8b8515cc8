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

A TPUEstimator batch tagged with its length bucket (``length_buckets.tagged``: fixed shapes,
``--length_buckets`` a list) runs the model in its bucket's branch (``length_buckets.switch``),
which also takes the gradients, so that the optimizer's update (outside the branches, shared)
sees the gradients of the batch cut to its bucket.
"""

import dataclasses
import functools
from typing import Callable, Dict, Optional, Tuple

import tensorflow.compat.v1 as tf
from norbert.data.features import MLM_NSP, OBJECTIVES
from norbert.errors import NorbertError
from norbert.model import heads
from norbert.model import modeling
from norbert.model import precision
from norbert.model.bert_config import BertConfig
from norbert.model.precision_config import FP32, DynamicLossScale, LossScale
from norbert.training import length_buckets, replicas
from norbert.training.config import OptimizerConfig
from norbert.training.optimization import (Computed, LossGradients, batches_trained,
                                           create_train_op)
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
    # Static loss scaling (a float; 1.0: none) or a DynamicLossScale, for float16.
    loss_scale: LossScale = 1.0
    # "fp32", "bf16" or "fp16": the activations' dtype (variables are float32 in all three).
    precision: str = FP32
    # Seed of the training dropout's masks; None: the graph's seed (the loop sets --seed as
    # the graph's), or 0 when the graph has none.
    dropout_seed: Optional[int] = None
    # What the records train (their sidecars say it): "mlm_nsp", masked LM and next sentence
    # (Google's); "mlm", masked LM alone: the next-sentence head is built but left out of the
    # loss (its variables keep their values) and out of the scalars and eval metrics.
    objective: str = MLM_NSP
    # The length buckets' boundaries (length_buckets.parse) that TPUEstimator's batches name by
    # their BUCKET feature (length_buckets.tagged): one branch of the model per bucket.
    length_buckets: Tuple[int, ...] = ()

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


def _step_tensors(config: ModelFnConfig, output, features, mode: str) -> Dict[str, object]:
    """What a step takes from the model's ``output``: ``loss`` and, training, the scalars it
    logs; evaluating, ``metric_inputs``, the eval metrics' inputs (a list)."""
    trained = config.next_sentence_trained
    tensors = {"loss": output.total_loss}
    if mode == EVAL:
        tensors["metric_inputs"] = heads.metric_inputs(output, features, trained)
        return tensors
    tensors["masked_lm_loss"] = output.masked_lm.loss
    tensors["masked_lm_accuracy"] = _batch_masked_lm_accuracy(output, features)
    if trained:
        tensors["next_sentence_loss"] = output.next_sentence.loss
    return tensors


def _bucketed_step(config: ModelFnConfig, features, mode: str, forward: Callable
                   ) -> Tuple[Dict[str, object], Optional[Computed]]:
    """(``_step_tensors``, training the gradients for ``create_train_op``, else None) of a
    TPUEstimator batch tagged with its length bucket: the model runs in the bucket's branch
    (``length_buckets.switch``), at the bucket's length, and, training, so do the gradients,
    so that no activation of a bucket outlives its branch."""
    gradients = LossGradients(config.loss_scale) if mode == TRAIN else None
    first = {}  # the first branch's variables, and which of them its loss reaches

    def branch(short):
        tensors = _step_tensors(config, forward(short), short, mode)
        if gradients is None:
            return tensors
        variables = first.setdefault("variables", tf.trainable_variables())
        grads = gradients(tensors["loss"], variables)
        # The same variables reach the loss in every bucket (None: the next-sentence head in
        # masked-LM-only runs): those gradients are returned, dense ([V, H] for embeddings).
        reached = first.setdefault("reached", [g is not None for g in grads])
        if reached != [g is not None for g in grads]:
            raise ValueError("the buckets' models reach other variables")
        return tensors, [tf.convert_to_tensor(g) for g in grads if g is not None]

    out = length_buckets.switch(features, config.length_buckets, branch)
    if gradients is None:
        return out, None
    tensors, dense = out
    dense = iter(dense)
    grads = [next(dense) if r else None for r in first["reached"]]
    return tensors, Computed(gradients, grads, first["variables"])


def build_model_fn(config: ModelFnConfig) -> Callable:
    def model_fn(features, labels, mode, params):
        del labels  # pretraining labels are features
        is_training = mode == TRAIN
        features = dict(features)
        numbered = features.pop(BATCH_NUMBER, None)  # dropout's alone: not the model's
        forward = functools.partial(
            heads.pretraining_forward, config.bert_config, is_training=is_training,
            use_one_hot_embeddings=config.use_one_hot_embeddings,
            compute_dtype=precision.compute_dtype(config.precision),
            weighted_mean=replicas.weighted_mean,
            dropout_key=(dropout_key(config, numbered, _input_hosts(config, params))
                         if is_training else None),
            next_sentence_trained=config.next_sentence_trained,
        )
        if mode not in (TRAIN, EVAL):
            raise ValueError("pretraining has no %r mode: only train and eval" % mode)
        computed = None
        if length_buckets.BUCKET in features:
            tensors, computed = _bucketed_step(config, features, mode, forward)
        else:
            tensors = _step_tensors(config, forward(features), features, mode)
        loss = tensors.pop("loss")
        if mode == EVAL:
            metrics = (heads.metrics_fn(config.next_sentence_trained), tensors["metric_inputs"])
            return ModelSpec(mode=mode, loss=loss, eval_metrics=metrics)
        # The optimizer's moments exist before the engine's restore, for it to fill.
        train_op, learning_rate = create_train_op(
            loss, config.optimizer, config.use_tpu, loss_scale=config.loss_scale,
            computed=computed)
        scalars = dict(tensors, learning_rate=learning_rate)
        if isinstance(config.loss_scale, DynamicLossScale):
            # Logged so that a scale stuck low (many skipped steps) is visible.
            scalars["loss_scale"] = tf.get_collection(precision.LOSS_SCALE_COLLECTION)[0]
        return ModelSpec(mode=mode, loss=loss, train_op=train_op, scalars=scalars)

    return model_fn
