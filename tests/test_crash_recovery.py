"""Preemption and crashes: kill -9 or SIGTERM a training run, run it again, lose nothing.

And what crashes leave behind: checkpoints cut short, damaged records, a second run into the
same folder, the lock of a run that is gone.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import tiny_bert_config

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
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (root / "vocab.txt").write_text("\n".join(specials + words))
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
    process = subprocess.Popen(_command(setup, out, 100_000) + ["--do_eval"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_checkpoint(out, process, 5)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert "SIGTERM received" in stderr
    # Saved, then ended as a scheduler must see it: not finished (143), and not evaluated.
    assert process.returncode == 143, stderr[-2000:]
    assert "Traceback" not in stderr and "stopped by SIGTERM" in stderr
    assert not (out / "eval_results.txt").exists()
    saved = tf.train.latest_checkpoint(str(out))
    reader = tf.train.load_checkpoint(saved)
    assert saved.endswith("-%d" % int(reader.get_tensor("global_step")))
    # The checkpoint is the step where it stopped, not the last periodic one.
    assert "saving and stopping" in stderr
    _all_checkpoints_readable(out)


def _run(command, timeout=300):
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def test_a_stale_lock_is_taken_over_and_a_cut_short_checkpoint_is_passed_over_on_resume(
        setup, tmp_path):
    """A run into a folder whose lock is of a process gone takes the lock over; its
    checkpoint then cut short (a save or copy killed midway) is passed over on resume."""
    import socket

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process of this host that no longer runs (killed -9, say)
    out = tmp_path / "run"
    out.mkdir()
    (out / ".norbert-run.lock").write_text(json.dumps(
        {"host": socket.gethostname(), "pid": gone.pid, "started": "earlier"}))
    done = _run(_command(setup, out, 10))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "took over the lock of %s: pid %d" % (out, gone.pid) in done.stderr
    assert not (out / ".norbert-run.lock").exists()
    data = out / "model.ckpt-10.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])  # a save or copy killed midway
    done = _run(_command(setup, out, 15))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "skipping the damaged checkpoint %s" % (out / "model.ckpt-10") in done.stderr
    assert "restored %s" % (out / "model.ckpt-5") in done.stderr
    assert tf.train.latest_checkpoint(str(out)).endswith("model.ckpt-15")
    _all_checkpoints_readable(out)  # step 10 saved anew, whole


@pytest.fixture(scope="module")
def corrupt_records(setup):
    """The records repeated to 600, record 300 with one flipped byte: met after some saves."""
    from norbert.data import tfrecord

    framed = [tfrecord.frame(r) for r in tfrecord.read_records(str(setup / "train.tfrecord"))]
    framed = (framed * (600 // len(framed) + 1))[:600]
    data = bytearray(b"".join(framed))
    start = sum(len(f) for f in framed[:299])
    data[start + 40] ^= 0xFF
    path = setup / "corrupt.tfrecord"
    path.write_bytes(bytes(data))
    return path, start


def test_a_corrupted_record_stops_the_run_and_keeps_its_checkpoints(setup, corrupt_records,
                                                                    tmp_path):
    path, start = corrupt_records
    out = tmp_path / "run"
    # Without length buckets: they read a window of 1,024 examples ahead, so in a file this
    # small the damage would surface before the first checkpoint.
    command = _command(setup, out, 100_000) + ["--length_buckets=none"]
    command[2] = "--input_file=%s" % path
    done = _run(command)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    errors = _error_lines(done.stderr)
    latest = tf.train.latest_checkpoint(str(out))
    assert latest is not None  # saved before the damage was met, and kept
    # The step the damage surfaced at is saved then, unless a checkpoint of it was just made
    # (where depends on how far ahead the input reads).
    expected = [
        "error: %s is damaged: record 300 (at byte %d) is corrupt (its data fail their "
        "checksum); stopped at step %s%s, the last good checkpoint is %s. Replace "
        "or rebuild that file (or leave it out of --input_file) and run again: it resumes from "
        "there" % (path, start, latest.rsplit("-", 1)[1], saved, latest)
        for saved in ("", " after saving it")]
    assert len(errors) == 1 and errors[0] in expected, errors
    _all_checkpoints_readable(out)
    assert not (out / ".norbert-run.lock").exists()


def _wait_for(condition, process, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        assert process.poll() is None, "the run ended early"
        time.sleep(0.1)
    raise AssertionError("timed out")


# SIGTERM's variant is slow (suite time): test_sigterm_saves_before_exiting and the lock tests
# keep SIGTERM in the default suite.
@pytest.mark.parametrize("stop", [pytest.param(signal.SIGTERM, marks=pytest.mark.slow),
                                  signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_second_run_into_the_same_folder_stops_at_once(setup, tmp_path, stop):
    import socket

    out = tmp_path / "run"
    first = subprocess.Popen(_command(setup, out, 100_000), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_checkpoint(out, first, 5)
        lock = json.loads((out / ".norbert-run.lock").read_text())
        assert (lock["host"], lock["pid"]) == (socket.gethostname(), first.pid)
        second = _run(_command(setup, out, 100_000), timeout=120)
        assert second.returncode == 2, second.stderr[-2000:]
        assert "Traceback" not in second.stderr
        assert _error_lines(second.stderr) == [
            "error: --output_dir=%s is in use by another training run (pid %d on host %s, "
            "started %s): wait for it to end or choose another --output_dir; if that run is "
            "gone, delete the lock file %s" % (out, first.pid, socket.gethostname(),
                                               lock["started"], out / ".norbert-run.lock")]
        assert first.poll() is None  # the first run goes on, untouched
        first.send_signal(stop)
        _, stderr = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    # It saved and stopped, unfinished: 143 for SIGTERM, 130 for Ctrl-C.
    assert first.returncode == (143 if stop == signal.SIGTERM else 130), stderr[-2000:]
    assert "saving and stopping" in stderr
    assert not (out / ".norbert-run.lock").exists()
    _all_checkpoints_readable(out)


def test_sigterm_before_the_loop_releases_the_lock_and_the_new_folder(setup, tmp_path):
    out = tmp_path / "new" / "run"
    process = subprocess.Popen(_command(setup, out, 100_000), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: (out / ".norbert-run.lock").exists(), process)
        process.send_signal(signal.SIGTERM)  # while the graph is built, most likely
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not (out / ".norbert-run.lock").exists()
    assert process.returncode == 143, stderr[-2000:]
    assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr
    if "saving and stopping" not in stderr:  # stopped before the loop: nothing was saved
        assert not (tmp_path / "new").exists()
    else:  # the loop had begun: it saved and stopped
        _all_checkpoints_readable(out)
