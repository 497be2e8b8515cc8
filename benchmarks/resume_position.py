"""Resuming at a late data position: what the resume costs, and what each checkpoint keeps.

The small BERT trains 10 steps on the English text's records (``--masking=dynamic``, sequence
128, batch 32) and saves; its data position (``<output_dir>/data_position``) is saved beside
the checkpoint. Later positions are made as a long run would reach them: the run's own input
pipeline restored from step 10 and read on to step N, its position saved there, beside a copy
of the model's checkpoint whose ``global_step`` is N. Then ``run_pretraining`` resumes from
each position and trains one step (the same command, ``--num_train_steps=N+1``), in a process
of its own. Reported: the resume's wall time (process start to exit: start-up, plan, graph,
restore, one step, save) against the resume from step 10; the bytes of the saved position; and
what skipping to step N through the data would cost instead (the time the pipeline took to
read the N batches: what a restart that skips consumed batches, as transformers' Trainer does,
pays before its first step).

``python benchmarks/run_all.py resume_position`` (about 5 minutes here);
``NORBERT_BENCH_QUICK=1``: a smoke run with a nearer late position.
"""

import glob
import os
import subprocess
import sys
import tempfile
import time

from common import QUICK, REPO, SMALL_BERT, build_records, corpus_files, table, uncased_vocab

sys.path.insert(0, REPO)

SEQ, PRED, BATCH = 128, 20, 32
FIRST = 10
LATE = (2_000,) if QUICK else (10_000, 100_000)


def _flags(records, config, out, steps):
    return ["--input_file=%s" % records, "--bert_config_file=%s" % config,
            "--output_dir=%s" % out, "--do_train", "--max_seq_length=%d" % SEQ,
            "--max_predictions_per_seq=%d" % PRED, "--train_batch_size=%d" % BATCH,
            "--num_train_steps=%d" % steps, "--num_warmup_steps=0", "--learning_rate=1e-4",
            "--save_checkpoints_steps=1000000", "--seed=1"]


def _run(flags):
    """Wall seconds of ``run_pretraining.py`` with ``flags``, in a process of its own."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "run_pretraining.py")]
                          + flags, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return time.perf_counter() - started, done.stderr


def _move_to(records, out, step, reached):
    """The run in ``out`` made to stand at ``step``: its data position read on from
    ``reached`` (the pipeline alone) and saved, and its newest checkpoint copied with that
    global_step. Returns the seconds the reading took."""
    import tensorflow.compat.v1 as tf

    from norbert.model import checkpoints
    from norbert.training import data_position, input_pipeline, length_buckets, record_checks
    from norbert.training.data_position import Position, PositionSaver

    prefix = data_position.position_path(out, 0, reached)
    stream = data_position.read_stream(prefix)
    files = [records]
    input_fn = input_pipeline.make_input_fn(input_pipeline.InputConfig(
        input_files=files, max_seq_length=SEQ,
        max_predictions_per_seq=PRED, is_training=True, seed=stream.stream_seed,
        masking=record_checks.dynamic_masking_of(files, PRED),
        # The run's default (--length_buckets=auto): its window of batches is in the position.
        length_buckets=length_buckets.parse(length_buckets.AUTO, SEQ)))
    with tf.Graph().as_default():
        with tf.name_scope("data_position"):  # the loop's name for its iterator
            iterator = tf.data.make_initializable_iterator(input_fn({"batch_size": BATCH}))
        saver = PositionSaver([iterator], Position(stream, restore=True), out, keep=100)
        batch = iterator.get_next()["input_ids"]
        with tf.Session() as sess:
            sess.run([iterator.initializer] + saver.initializers)
            assert saver.restore(sess, reached).startswith("data: restored")
            started = time.perf_counter()
            for _ in range(step - reached):
                sess.run(batch)
            seconds = time.perf_counter() - started
            saver.save(sess, step)
    values = checkpoints.read_checkpoint(tf.train.latest_checkpoint(out))
    values["global_step"] = values["global_step"] * 0 + step
    checkpoints.save_checkpoint(values, os.path.join(out, "model.ckpt-%d" % step))
    tf.train.update_checkpoint_state(out, os.path.join(out, "model.ckpt-%d" % step))
    return seconds


def _resume(records, config, base, run, step):
    """Seconds of the run in ``base``, copied to ``run`` and standing at ``step``, resumed
    for one step."""
    os.makedirs(run)
    for path in glob.glob(os.path.join(base, "*")):
        if os.path.isfile(path):
            subprocess.run(["cp", path, run], check=True)
    subprocess.run(["cp", "-r", os.path.join(base, "data_position"), run], check=True)
    with open(os.path.join(run, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "model.ckpt-%d"\n' % step)
    seconds, log = _run(_flags(records, config, run, step + 1))
    assert "data: restored the position of step %d" % step in log, log[-2000:]
    return seconds


def _position_bytes(out, step):
    from norbert.training import data_position

    return sum(data_position.saved_bytes(out, 0, step).values())


def main():
    work = tempfile.mkdtemp(prefix="norbert-resume-")
    english = [p for p in corpus_files() if "english" in os.path.basename(p)][0]
    records = build_records(english, uncased_vocab(), os.path.join(work, "records"), SEQ, PRED,
                            masking="dynamic", do_lower_case=True)
    config = os.path.join(work, "bert_config.json")
    with open(config, "w") as f:
        import json

        json.dump(dict(SMALL_BERT, vocab_size=30522, max_position_embeddings=512), f)
    rows = []
    base = os.path.join(work, "run")
    _run(_flags(records, config, base, FIRST))  # the first 10 steps: model and position
    reached, skip = FIRST, {FIRST: 0.0}
    for step in LATE:
        skip[step] = skip[reached] + _move_to(records, base, step, reached)
        reached = step
    for step in (FIRST,) + LATE:
        seconds = min(_resume(records, config, base, os.path.join(work, "at%d-%d" % (step, n)),
                              step) for n in range(2))  # the quicker of two
        rows.append((step, seconds, _position_bytes(base, step), skip[step]))
    first = rows[0][1]
    print("## Resuming at a late data position\n")
    print("The small BERT (L=2, H=128) on the English text's records (`--masking=dynamic`, "
          "sequence %d, batch %d), resumed by the same `run_pretraining.py` command with its "
          "data position at step N, training one step: the whole process's wall time (start-up, "
          "plan, graph, restore, one step, save) against the resume at step %d; the bytes of "
          "the position saved beside each checkpoint (`data_position/worker-0/position-N.*`: "
          "the pipeline's shuffle buffer of 100 records, its prefetched batches, the files' "
          "offsets: its size varies with the lengths of the records in the buffers and with "
          "how full tf.data keeps them, bounded by the buffers, whatever the step); and the "
          "seconds the input pipeline alone took to read up to step N, what "
          "a restart that skips the batches already trained on would spend before its first "
          "step. The quicker of two resumes each. Command: `python benchmarks/run_all.py "
          "resume_position`.\n"
          % (SEQ, BATCH, FIRST))
    print(table(["resumed at step", "resume s", "vs step %d" % FIRST, "position bytes",
                 "skipping there instead, s"],
                [("{:,}".format(step), "%.1f" % s, "%.2fx" % (s / first), "{:,}".format(b),
                  "%.1f" % k if k else "-") for step, s, b, k in rows]))


if __name__ == "__main__":
    main()
