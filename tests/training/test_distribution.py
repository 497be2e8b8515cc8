"""Mirrored training over 2 CPU devices computes what one device computes on the same batch."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

from norbert import NorbertError  # noqa: E402
from norbert.model import heads  # noqa: E402
from norbert.model.bert_config import BertConfig  # noqa: E402
from norbert.training import input_pipeline, loop, replicas  # noqa: E402
from norbert.training.distribution import DistributionConfig  # noqa: E402
from norbert.training.model_fn import ModelFnConfig, build_model_fn  # noqa: E402
from norbert.training.optimization import OptimizerConfig  # noqa: E402
from norbert.training.spec import RunConfig  # noqa: E402

TWO_CPUS = DistributionConfig(distribution="mirrored", num_cpu_replicas=2)


@pytest.fixture(scope="module")
def setup(dropout_free_run):
    root, init = dropout_free_run
    config = BertConfig.from_json_file(str(root / "c.json"))
    input_fn = input_pipeline.make_input_fn(input_pipeline.InputConfig(
        input_files=[str(root / "train.tfrecord")], max_seq_length=32,
        max_predictions_per_seq=5, is_training=True, seed=3))
    return root, config, input_fn, init


def _model_fn(config, optimizer, accumulation):
    return build_model_fn(ModelFnConfig(config, OptimizerConfig(
        learning_rate=1e-3, num_train_steps=10, num_warmup_steps=0, optimizer=optimizer,
        gradient_accumulation_steps=accumulation)))


WORD = "bert/embeddings/word_embeddings"


def _moved(trained, init):
    """How far training moved the word embeddings (largest change of one value)."""
    return float(np.max(np.abs(trained.get_tensor(WORD) - init.get_tensor(WORD))))


def _tolerance(moved):
    """Largest difference allowed between one device and two replicas.

    The replicas sum the gradient in another order, so a value whose gradient is a sum of
    nearly cancelling terms differs in its last digits. Adam's step divides by sqrt(v) + eps,
    which turns a small relative change of such a gradient into the same relative change of
    a step of size ~lr: measured up to 1.2e-5 (0.1% of how far training moved, 1.1e-2) for
    adamw, varying from run to run with the threads' order. 1% of the movement leaves room;
    1e-6 is a few float32 steps at 1.0 (LayerNorm's gamma under lamb, which barely moves).
    """
    return max(0.01 * moved, 1e-6)


def _train(setup, name, optimizer, accumulation, distribution):
    root, config, input_fn, init = setup
    result = loop.train(_model_fn(config, optimizer, accumulation), input_fn,
                        {"init_checkpoint": init},
                        RunConfig(output_dir=str(root / name), train_batch_size=8, seed=1), 3,
                        distribution)
    return tf.train.load_checkpoint(result.checkpoint), result.checkpoint


@pytest.mark.parametrize("optimizer,accumulation",
                         [("adamw", 1), ("adamw_exact", 1), ("lamb", 1), ("adamw", 2)])
def test_two_replicas_equal_one_device(setup, optimizer, accumulation):
    tag = "%s-%d" % (optimizer, accumulation)
    one, one_path = _train(setup, "one-" + tag, optimizer, accumulation, None)
    two, two_path = _train(setup, "two-" + tag, optimizer, accumulation, TWO_CPUS)
    names = [n for n, _ in tf.train.list_variables(one_path)]
    assert names == [n for n, _ in tf.train.list_variables(two_path)]  # Google's names
    assert not any("replica" in n for n in names)
    moved = _moved(one, tf.train.load_checkpoint(setup[3]))
    assert moved > 1e-5  # it trained
    for name in names:
        np.testing.assert_allclose(two.get_tensor(name), one.get_tensor(name), rtol=0,
                                   atol=_tolerance(moved), err_msg=name)


def test_per_replica_mean_loss_would_drift(setup, monkeypatch):
    """The global-batch denominator matters: the per-replica mean moves away from one device."""
    one, _ = _train(setup, "one-drift", "adamw_exact", 1, None)
    monkeypatch.setattr(replicas, "weighted_mean", heads.local_weighted_mean)
    two, _ = _train(setup, "two-drift", "adamw_exact", 1, TWO_CPUS)
    moved = _moved(one, tf.train.load_checkpoint(setup[3]))
    # Measured: 9.8e-3, about as far as training moved (1.1e-2).
    assert np.max(np.abs(two.get_tensor(WORD) - one.get_tensor(WORD))) > 10 * _tolerance(moved)


def test_batch_must_divide_among_replicas():
    with pytest.raises(NorbertError, match="--train_batch_size=7 does not divide among 2"):
        loop.check_batch_divides(7, 2)


@pytest.mark.parametrize("settings,message", [
    (dict(num_cpu_replicas=2), "--num_cpu_replicas needs --distribution=mirrored"),
    (dict(distribution="mirrored", all_reduce="ring"), "--all_reduce=ring"),
    (dict(distribution="multi_worker", all_reduce="hierarchical"), "--all_reduce=hierarchical"),
    (dict(distribution="mirrored", num_cpu_replicas=2, num_gpus=1), "exclude each other"),
    (dict(distribution="mirrored", num_cpu_replicas=2, all_reduce="nccl"), "needs GPUs"),
    (dict(num_gpus=-1), "--num_gpus must not be negative"),
])
def test_config_checks(settings, message):
    with pytest.raises(NorbertError, match=message):
        DistributionConfig(**settings)
