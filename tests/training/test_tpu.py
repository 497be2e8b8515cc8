"""TPUEstimator (on the CPU): a stopped run resumes on the batches an uninterrupted run trains
on, with the data position saved beside every checkpoint, and past a damaged newest one."""

import glob
import os
import shutil
import signal

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

import reference_shim  # noqa: E402
from helpers import english_records, read_positioned_batches  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not reference_shim.has_estimator(),
                       reason="TPUEstimator needs tf.estimator (TensorFlow <= 2.15)"),
    # A high learning rate from --init_checkpoint: meant, for steps that differ visibly.
    pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning"),
]

STEPS = 6
LOSSES = ("masked_lm_loss", "next_sentence_loss")  # written every step by the host call


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory, dropout_free_run, dropout_config, corpus_paths,
            uncased_vocab_path):
    """(records with dynamic masks, the config with dropout 0.1, its initial weights): every
    run starts from the same weights and computes the same steps on the same batches, with the
    same dropout masks."""
    root, init = dropout_free_run
    folder = tmp_path_factory.mktemp("tpu_dynamic")
    english_records(folder, corpus_paths, uncased_vocab_path, 40_000, max_seq_length=32,
                    max_predictions_per_seq=5, do_lower_case=True, masking="dynamic")
    return folder / "train.tfrecord", dropout_config, init


def _settings(dynamic, out, keep=5, eval_batch_size=8, **overrides):
    from norbert.training.config import (TPU_ESTIMATOR, OptimizerConfig, PretrainingConfig,
                                         TpuConfig)
    from norbert.training.spec import RunConfig

    records, config, init = dynamic
    return dict(
        config=PretrainingConfig(
            input_file=str(records), bert_config_file=str(config), max_seq_length=32,
            max_predictions_per_seq=5, engine=TPU_ESTIMATOR, init_checkpoint=init,
            **dict(dict(do_train=True, do_eval=False), **overrides)),
        # The same num_train_steps in every part of a run: the same learning-rate schedule.
        optimizer=OptimizerConfig(learning_rate=1e-3, num_train_steps=STEPS,
                                  num_warmup_steps=2),
        run=RunConfig(output_dir=str(out), save_checkpoints_steps=2, train_batch_size=8,
                      seed=5, keep_checkpoint_max=keep, eval_batch_size=eval_batch_size),
        tpu=TpuConfig(iterations_per_loop=1))


def _run(dynamic, out, keep=5, **overrides):
    from norbert.training.pretraining import run_pretraining

    return run_pretraining(**_settings(dynamic, out, keep, **overrides))


def _stopped_at(step, monkeypatch):
    """Makes the next run receive a SIGTERM right after ``step``, as a preemption would: its
    own stop hook then ends training, and TPUEstimator saves."""
    from norbert.training import engines
    from norbert.training.tpu import StopHook

    class PreemptedAt(StopHook):
        def begin(self):
            self._step = tf.train.get_global_step()

        def before_run(self, run_context):
            return tf.train.SessionRunArgs(self._step)

        def after_run(self, run_context, run_values):
            if run_values.results + 1 == step:  # the step before this update, plus it
                os.kill(os.getpid(), signal.SIGTERM)
            super().after_run(run_context, run_values)

    monkeypatch.setattr(engines, "StopHook", PreemptedAt)


def _losses(out):
    """Step -> (masked LM loss, next sentence loss), from the events in ``out``; a step
    written twice (trained again after a resume) keeps its latest values."""
    found = {}
    events = [os.path.join(out, f) for f in os.listdir(out) if "tfevents" in f]
    for path in events:
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag in LOSSES:
                    number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") \
                        else value.simple_value
                    found.setdefault(event.step, {})[value.tag] = (event.wall_time, number)
    return {step: tuple(values[t][1] for t in LOSSES) for step, values in found.items()
            if set(values) == set(LOSSES)}


def _variables(checkpoint):
    reader = tf.train.load_checkpoint(checkpoint)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def _assert_same_variables(ours, theirs):
    a, b = _variables(ours), _variables(theirs)
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-6, err_msg=name)


def _steps(out, pattern):
    return sorted(int(f[len(pattern):-len(".index")]) for f in os.listdir(out)
                  if f.startswith(pattern) and f.endswith(".index"))


@pytest.fixture(scope="module")
def uninterrupted(dynamic, tmp_path_factory):
    out = tmp_path_factory.mktemp("tpu_uninterrupted") / "run"
    _run(dynamic, out)
    return out


def test_a_stopped_run_resumes_on_the_batches_of_an_uninterrupted_one(
        dynamic, uninterrupted, tmp_path, monkeypatch, caplog):
    out = tmp_path / "run"
    with monkeypatch.context() as patched:
        _stopped_at(3, patched)
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            _run(dynamic, out)
    assert tf.train.latest_checkpoint(str(out)).endswith("model.ckpt-3")
    caplog.set_level("INFO")
    _run(dynamic, out)
    assert "data: restored the position of step 3" in caplog.text
    whole, resumed = _losses(str(uninterrupted)), _losses(str(out))
    assert len(whole) == STEPS and sorted(whole) == sorted(resumed)
    for step in sorted(whole):  # those before the stop, and those after the resume
        np.testing.assert_allclose(resumed[step], whole[step], rtol=1e-6, atol=1e-6,
                                   err_msg="step %d" % step)
    _assert_same_variables(os.path.join(out, "model.ckpt-%d" % STEPS),
                           os.path.join(uninterrupted, "model.ckpt-%d" % STEPS))


# Named buckets: TPUEstimator feeds full-length batches tagged with their bucket, and the model
# has a branch per bucket (whose steps equal the cut batches': test_model_fn.py).
BUCKETS = "8,16,24"


@pytest.fixture(scope="module")
def short(dynamic, tmp_path_factory, corpus_paths, uncased_vocab_path):
    """``dynamic`` with records of a corpus of short documents (short_seq_prob 0.7): their
    batches fall in several buckets."""
    records, config, init = dynamic
    folder = tmp_path_factory.mktemp("tpu_short")
    english_records(folder, corpus_paths, uncased_vocab_path, 40_000, max_seq_length=32,
                    max_predictions_per_seq=5, do_lower_case=True, masking="dynamic",
                    short_seq_prob=0.7)
    return folder / "train.tfrecord", config, init


@pytest.fixture(scope="module")
def bucketed(short, tmp_path_factory):
    """An uninterrupted run with named buckets, and its log."""
    import logging

    out = tmp_path_factory.mktemp("tpu_bucketed") / "run"
    records = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("absl")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        _run(short, out, length_buckets=BUCKETS)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return out, "\n".join(r.getMessage() for r in records)


def test_named_buckets_train(bucketed, uninterrupted):
    """A run with named buckets trains every step (its resume rests on the data position, as
    without buckets: the grouping window is part of the iterator's state, tested on the loop)."""
    whole, log = bucketed
    assert "the model built once per bucket" in log
    assert "batches cut to the shortest of 8,16,24,32" in log
    losses, plain = _losses(str(whole)), _losses(str(uninterrupted))
    assert sorted(losses) == sorted(plain) and len(losses) == STEPS
    assert all(np.isfinite(v).all() for v in losses.values())
    # Other records, grouped by length: other batches than the run without buckets.
    assert any(not np.allclose(plain[s], losses[s], rtol=1e-4) for s in plain)


def test_named_buckets_evaluate_as_full_length_batches(short, tmp_path):
    """Evaluation reads the same batches with and without buckets (in the files' order, here
    of several buckets' lengths): the same metrics."""
    from norbert.training import length_buckets

    lengths = [sum(tf.train.Example.FromString(r).features.feature["input_mask"]
                   .int64_list.value) for r in tf.io.tf_record_iterator(str(short[0]))]
    edges = length_buckets.parse(BUCKETS, 32)
    used = {min(e for e in edges if e >= max(lengths[i:i + 2])) for i in range(0, 24, 2)}
    assert len(used) > 1, used  # the 12 batches of 2 evaluated take several branches
    found = {spec: _run(short, tmp_path / spec, do_train=False, do_eval=True, eval_batch_size=2,
                        max_eval_steps=12, length_buckets=spec) for spec in ("none", BUCKETS)}
    assert found["none"].keys() == found[BUCKETS].keys()
    assert "masked_lm_accuracy" in found["none"]
    for key, value in found["none"].items():
        np.testing.assert_allclose(found[BUCKETS][key], value, rtol=1e-5, atol=1e-6,
                                   err_msg=key)


def test_each_checkpoint_has_its_data_position_beside_it(dynamic, uninterrupted, tmp_path,
                                                         monkeypatch):
    from norbert.training import data_position

    out = tmp_path / "run"
    with monkeypatch.context() as patched:
        _stopped_at(3, patched)
        with pytest.raises(KeyboardInterrupt):
            _run(dynamic, out)
    _run(dynamic, out)
    # Saved when a session starts, every 2 steps (counted from the resumed one), at the stop,
    # and at the end; 5 kept of each.
    for folder, steps in [(uninterrupted, [0, 2, 4, 6]), (out, [0, 2, 3, 5, 6])]:
        assert _steps(str(folder), "model.ckpt-") == steps
        positions = data_position.position_dir(str(folder), 0)
        assert _steps(positions, "position-") == steps
        streams = {data_position.read_stream(data_position.position_path(str(folder), 0, s))
                   for s in steps}
        assert len(streams) == 1 and None not in streams  # the run's one stream
    # The model's checkpoints stay Google's: no data position in them.
    names = tf.train.load_checkpoint(str(out / "model.ckpt-6")).get_variable_to_shape_map()
    assert not [n for n in names if "data_stream" in n or "Iterator" in n]


def test_the_batch_numbers_are_part_of_the_saved_data_position(tmp_path):
    """The numbers dropout is keyed by go on after a restored position, not from 0 again."""
    from types import SimpleNamespace

    from norbert.training import data_position
    from norbert.training.input_pipeline import RecordInput
    from norbert.training.model_fn import BATCH_NUMBER
    from norbert.training.tpu import numbered

    def batches(params):  # batch i holds i: the stream's own order
        return tf.data.Dataset.range(100).map(lambda i: {"x": tf.fill([params["batch_size"]], i)})

    input_fn = numbered(RecordInput(None, batches))
    position = data_position.Position(data_position.Stream(1, 1, ()), restore=True)

    def read(count, save_at=None, restore_at=None):
        return read_positioned_batches(lambda: input_fn({"batch_size": 3}), position, tmp_path,
                                       count, save_at, restore_at)

    first = read(4, save_at=2)
    assert [b[BATCH_NUMBER].tolist() for b in first] == [[[n, 0]] * 3 for n in range(4)]
    again = read(2, restore_at=2)
    assert [b["x"][0] for b in again] == [2, 3]
    assert [b[BATCH_NUMBER].tolist() for b in again] == [[[n, 0]] * 3 for n in (2, 3)]
    # On a TPU each input host numbers its own batches, and says which host it is.
    with tf.Graph().as_default():
        on_host = input_fn({"batch_size": 2, "context": SimpleNamespace(current_host=1)})
        first_batch = tf.data.make_one_shot_iterator(on_host).get_next()
        with tf.Session() as sess:
            assert sess.run(first_batch)[BATCH_NUMBER].tolist() == [[0, 1], [0, 1]]


def _hosts_batches(records, out, count, save_at=None, restore_at=None, hosts=2):
    """``count`` batches from each of ``hosts`` input hosts' pipelines, built in one graph as
    TPUEstimator builds them on a pod, under ``PositionHook``: saved after ``save_at`` batches,
    or restored at the step ``restore_at`` first, as a resumed session restores."""
    from types import SimpleNamespace

    from norbert.training import data_position, input_pipeline
    from norbert.training.tpu import PositionHook

    config = input_pipeline.InputConfig(input_files=[str(records)], max_seq_length=32,
                                        max_predictions_per_seq=5, is_training=True, seed=3)
    input_fn = input_pipeline.make_input_fn(config)
    position = data_position.Position(data_position.Stream(
        3, 3, data_position.setup_of(config, 4, 1)), restore=True)
    with tf.Graph().as_default():
        step = tf.train.get_or_create_global_step()
        batches = [tf.data.make_initializable_iterator(input_fn(
            {"batch_size": 2, "context": SimpleNamespace(current_host=host, num_hosts=hosts)}))
            .get_next()["input_ids"] for host in range(hosts)]
        hook = PositionHook(position, str(out), keep=3)
        hook.begin()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            if restore_at is not None:
                step.load(restore_at, sess)
            hook.before_run(SimpleNamespace(session=sess))  # initialises, restores
            read = []
            for number in range(1, count + 1):
                read.append(sess.run(batches))
                if number == save_at:
                    hook.save(sess, number)
    return read


def test_a_pods_input_hosts_read_their_shares_and_resume_together(dropout_free_run, tmp_path,
                                                                  caplog):
    """On a pod each input host reads its own share of the records, and the positions of all
    of them are saved together beside a checkpoint and restored together."""
    from norbert.training import data_position

    records = dropout_free_run[0] / "train.tfrecord"  # static masks
    first = _hosts_batches(records, tmp_path, 6, save_at=3)
    host0 = np.concatenate([b[0] for b in first])
    host1 = np.concatenate([b[1] for b in first])
    assert not any((row == other).all() for row in host0 for other in host1)  # other records
    assert os.path.exists(data_position.position_path(str(tmp_path), 0, 3) + ".index")
    again = _hosts_batches(records, tmp_path, 3, restore_at=3)
    for got, expected in zip(again, first[3:]):
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    # A pod of another size: the saved position is not taken for its hosts' (said, not raised).
    caplog.set_level("INFO")
    _hosts_batches(records, tmp_path, 1, restore_at=3, hosts=3)
    assert "data: the position saved at step 3 holds 2 input iterators, this run has 3 " \
        "(another number of TPU input hosts): the stream starts at its beginning" in caplog.text


def _damage(prefix):
    """Flips one byte in the middle of ``prefix``'s data: only a full read sees it."""
    path = prefix + ".data-00000-of-00001"
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))


def test_a_damaged_newest_checkpoint_is_passed_over(dynamic, uninterrupted, tmp_path, caplog):
    out = tmp_path / "run"
    shutil.copytree(str(uninterrupted), str(out))
    newest = os.path.join(str(out), "model.ckpt-%d" % STEPS)
    _damage(newest)
    caplog.set_level("INFO")
    _run(dynamic, out, keep=3)
    assert "skipping the damaged checkpoint %s" % newest in caplog.text
    assert "resuming from %s" % os.path.join(str(out), "model.ckpt-4") in caplog.text
    assert "data: restored the position of step 4" in caplog.text
    # Trained again from step 4, on the same batches: step 6 saved anew, intact and equal.
    assert tf.train.latest_checkpoint(str(out)) == newest
    _assert_same_variables(newest, os.path.join(str(uninterrupted), "model.ckpt-%d" % STEPS))
    # The older checkpoints stay counted: keep_checkpoint_max=3 deletes the oldest, and the
    # positions go with them.
    assert _steps(str(out), "model.ckpt-") == [2, 4, 6]
    assert _steps(os.path.join(str(out), "data_position", "worker-0"), "position-") == [2, 4, 6]


def test_a_position_saved_before_the_batches_were_numbered_restarts_the_stream(
        dynamic, uninterrupted, tmp_path, caplog):
    """An older TPUEstimator run's position (its stream without the batch numbers): the resume
    says that the stream restarts and why, and trains on."""
    out = _resumed_at_4_from_another_setup(
        uninterrupted, tmp_path, lambda setup: {w: v for w, v in setup.items()
                                                if w != "batches numbered for dropout"})
    caplog.set_level("INFO")
    _run(dynamic, out)
    assert "data: restarts at step 4 in a new order" in caplog.text
    assert "the setup changed since model.ckpt-4: batches numbered for dropout unset -> yes " \
        "(TPUEstimator)" in caplog.text
    assert tf.train.latest_checkpoint(str(out)).endswith("model.ckpt-%d" % STEPS)


def test_another_number_of_tpu_cores_restarts_the_stream(dynamic, uninterrupted, tmp_path,
                                                         caplog):
    """A position saved with another batch per core (the same --train_batch_size over
    another --num_tpu_cores): its iterator's prefetched batches have that batch's shape, which
    this run's input cannot yield, so the stream restarts, and the resume says why."""
    from norbert.training import data_position

    out = _resumed_at_4_from_another_setup(
        uninterrupted, tmp_path, lambda setup: dict(setup, **{data_position.CORE_BATCH: "4"}))
    caplog.set_level("INFO")
    _run(dynamic, out)
    assert "data: restarts at step 4 in a new order" in caplog.text
    assert "the setup changed since model.ckpt-4: examples per TPU core batch 4 -> 8" \
        in caplog.text
    assert tf.train.latest_checkpoint(str(out)).endswith("model.ckpt-%d" % STEPS)


def _resumed_at_4_from_another_setup(uninterrupted, tmp_path, changed):
    """A copy of the uninterrupted run that resumes at step 4 from a position saved with the
    setup ``changed(setup)`` (its iterator a stand-in, never restored: the setup differs)."""
    from norbert.training import data_position

    out = tmp_path / "run"
    shutil.copytree(str(uninterrupted), str(out))
    prefix = data_position.position_path(str(out), 0, 4)
    saved = data_position.read_stream(prefix)
    old = data_position.Stream(saved.run_seed, saved.stream_seed,
                               tuple(sorted(changed(dict(saved.setup)).items())))
    assert old != saved
    with tf.Graph().as_default():
        iterator = tf.data.make_initializable_iterator(tf.data.Dataset.range(10))
        saver = data_position.PositionSaver([iterator], data_position.Position(old), str(out), 5)
        with tf.Session() as sess:
            sess.run([iterator.initializer] + saver.initializers)
            saver.save(sess, 4)
    assert data_position.read_stream(prefix) == old
    for path in glob.glob(os.path.join(str(out), "model.ckpt-%d.*" % STEPS)):
        os.remove(path)  # the run resumes at step 4
    tf.train.update_checkpoint_state(str(out), "model.ckpt-4", ["model.ckpt-2", "model.ckpt-4"])
    return out


def _saved_steps(folder, steps):
    """A tiny checkpoint at each of ``steps`` in ``folder`` (the saver's state file lists
    them); returns their prefixes, newest first."""
    with tf.Graph().as_default():
        tf.train.get_or_create_global_step()  # what the checkpoints hold
        saver = tf.train.Saver(max_to_keep=10, save_relative_paths=True)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            paths = [saver.save(sess, os.path.join(folder, "model.ckpt"), global_step=s)
                     for s in steps]
    return paths[::-1]


def test_the_state_file_is_left_alone_when_the_newest_reads_whole(tmp_path):
    from norbert.training.tpu import point_at_intact

    newest_first = _saved_steps(str(tmp_path), [1, 2])
    before = (tmp_path / "checkpoint").read_text()
    assert point_at_intact(str(tmp_path), newest_first) == newest_first[0]
    assert (tmp_path / "checkpoint").read_text() == before
    assert point_at_intact(str(tmp_path), ()) is None  # a new run


def test_the_state_file_is_pointed_past_a_checkpoint_cut_short(tmp_path):
    """The plan leaves a cut-short checkpoint out of the candidates; the state file that still
    names it is pointed at the newest candidate, the older ones listed, names relative."""
    from norbert.training.tpu import point_at_intact

    third, second, first = _saved_steps(str(tmp_path), [1, 2, 3])
    assert point_at_intact(str(tmp_path), [second, first]) == second
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert state.model_checkpoint_path == second
    assert list(state.all_model_checkpoint_paths) == [first, second]
    assert str(tmp_path) not in (tmp_path / "checkpoint").read_text()
    assert os.path.exists(third + ".index")  # left as it is: its step is saved anew


def test_a_folder_of_damaged_checkpoints_is_a_clear_error(tmp_path, caplog):
    from norbert import NorbertError
    from norbert.training.tpu import point_at_intact

    newest_first = _saved_steps(str(tmp_path), [1, 2])
    for prefix in newest_first:
        _damage(prefix)
    with pytest.raises(NorbertError, match="every checkpoint there is damaged"):
        point_at_intact(str(tmp_path), newest_first)
    assert caplog.text.count("skipping the damaged checkpoint") == 2
