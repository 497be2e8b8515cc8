"""The pretraining run's own configs check themselves, naming the flag; no TensorFlow."""

import pytest

from norbert.errors import NorbertError
from norbert.training.config import (ENGINES, LOOP, OPTIMIZERS, OptimizerConfig,
                                     PretrainingConfig, TpuConfig)

FILES = dict(input_file="train.tfrecord", bert_config_file="bert_config.json")


@pytest.mark.parametrize("cls, changes, message", [
    (PretrainingConfig, dict(FILES, input_file=""), "--input_file is required"),
    (PretrainingConfig, dict(FILES, bert_config_file=""), "--bert_config_file is required"),
    (PretrainingConfig, dict(FILES, engine="estimator"), "--engine=estimator is not known"),
    (PretrainingConfig, dict(FILES, init_optimizer_state=True),
     "--init_optimizer_state needs --init_checkpoint"),
    (PretrainingConfig, dict(FILES, keep_global_step=True),
     "--keep_global_step needs --init_checkpoint"),
    (PretrainingConfig, dict(FILES, max_eval_steps=0), "--max_eval_steps=0 must be at least 1"),
    (PretrainingConfig, dict(FILES, length_buckets="128,64"),
     "--length_buckets=128,64: the lengths must be positive and ascending"),
    (PretrainingConfig, dict(FILES, length_buckets="256", max_seq_length=128),
     "--length_buckets=256: 256 is longer than --max_seq_length=128"),
    (PretrainingConfig, dict(FILES, eval_input_file="nb=a,nb=b"),
     "--eval_input_file: group nb is named twice"),
    (OptimizerConfig, dict(optimizer="sgd"), "--optimizer=sgd is not known"),
    (OptimizerConfig, dict(learning_rate=0.0), "--learning_rate must be positive"),
    (OptimizerConfig, dict(num_train_steps=0), "--num_train_steps must be positive"),
    (OptimizerConfig, dict(num_warmup_steps=-1), "--num_warmup_steps must not be negative"),
    (OptimizerConfig, dict(gradient_accumulation_steps=0), "--gradient_accumulation_steps"),
    (OptimizerConfig, dict(beta_1=1.0), r"--beta_1=1 must be in \[0, 1\), for example 0.9"),
    (OptimizerConfig, dict(beta_2=-0.5), r"--beta_2=-0.5 must be in \[0, 1\), for example 0.999"),
    (OptimizerConfig, dict(epsilon=0.0), "--epsilon=0 must be positive"),
    (OptimizerConfig, dict(weight_decay_rate=-0.01), "--weight_decay_rate=-0.01 must not be"),
    (OptimizerConfig, dict(clip_norm=-1.0), "--clip_norm=-1 must not be negative"),
    (OptimizerConfig, dict(poly_power=-1.0), "--poly_power=-1 must not be negative"),
    (TpuConfig, dict(num_tpu_cores=0), "--num_tpu_cores=0 must be at least 1"),
    (TpuConfig, dict(iterations_per_loop=0), "--iterations_per_loop=0 must be at least 1"),
])
def test_bad_settings(cls, changes, message):
    with pytest.raises(NorbertError, match=message):
        cls(**changes)


def test_the_defaults_are_googles_and_valid():
    config = PretrainingConfig(**FILES)
    assert (config.max_seq_length, config.max_predictions_per_seq) == (128, 20)
    assert config.engine == LOOP and LOOP in ENGINES
    optimizer = OptimizerConfig()
    assert (optimizer.learning_rate, optimizer.num_train_steps, optimizer.num_warmup_steps) == (
        5e-5, 100000, 10000)
    assert optimizer.optimizer in OPTIMIZERS
    assert PretrainingConfig(**FILES, init_checkpoint="ckpt", keep_global_step=True)
    # The edges that mean something: no momentum, no clipping, no decay, a constant rate.
    assert OptimizerConfig(beta_1=0.0, clip_norm=0.0, weight_decay_rate=0.0, poly_power=0.0)


def test_the_input_batch_is_one_cores_on_a_tpu():
    assert TpuConfig(use_tpu=True, num_tpu_cores=8).input_batch_size(64) == 8
    assert TpuConfig(num_tpu_cores=8).input_batch_size(64) == 64  # TPUEstimator on the CPU


def test_a_tpu_batch_must_divide_among_the_cores():
    tpu = TpuConfig(use_tpu=True, num_tpu_cores=8)
    tpu.check_batch_divides(64, "train_batch_size")
    with pytest.raises(NorbertError, match="--eval_batch_size=12 does not divide among "
                                           "--num_tpu_cores=8: use a multiple of 8"):
        tpu.check_batch_divides(12, "eval_batch_size")
    TpuConfig(num_tpu_cores=8).check_batch_divides(12, "train_batch_size")  # not on a TPU
