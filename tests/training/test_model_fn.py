"""The pretraining model_fn: training dropout keyed by the run's checkpointed state, so that a
resumed run draws the masks the uninterrupted run would have drawn."""

import glob
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

from helpers import tiny_bert_config  # noqa: E402
from norbert.model.bert_config import BertConfig  # noqa: E402
from norbert.training import input_pipeline, loop  # noqa: E402
from norbert.training.data_position import Position, Stream  # noqa: E402
from norbert.training.distribution import DistributionConfig  # noqa: E402
from norbert.training.model_fn import ModelFnConfig, build_model_fn, dropout_key  # noqa: E402
from norbert.training.config import OptimizerConfig  # noqa: E402
from norbert.training.spec import EVAL, RunConfig  # noqa: E402
from norbert.training.start import find_start  # noqa: E402
from norbert.training.stop import StopSignals  # noqa: E402

STEPS = 6
# The data stream both runs share; restored on resume as the run plan would.
POSITION = Position(Stream(1, 3, ()), restore=True)


@pytest.fixture(scope="module")
def with_dropout(dropout_free_run, tmp_path_factory):
    """(records' input_fn, the tiny config with dropout 0.1, an initial checkpoint)."""
    root, init = dropout_free_run
    path = tmp_path_factory.mktemp("dropout") / "c.json"
    path.write_text(tiny_bert_config())  # hidden and attention dropout 0.1
    config = BertConfig.from_json_file(str(path))
    assert config.hidden_dropout_prob == 0.1 and config.attention_probs_dropout_prob == 0.1
    input_fn = input_pipeline.make_input_fn(input_pipeline.InputConfig(
        input_files=[str(root / "train.tfrecord")], max_seq_length=32,
        max_predictions_per_seq=5, is_training=True, seed=3))
    return input_fn, config, init


class StopAfterBatches(StopSignals):
    """A SIGTERM that comes during the ``batches``-th batch: one device's loop asks once after
    each batch whether a signal came (and again, to name it, once one did)."""

    def __init__(self, batches):
        self._asked, self._batches = 0, batches
        super().__init__()

    @property
    def received(self):
        self._asked += 1
        return "SIGTERM" if self._asked >= self._batches else None

    @received.setter
    def received(self, value):
        pass


def _train(setup, output_dir, accumulation, max_steps, distribution=None, stop=None):
    input_fn, config, init = setup
    model_fn = build_model_fn(ModelFnConfig(config, OptimizerConfig(
        learning_rate=1e-3, num_train_steps=STEPS, num_warmup_steps=0,
        gradient_accumulation_steps=accumulation)))
    run = RunConfig(output_dir=str(output_dir), train_batch_size=8, seed=1,
                    save_checkpoints_steps=2, log_every_steps=1, log_every_secs=0)
    return loop.train(model_fn, input_fn, {}, run, max_steps, distribution,
                      start=find_start(str(output_dir), init), stop=stop, position=POSITION)


def _losses(output_dir):
    """{step: loss} of every TensorBoard events file in ``output_dir``."""
    found = {}
    for events in glob.glob(os.path.join(str(output_dir), "events.out.*")):
        for event in tf.train.summary_iterator(events):
            for value in event.summary.value:
                if value.tag == "loss":
                    assert event.step not in found, "step %d logged twice" % event.step
                    found[event.step] = value.simple_value
    return found


def _assert_same_run(whole, resumed):
    losses, again = _losses(whole), _losses(resumed)
    assert sorted(losses) == list(range(1, STEPS + 1)) and sorted(again) == sorted(losses)
    for step in losses:
        assert abs(losses[step] - again[step]) < 1e-6, (step, losses[step], again[step])
    first = tf.train.load_checkpoint(loop.latest_checkpoint(str(whole)))
    second = tf.train.load_checkpoint(loop.latest_checkpoint(str(resumed)))
    names = sorted(first.get_variable_to_shape_map())
    assert names == sorted(second.get_variable_to_shape_map())
    for name in names:
        a, b = first.get_tensor(name), second.get_tensor(name)
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            assert np.max(np.abs(a - b), initial=0.0) < 1e-6, name
        else:
            assert np.array_equal(a, b), name


# Also shown through run_pretraining, data position and all, by
# tests/training/test_data_position.py (dropout on): here in the slow suite.
@pytest.mark.slow
def test_a_resumed_run_draws_the_uninterrupted_runs_dropout(with_dropout, tmp_path):
    _train(with_dropout, tmp_path / "whole", 1, STEPS)
    stopped = _train(with_dropout, tmp_path / "resumed", 1, 3)
    assert stopped.global_step == 3
    _train(with_dropout, tmp_path / "resumed", 1, STEPS)
    _assert_same_run(tmp_path / "whole", tmp_path / "resumed")
    # Dropout is on: a run without it trains otherwise (the masks above did something).
    assert _losses(tmp_path / "whole")[1] != pytest.approx(
        _eval_free_loss(with_dropout), abs=1e-6)


def _eval_free_loss(setup):
    """The first batch's loss of the initial weights without dropout."""
    input_fn, config, init = setup
    with tf.Graph().as_default():
        features = tf.data.make_one_shot_iterator(input_fn({"batch_size": 8})).get_next()
        spec = build_model_fn(ModelFnConfig(config, OptimizerConfig()))(
            features, None, EVAL, {})
        tf.train.init_from_checkpoint(init, {"/": "/"})
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return float(sess.run(spec.loss))


def test_a_run_stopped_between_accumulated_batches_resumes_their_dropout(with_dropout, tmp_path):
    _train(with_dropout, tmp_path / "whole", 2, STEPS)
    # SIGTERM in the 7th micro-batch: saved at step 3 with one micro-batch of the 4th update
    # summed (and counted in gradient_accumulation/micro_step).
    stopped = _train(with_dropout, tmp_path / "resumed", 2, STEPS, stop=StopAfterBatches(7))
    assert stopped.stopped_by == "SIGTERM" and stopped.global_step == 3
    saved = tf.train.load_checkpoint(stopped.checkpoint)
    assert saved.get_tensor("gradient_accumulation/micro_step") == 7
    _train(with_dropout, tmp_path / "resumed", 2, STEPS)
    _assert_same_run(tmp_path / "whole", tmp_path / "resumed")


# Also shown through run_pretraining, data position and all, by
# tests/training/test_data_position.py (dropout on): here in the slow suite.
@pytest.mark.slow
def test_replicas_resume_their_dropout(with_dropout, tmp_path):
    two = DistributionConfig(distribution="mirrored", num_cpu_replicas=2)
    _train(with_dropout, tmp_path / "whole", 1, 4, two)
    _train(with_dropout, tmp_path / "resumed", 1, 2, two)
    _train(with_dropout, tmp_path / "resumed", 1, 4, two)
    losses, again = _losses(tmp_path / "whole"), _losses(tmp_path / "resumed")
    assert sorted(losses) == [1, 2, 3, 4] and sorted(again) == sorted(losses)
    assert all(abs(losses[s] - again[s]) < 1e-6 for s in losses), (losses, again)


def test_the_key_holds_seed_batches_and_replica_and_only_when_there_is_dropout(with_dropout):
    _, config, _ = with_dropout
    optimizer = OptimizerConfig(gradient_accumulation_steps=3)
    with tf.Graph().as_default():
        tf.set_random_seed(42)
        key = dropout_key(ModelFnConfig(config, optimizer))
        assert (key.seed, key.replicas) == (42, 1)
        assert dropout_key(ModelFnConfig(config, optimizer, dropout_seed=7)).seed == 7
        step = tf.train.get_or_create_global_step()
        counter = [v for v in tf.global_variables() if "micro_step" in v.op.name][0]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            sess.run([step.assign(5), counter.assign(17)])
            # 5 updates of 3 micro-batches, and 17 % 3 = 2 summed into the 6th.
            assert sess.run(key.batches) == 17 and sess.run(tf.cast(key.replica, tf.int64)) == 0
    free = config.replace(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    with tf.Graph().as_default():
        assert dropout_key(ModelFnConfig(free, optimizer)) is None
        assert dropout_key(ModelFnConfig(config, optimizer, use_tpu=True)) is None
        assert tf.global_variables() == []  # no counter read or made for nothing
    with tf.Graph().as_default():
        assert dropout_key(ModelFnConfig(config, optimizer)).seed == 0  # no graph seed


def test_on_tpu_estimator_the_key_is_the_batch_number_its_input_carries(tmp_path):
    """Two cores' batches (two numbers of one host, or one number on two hosts) draw masks of
    their own; the same number draws the same masks, in any graph, with no counter read."""
    path = tmp_path / "c.json"
    path.write_text(tiny_bert_config())  # dropout 0.1
    config = ModelFnConfig(BertConfig.from_json_file(str(path)), OptimizerConfig(),
                           use_tpu=True)

    def masks(number, host):
        with tf.Graph().as_default():
            numbered = tf.constant([[number, host]] * 4, tf.int32)  # [B, 2], as tpu.numbered
            key = dropout_key(config, numbered, hosts=2)
            dropped = [key.apply(tf.ones([4, 64]), 0.5) for _ in range(2)]  # two sites
            assert tf.global_variables() == []  # the number is the key: no counter
            with tf.Session() as sess:
                return sess.run(dropped)

    first = masks(3, 0)
    assert all(np.array_equal(a, b) for a, b in zip(first, masks(3, 0)))
    for other in (masks(4, 0), masks(3, 1)):
        assert not any(np.array_equal(a, b) for a, b in zip(first, other))
    assert not np.array_equal(first[0], first[1])  # and each site its own


def test_each_replica_keys_its_own_dropout(with_dropout):
    from norbert.training.distribution import make_strategy

    _, config, _ = with_dropout
    two = DistributionConfig(distribution="mirrored", num_cpu_replicas=2)
    with tf.Graph().as_default():
        strategy = make_strategy(two)
        with strategy.scope():
            tf.train.get_or_create_global_step()

            def replica_key():
                key = dropout_key(ModelFnConfig(config, OptimizerConfig()))
                assert key.replicas == 2
                return tf.cast(key.replica, tf.int64), key.batches

            replica, batches = strategy.extended.call_for_each_replica(replica_key)
            ids = strategy.experimental_local_results(replica)
            counts = strategy.experimental_local_results(batches)
        with tf.Session(config=loop.session_config(RunConfig("unused"), two)) as sess:
            sess.run(tf.global_variables_initializer())
            assert sess.run([ids, counts]) == [(0, 1), (0, 0)]
