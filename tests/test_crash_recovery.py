"""Preemption and crashes: kill -9 or SIGTERM a training run, run it again, lose nothing."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import tiny_bert_config

tf = pytest.importorskip("tensorflow").compat.v1

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "run_pretraining.py")
TINY = tiny_bert_config(vocab_size=120, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Records from generated text over a tiny vocab, and a tiny config."""
    import random

    from norbert.data.builder import DataConfig, create_pretraining_data

    root = tmp_path_factory.mktemp("crash")
    words = ["w%d" % i for i in range(100)]
    (root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words))
    rng = random.Random(0)
    docs = ["\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(6))
            for _ in range(60)]
    (root / "text.txt").write_text("\n\n".join(docs) + "\n")
    create_pretraining_data(DataConfig(
        input_file=str(root / "text.txt"), output_file=str(root / "train.tfrecord"),
        vocab_file=str(root / "vocab.txt"), max_seq_length=32, max_predictions_per_seq=5,
        dupe_factor=2,
    ))
    (root / "bert_config.json").write_text(TINY)
    return root


def _command(root, out, steps):
    return [sys.executable, SCRIPT, "--input_file=%s" % (root / "train.tfrecord"),
            "--output_dir=%s" % out, "--bert_config_file=%s" % (root / "bert_config.json"),
            "--do_train", "--max_seq_length=32", "--max_predictions_per_seq=5",
            "--train_batch_size=4", "--num_train_steps=%d" % steps, "--num_warmup_steps=0",
            "--learning_rate=1e-3", "--save_checkpoints_steps=5", "--log_every_steps=5"]


def _wait_for_checkpoint(out, process, at_least, timeout=120):
    """Polls until the run has saved a checkpoint at step >= at_least."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        latest = tf.train.latest_checkpoint(str(out)) if out.exists() else None
        if latest and int(latest.rsplit("-", 1)[1]) >= at_least:
            return latest
        assert process.poll() is None, "the run ended before it was killed"
        time.sleep(0.2)
    raise AssertionError("no checkpoint at step >= %d within %ds" % (at_least, timeout))


def _all_checkpoints_readable(out):
    state = tf.train.get_checkpoint_state(str(out))
    for path in state.all_model_checkpoint_paths:
        reader = tf.train.load_checkpoint(path)  # raises on a truncated or corrupt file
        step = int(reader.get_tensor("global_step"))
        assert path.endswith("-%d" % step)
    return state


def test_kill_9_then_rerun_resumes_from_the_last_checkpoint(setup, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(_command(setup, out, 100_000), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        _wait_for_checkpoint(out, process, 10)
    finally:
        process.kill()  # SIGKILL: no handler runs, nothing is flushed
        process.wait()
    state = _all_checkpoints_readable(out)
    last = int(state.model_checkpoint_path.rsplit("-", 1)[1])
    done = subprocess.run(_command(setup, out, last + 7), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "restored" in done.stderr and "model.ckpt-%d" % last in done.stderr
    final = tf.train.latest_checkpoint(str(out))
    assert final.endswith("model.ckpt-%d" % (last + 7))  # global_step went on, not from 0
    _all_checkpoints_readable(out)


def test_sigterm_saves_before_exiting(setup, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(_command(setup, out, 100_000), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_checkpoint(out, process, 5)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert "SIGTERM received" in stderr
    saved = tf.train.latest_checkpoint(str(out))
    reader = tf.train.load_checkpoint(saved)
    assert saved.endswith("-%d" % int(reader.get_tensor("global_step")))
    # The checkpoint is the step where it stopped, not the last periodic one.
    assert "saving and stopping" in stderr
    _all_checkpoints_readable(out)
