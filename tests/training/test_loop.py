"""The CPU/GPU loop: training, checkpoints, resume, NaN stop, SIGTERM, evaluation."""

import os
import signal

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

from norbert import NorbertError  # noqa: E402
from norbert.training.loop import (  # noqa: E402
    evaluate, latest_checkpoint, train, write_eval_results,
)
from norbert.training.spec import EVAL, ModelSpec, RunConfig  # noqa: E402

RNG = np.random.RandomState(0)
X = RNG.randn(64, 3).astype(np.float32)
Y = (X @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).astype(np.float32)


def input_fn(params):
    data = tf.data.Dataset.from_tensor_slices({"x": X, "y": Y})
    if params.get("repeat", True):
        data = data.repeat()
    return data.batch(params["batch_size"], drop_remainder=True)


def model_fn(features, labels, mode, params):
    w = tf.get_variable("linear/kernel", [3], initializer=tf.zeros_initializer())
    b = tf.get_variable("linear/bias", [], initializer=tf.zeros_initializer())
    pred = tf.reduce_sum(features["x"] * w, axis=1) + b
    loss = tf.reduce_mean(tf.square(pred - features["y"]))
    if params.get("poison_at") is not None:  # turns the loss to NaN from that step on
        step = tf.train.get_or_create_global_step()
        poison = tf.where(step >= params["poison_at"], np.float32(np.nan), np.float32(0.0))
        loss = loss + tf.stop_gradient(poison)
    if params.get("sigterm_at") is not None:  # the machine is preempted at that step
        step = tf.train.get_or_create_global_step()

        def maybe_kill(s):
            if s == params["sigterm_at"]:
                os.kill(os.getpid(), signal.SIGTERM)
            return s

        loss = loss + 0.0 * tf.cast(tf.py_func(maybe_kill, [step], tf.int64), tf.float32)
    if params.get("init_checkpoint"):
        tf.train.init_from_checkpoint(params["init_checkpoint"], {"linear/": "linear/"})
    step = tf.train.get_or_create_global_step()
    train_op = tf.group(
        tf.train.GradientDescentOptimizer(0.1).minimize(loss), step.assign_add(1)
    )

    def metric_fn(pred, y):
        return {"mse": tf.metrics.mean_squared_error(y, pred)}

    return ModelSpec(
        mode=mode, loss=loss, train_op=train_op, eval_metrics=(metric_fn, [pred, features["y"]]),
        scalars={"bias": b},
    )


def _config(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path / "run"), save_checkpoints_steps=10, log_every_steps=5,
                train_batch_size=8, eval_batch_size=16, keep_checkpoint_max=2)
    base.update(kw)
    return RunConfig(**base)


def test_trains_saves_and_resumes(tmp_path):
    config = _config(tmp_path)
    first = train(model_fn, input_fn, {}, config, max_steps=25)
    assert first.global_step == 25 and not first.interrupted
    assert first.checkpoint.endswith("model.ckpt-25")
    kept = sorted(f for f in os.listdir(config.output_dir) if f.endswith(".index"))
    assert kept == ["model.ckpt-20.index", "model.ckpt-25.index"]  # keep_checkpoint_max=2
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(config.output_dir))
    second = train(model_fn, input_fn, {}, config, max_steps=60)
    assert second.global_step == 60
    assert second.loss < first.loss < 10  # it kept learning from where it stopped
    assert train(model_fn, input_fn, {}, config, max_steps=60).global_step == 60  # nothing to do


def test_output_dir_wins_over_init_checkpoint(tmp_path):
    donor = train(model_fn, input_fn, {}, _config(tmp_path, output_dir=str(tmp_path / "d")), 30)
    config = _config(tmp_path)
    seeded = train(model_fn, input_fn, {"init_checkpoint": donor.checkpoint}, config, 1)
    assert seeded.loss < 1.0  # started from the donor's weights, not from zero
    # A broken --init_checkpoint no longer matters once the run has its own checkpoint.
    resumed = train(model_fn, input_fn, {"init_checkpoint": "/nonexistent"}, config, 3)
    assert resumed.global_step == 3


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    config = _config(tmp_path)
    with pytest.raises(NorbertError, match=r"loss became nan at step 1[56];.*model.ckpt-10"):
        train(model_fn, input_fn, {"poison_at": 15}, config, max_steps=40)
    assert latest_checkpoint(config.output_dir).endswith("model.ckpt-10")


def test_sigterm_saves_and_stops(tmp_path):
    config = _config(tmp_path)
    result = train(model_fn, input_fn, {"sigterm_at": 6}, config, max_steps=1000)
    assert result.interrupted
    assert result.global_step == 7  # the step in flight finished, then the loop saved
    assert latest_checkpoint(config.output_dir).endswith("model.ckpt-7")


def test_data_running_out_ends_training(tmp_path):
    config = _config(tmp_path)
    result = train(model_fn, input_fn, {"repeat": False}, config, max_steps=1000)
    assert result.global_step == 64 // 8


def test_evaluate_and_eval_results_file(tmp_path):
    config = _config(tmp_path)
    trained = train(model_fn, input_fn, {}, config, max_steps=40)
    result = evaluate(model_fn, input_fn, {"repeat": False}, config, trained.checkpoint)
    assert set(result) == {"mse", "loss", "global_step"}
    assert result["global_step"] == 40
    assert result["mse"] == pytest.approx(result["loss"], rel=1e-5)  # same quantity, all batches
    limited = evaluate(model_fn, input_fn, {}, config, trained.checkpoint, max_steps=2)
    assert limited["global_step"] == 40
    path = str(tmp_path / "eval_results.txt")
    write_eval_results(path, result)
    lines = open(path).read().splitlines()
    assert [line.split(" = ")[0] for line in lines] == ["global_step", "loss", "mse"]
    assert lines[0] == "global_step = 40"
    assert EVAL == tf.estimator.ModeKeys.EVAL if hasattr(tf, "estimator") else True


def test_session_config_turns_on_xla_for_cpu_only_when_asked(monkeypatch):
    from norbert.training.loop import session_config

    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_min_cluster_size=2")
    plain = session_config(RunConfig(output_dir="unused"))
    assert plain.graph_options.optimizer_options.global_jit_level == tf.OptimizerOptions.DEFAULT
    assert os.environ["TF_XLA_FLAGS"] == "--tf_xla_min_cluster_size=2"
    for _ in range(2):  # a second call does not add the flag twice
        jit = session_config(RunConfig(output_dir="unused", use_xla=True))
    assert jit.graph_options.optimizer_options.global_jit_level == tf.OptimizerOptions.ON_1
    # the user's own XLA flags are kept
    assert os.environ["TF_XLA_FLAGS"] == "--tf_xla_min_cluster_size=2 --tf_xla_cpu_global_jit"
