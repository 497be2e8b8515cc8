"""--watch: each checkpoint of a run evaluated once, oldest first; deleted ones skipped; the end
found from the run (its final step, or its lock gone); a restart resumes; polling bounded."""

import json
import logging
import os

import pytest

from norbert.downstream import watch
from norbert.downstream.config import WatchConfig
from norbert.downstream.results import DownstreamResults, Run, read_jsonl
from norbert.training.run_lock import LOCK_NAME


class FakeRun:
    """A run folder that gains checkpoints while the watcher sleeps, and a fake evaluation."""

    def __init__(self, folder, steps_per_sleep=()):
        self.folder = folder
        self.schedule = list(steps_per_sleep)
        self.evaluated, self.sleeps, self.now = [], 0, 0.0

    def add(self, *steps):
        for step in steps:
            (self.folder / ("model.ckpt-%d.index" % step)).write_text("")
            (self.folder / ("model.ckpt-%d.data-00000-of-00001" % step)).write_text(str(step))

    def lock(self, command):
        (self.folder / LOCK_NAME).write_text(json.dumps({"pid": 1, "command": command}))

    def sleep(self, secs):
        self.sleeps += 1
        self.now += secs
        if self.schedule:
            self.add(*self.schedule.pop(0))

    def clock(self):
        return self.now

    def evaluate(self, prefix):
        # A copy of the checkpoint, outside the run's folder, which the run may delete.
        assert os.path.dirname(prefix) != str(self.folder)
        with open(prefix + ".data-00000-of-00001") as f:
            step = int(f.read())
        self.evaluated.append(step)
        return DownstreamResults("ud", prefix, False, (Run(1, {"accuracy": step / 100}, 3, 0.1),),
                                 {})

    def watch(self, **settings):
        config = WatchConfig(watch=str(self.folder), watch_poll_secs=5, **settings)
        return watch.watch_run(config, "ud", self.evaluate, clock=self.clock, sleep=self.sleep)


def test_each_checkpoint_once_until_the_final_step(tmp_path, caplog, monkeypatch):
    tf = pytest.importorskip("tensorflow").compat.v1
    run = FakeRun(tmp_path, steps_per_sleep=[(), (6,), (8, 10)])
    run.add(4, 2)
    listed = watch.checkpoint_steps

    def listing_then_rotation(folder):
        found = listed(folder)
        if 8 in found:  # the run deletes step 8 between the listing and the reading
            os.remove(found[8] + ".index")
            os.remove(found[8] + ".data-00000-of-00001")
        return found

    monkeypatch.setattr(watch, "checkpoint_steps", listing_then_rotation)
    run.lock("scripts/run_pretraining.py --do_train --num_train_steps=10 --output_dir=x")
    caplog.set_level(logging.INFO)
    results = run.watch()
    assert run.evaluated == [2, 4, 6, 10] and run.sleeps == 3
    assert [r.model for r in results] == [str(tmp_path / ("model.ckpt-%d" % s))
                                          for s in (2, 4, 6, 10)]
    out = tmp_path / "downstream_ud"
    lines = read_jsonl(str(out / watch.JSONL_NAME))
    assert [(r["step"], r["metrics"]["accuracy"]["mean"]) for r in lines] == [
        (2, 0.02), (4, 0.04), (6, 0.06), (10, 0.1)]
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("skipped %s" % (tmp_path / "model.ckpt-8")) for m in messages)
    assert any("final step 10 is evaluated" in m for m in messages)
    steps = sorted(e.step for path in tf.io.gfile.glob(str(out / "events.out.tfevents.*"))
                   for e in tf.train.summary_iterator(path)
                   for v in e.summary.value if v.tag == "downstream/ud/accuracy")
    assert steps == [2, 4, 6, 10]

    # Restarted: nothing is evaluated again, and it ends at once.
    monkeypatch.undo()
    again = FakeRun(tmp_path)
    assert again.watch() == [] and again.evaluated == [] and again.sleeps == 0


def test_resumes_where_it_stopped(tmp_path):
    run = FakeRun(tmp_path)
    run.add(1, 2)
    assert len(run.watch(watch_final_step=2)) == 2
    run.add(3, 4)
    again = FakeRun(tmp_path)
    again.watch(watch_final_step=4)
    assert again.evaluated == [3, 4]
    assert [r["step"] for r in read_jsonl(str(tmp_path / "downstream_ud" / watch.JSONL_NAME))
            ] == [1, 2, 3, 4]


def test_a_stopped_run_ends_the_watch(tmp_path):
    run = FakeRun(tmp_path)
    run.add(5, 3)  # no lock: the run has stopped; no final step known
    run.watch()
    assert run.evaluated == [3, 5] and run.sleeps == 0


def test_polling_is_bounded(tmp_path):
    run = FakeRun(tmp_path)  # nothing ever appears
    assert run.watch(watch_timeout_secs=22) == []
    assert run.sleeps == 5 and run.now == 25.0


def test_final_step_and_command():
    config = WatchConfig(watch="x")
    assert watch.final_step(config, "run_pretraining.py --num_train_steps 300") == 300
    assert watch.final_step(config, "run_pretraining.py --do_train") is None
    assert watch.final_step(WatchConfig(watch="x", watch_final_step=7), None) == 7


def test_a_missing_folder(tmp_path):
    from norbert.errors import NorbertError

    with pytest.raises(NorbertError, match="--watch=.*nowhere does not exist"):
        FakeRun(tmp_path / "nowhere").watch()


def test_watching_a_real_training_run(dropout_free_run, tagged, tmp_path):
    """run_pretraining saves steps 2 and 4, keeping one checkpoint: the watcher started after
    the run finds step 4 alone, evaluates it with norbert's fine-tuning, and ends (the run's
    lock is gone); TensorBoard reads the score at step 4."""
    tf = pytest.importorskip("tensorflow").compat.v1
    import norbert

    records, _ = dropout_free_run
    root, vocab = tagged
    run = tmp_path / "run"
    norbert.run_pretraining(
        input_file=str(records / "train.tfrecord"), bert_config_file=str(records / "c.json"),
        output_dir=str(run), do_train=True, num_train_steps=4, num_warmup_steps=0,
        save_checkpoints_steps=2, keep_checkpoint_max=1, train_batch_size=8,
        max_seq_length=32, max_predictions_per_seq=5)
    assert sorted(watch.checkpoint_steps(str(run))) == [4]
    results = norbert.evaluate_downstream(
        train_file=str(root / "train.conllu"), eval_file=str(root / "eval.conllu"),
        bert_config_file=str(records / "c.json"), vocab_file=vocab, watch=str(run),
        watch_poll_secs=0.1, watch_timeout_secs=30, num_seeds=1, num_train_epochs=0.5,
        learning_rate=1e-3, max_seq_length=32, name="tags")
    assert [r.model for r in results] == [str(run / "model.ckpt-4")]
    out = run / "downstream_tags"
    assert [r["step"] for r in read_jsonl(str(out / watch.JSONL_NAME))] == [4]
    scores = [(e.step, v.simple_value)
              for path in tf.io.gfile.glob(str(out / "events.out.tfevents.*"))
              for e in tf.train.summary_iterator(path)
              for v in e.summary.value if v.tag == "downstream/tags/accuracy"]
    assert scores == [(4, pytest.approx(results[0].metrics()["accuracy"]["mean"]))]
    # The checkpoint's fine-tuning curve: a TensorBoard run of its own, steps = its updates.
    (curve,) = tf.io.gfile.glob(str(out / "finetune_step-4" / "events.out.tfevents.*"))
    losses = {e.step: v.simple_value for e in tf.train.summary_iterator(curve)
              for v in e.summary.value if v.tag == "downstream/tags/finetune/seed_1/loss"}
    run_1 = results[0].runs[0]
    assert losses == pytest.approx(dict(run_1.losses)) and max(losses) == run_1.steps
