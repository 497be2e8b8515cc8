"""The CPU/GPU loop: training, checkpoints, resume, NaN stop, SIGTERM, evaluation."""

import logging
import os
import signal
import time

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

import reference_shim  # noqa: E402
from norbert import NorbertError  # noqa: E402
from norbert.training.loop import (  # noqa: E402
    evaluate, latest_checkpoint, train, write_eval_results,
)
from norbert.training.start import Start, find_start  # noqa: E402
from norbert.training.stop import StopSignals  # noqa: E402
from norbert.training.distribution import DistributionConfig  # noqa: E402
from norbert.training.spec import EVAL, TRAIN, ModelSpec, RunConfig  # noqa: E402

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
            if s == params["sigterm_at"] and not params["killed"]:  # once, whatever the replicas
                params["killed"].append(s)
                os.kill(os.getpid(), signal.SIGTERM)
            return s

        loss = loss + 0.0 * tf.cast(tf.py_func(maybe_kill, [step], tf.int64), tf.float32)
    step = tf.train.get_or_create_global_step()
    with tf.control_dependencies([loss]):  # loss (and sigterm_at) read the step before it moves
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


def test_trains_saves_and_resumes(tmp_path, caplog):
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
    caplog.clear()
    caplog.set_level(logging.INFO, logger="absl")
    assert train(model_fn, input_fn, {}, config, max_steps=60).global_step == 60
    assert "already at step 60 of 60; nothing to train" in caplog.text


def test_output_dir_wins_over_init_checkpoint(tmp_path):
    donor = train(model_fn, input_fn, {}, _config(tmp_path, output_dir=str(tmp_path / "d")), 30)
    config = _config(tmp_path)
    seeded = train(model_fn, input_fn, {}, config, 1,
                   start=find_start(config.output_dir, donor.checkpoint))
    assert seeded.loss < 1.0  # started from the donor's weights, not from zero
    # A broken --init_checkpoint no longer matters once the run has its own checkpoint.
    start = find_start(config.output_dir, "/nonexistent")
    assert start.resume and start.init_checkpoint is None
    resumed = train(model_fn, input_fn, {}, config, 3, start=start)
    assert resumed.global_step == 3


def test_init_settings_are_not_params(tmp_path):
    with pytest.raises(ValueError, match="start=Start"):
        train(model_fn, input_fn, {"init_checkpoint": "x"}, _config(tmp_path), 1)
    with pytest.raises(ValueError, match="not both"):
        Start(resume=("a",), init_checkpoint="b")
    with pytest.raises(ValueError, match="init_checkpoint, which is unset"):
        Start(keep_global_step=True)


TWO_CPUS = DistributionConfig(distribution="mirrored", num_cpu_replicas=2)


@pytest.mark.parametrize("distribution", [None, TWO_CPUS], ids=["one device", "2 replicas"])
def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path,
                                                                              distribution):
    config = _config(tmp_path)
    with pytest.raises(NorbertError, match=r"loss became nan at step 1[56];.*model.ckpt-10"):
        train(model_fn, input_fn, {"poison_at": 15}, config, 40, distribution)
    assert latest_checkpoint(config.output_dir).endswith("model.ckpt-10")


@pytest.mark.parametrize("distribution", [None, TWO_CPUS], ids=["one device", "2 replicas"])
def test_sigterm_saves_and_stops(tmp_path, distribution):
    config = _config(tmp_path)
    result = train(model_fn, input_fn, {"sigterm_at": 6, "killed": []}, config, 1000,
                   distribution)
    assert result.interrupted
    # Signalled during step 7: it finished, then the loop saved. Replicas (and workers) agree
    # on the stop through the next step's all-reduce, so they take one more.
    stop = 7 if distribution is None else 8
    assert result.global_step == stop
    assert latest_checkpoint(config.output_dir).endswith("model.ckpt-%d" % stop)


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


def test_modes_are_the_strings_of_tf_estimator():
    """A model_fn gets its mode from the loop or from TPUEstimator: the same strings."""
    assert (TRAIN, EVAL) == ("train", "eval")
    if not reference_shim.has_estimator():
        pytest.skip("tf.estimator.ModeKeys needs tf.estimator (TensorFlow <= 2.15)")
    assert (TRAIN, EVAL) == (tf.estimator.ModeKeys.TRAIN, tf.estimator.ModeKeys.EVAL)


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


def _damage(prefix, part, how):
    """Cuts ``prefix``'s .index or .data file short, or flips one byte in its middle."""
    path = prefix + (".index" if part == "index" else ".data-00000-of-00001")
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if how == "cut":
        data = data[:len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))


@pytest.mark.parametrize("part, how", [("data", "cut"), ("index", "cut"), ("data", "flip")])
def test_resume_passes_over_a_damaged_checkpoint(tmp_path, caplog, part, how):
    config = _config(tmp_path, keep_checkpoint_max=3)
    train(model_fn, input_fn, {}, config, max_steps=30)
    newest = os.path.join(config.output_dir, "model.ckpt-30")
    _damage(newest, part, how)
    caplog.set_level("INFO")
    resumed = train(model_fn, input_fn, {}, config, max_steps=35)
    assert resumed.global_step == 35
    assert "skipping the damaged checkpoint %s" % newest in caplog.text
    assert "restored %s" % os.path.join(config.output_dir, "model.ckpt-20") in caplog.text
    # The checkpoints from before the resume stay counted: keep_checkpoint_max=3 still holds.
    kept = sorted(f for f in os.listdir(config.output_dir) if f.endswith(".index"))
    assert kept == ["model.ckpt-20.index", "model.ckpt-30.index", "model.ckpt-35.index"]
    for step in (20, 30, 35):
        reader = tf.train.load_checkpoint(os.path.join(config.output_dir, "model.ckpt-%d" % step))
        assert int(reader.get_tensor("global_step")) == step  # 30 saved anew, intact


def test_every_checkpoint_damaged_is_an_error(tmp_path):
    config = _config(tmp_path, keep_checkpoint_max=2)
    train(model_fn, input_fn, {}, config, max_steps=20)
    for step in (10, 20):
        _damage(os.path.join(config.output_dir, "model.ckpt-%d" % step), "index", "cut")
    with pytest.raises(NorbertError, match="every checkpoint there is damaged"):
        train(model_fn, input_fn, {}, config, max_steps=30)
    assert not any("ckpt-3" in f for f in os.listdir(config.output_dir))


def _record_input(path):
    """An input_fn over a TFRecord file of X and Y that can name the damage it meets."""
    from norbert.training.input_pipeline import InputConfig, RecordInput

    def fn(params):
        spec = {"x": tf.FixedLenFeature([3], tf.float32), "y": tf.FixedLenFeature([], tf.float32)}
        records = tf.data.TFRecordDataset([path])
        records = records.map(lambda r: tf.parse_single_example(r, spec))
        return records.batch(params["batch_size"], drop_remainder=True)

    return RecordInput(InputConfig([path], 1, 1, is_training=False), fn)


def _records_with_a_flipped_byte(tmp_path, damaged_record):
    from norbert.data import tfrecord

    framed = [tfrecord.frame(tfrecord.encode_example(
        {"x": (tfrecord.FLOAT, X[i]), "y": (tfrecord.FLOAT, [Y[i]])})) for i in range(len(X))]
    data = bytearray(b"".join(framed))
    start = sum(len(f) for f in framed[:damaged_record - 1])
    data[start + 20] ^= 0xFF  # inside the data: the data checksum fails
    path = str(tmp_path / "records.tfrecord")
    with open(path, "wb") as f:
        f.write(bytes(data))
    return path, start


def test_a_damaged_record_stops_training_after_saving_the_last_good_state(tmp_path):
    path, start = _records_with_a_flipped_byte(tmp_path, 40)
    config = _config(tmp_path, save_checkpoints_steps=3)
    # Batches of 8: steps 1-4 read records 1-32; step 5 meets record 40. The run saved at
    # step 3; step 4 is the last good state, saved before the error.
    expected = (r"%s is damaged: record 40 \(at byte %d\) is corrupt \(its data fail their "
                r"checksum\); stopped at step 4 after saving it, the last good checkpoint is "
                r"%s\." % (path, start, os.path.join(config.output_dir, "model.ckpt-4")))
    with pytest.raises(NorbertError, match=expected):
        train(model_fn, _record_input(path), {}, config, max_steps=100)
    assert latest_checkpoint(config.output_dir).endswith("model.ckpt-4")
    assert not any("ckpt-5" in f for f in os.listdir(config.output_dir))


def test_a_damaged_record_stops_evaluation(tmp_path):
    path, _ = _records_with_a_flipped_byte(tmp_path, 40)
    config = _config(tmp_path)
    trained = train(model_fn, input_fn, {}, config, max_steps=10)
    with pytest.raises(NorbertError, match=r"records.tfrecord is damaged: record 40 .*evaluate "
                                           r"again"):
        evaluate(model_fn, _record_input(path), {}, config, trained.checkpoint)
    # Without a file list to look in, TensorFlow's own words.
    with pytest.raises(NorbertError, match=r"a record of the evaluation data is damaged "
                                           r"\(corrupted record at \d+\)"):
        evaluate(model_fn, _record_input(path)._input_fn, {}, config, trained.checkpoint)


def test_evaluate_from_an_init_checkpoint_leaves_global_step_at_0(tmp_path):
    config = _config(tmp_path)
    trained = train(model_fn, input_fn, {}, config, max_steps=20)
    full = evaluate(model_fn, input_fn, {}, config, trained.checkpoint, max_steps=2)
    seeded = evaluate(model_fn, input_fn, {}, config, trained.checkpoint, max_steps=2,
                      restore_step=False)
    assert (full["global_step"], seeded["global_step"]) == (20, 0)
    assert seeded["mse"] == full["mse"]


def _sigterm_to_self():
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(100):  # the handler runs at the next bytecode of the main thread
        time.sleep(0.01)


def test_a_stop_signal_is_recorded_never_raised_and_acted_on_at_safe_points(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        # Code running when the signal lands (TensorFlow's, a library's) goes on undisturbed.
        _sigterm_to_self()
        assert stop.received == "SIGTERM"
        # Outside the loop, a safe point ends the run through its finally blocks.
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            stop.check()
        # Handed to the loop: one step, a save, a stop.
        result = train(model_fn, input_fn, {}, _config(tmp_path), max_steps=1000, stop=stop)
        assert result.interrupted and result.stopped_by == "SIGTERM"
        assert result.global_step == 1
        # A second signal means "now": it raises at once.
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            _sigterm_to_self()
    assert latest_checkpoint(_config(tmp_path).output_dir).endswith("model.ckpt-1")
    assert signal.getsignal(signal.SIGTERM) == before  # the handler from before is back


def test_evaluation_stops_between_batches_on_a_recorded_signal(tmp_path):
    config = _config(tmp_path)
    trained = train(model_fn, input_fn, {}, config, max_steps=10)
    stop = StopSignals(received="SIGINT")
    with pytest.raises(KeyboardInterrupt, match="SIGINT"):
        evaluate(model_fn, input_fn, {}, config, trained.checkpoint, max_steps=2, stop=stop)
