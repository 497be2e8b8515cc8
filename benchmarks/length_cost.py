"""What padding costs the tiny model's step, and so the most any length bucketing can gain.

The step time of norbert's training graph (``pretraining_step.py``'s build: forward, backward
and the default update on one fixed batch of 8, after two warm-up steps, the best of 3) on
batches of each of ``--length_buckets=auto``'s lengths, at ``--max_seq_length`` 128 (20
predictions) and 512 (76). With those times (linear between them), the records' own real lengths
give the step time of a batching that computed no padding at all: the mean over the examples of
t(real length). ``t(max length) / that mean`` is the speed-up no bucketing can pass; the goal of
``length_buckets.py`` (1 + 0.8 x (1 / (1 - padding share) - 1)) assumes a step's cost
proportional to its positions, which a model whose step is mostly length-independent work (the
masked-LM output over the vocab for every prediction, the embedding table's update) is not.

Then what auto gains in fact, on the same records read by norbert's own input pipeline
(``--seed=1``): the training graphs of ``--length_buckets=none`` and ``auto`` in one process,
run in turns of ``BLOCK`` steps (the order of the two rotating every turn) over several grouping
windows, so that the machine's drift (on a shared 2-core machine, a third between stretches of a
few seconds) falls on both alike; auto's real tokens/s over none's, over the whole and each half
of the turns (their gap shows the noise left). The goal the speed-up is held to here: 80% of what
padding costs this model, ``1 + 0.8 x (no padding at all - 1)``.

Records: ``length_buckets.py``'s (``../shared/data/*.txt``, norbert's reference-exact builder,
the uncased 30,522-token vocab, dupe factor 1). ``NORBERT_BENCH_QUICK=1``: length 128 only, one
measurement per length, fewer turns.
"""

import os
import shutil
import sys
import tempfile
import time

import numpy as np

from common import QUICK, build_records, corpus_files, table, uncased_vocab
from length_buckets import TINY, goal, real_lengths
from pretraining import bert_config
import pretraining_step

CASES = ((128, 20, 40), (512, 76, 10))  # (length, predictions, timed steps)
REPEATS = 1 if QUICK else 3
# Turns of the interleaved runs: steps per turn, and turns of each run per length (40 x 32
# steps of batch 8 at 128: 10 grouping windows of 1,024 examples; 12 x 32 at 512: 3).
BLOCK = 32
TURNS = {128: 12 if QUICK else 40, 512: 12}


def step_seconds(config, length, predictions, steps):
    """Best seconds per step of norbert's default graph on batches of ``length`` positions."""
    pretraining_step.S, pretraining_step.P = length, predictions  # its batch's shape
    return min(pretraining_step._seconds_per_step("adamw", config, steps)
               for _ in range(REPEATS))


def training_session(records, seq, pred, buckets):
    """(session, fetches) of norbert's default training graph (``pretraining_step``'s) on
    ``records`` as its input pipeline reads them with ``--length_buckets=buckets`` (batch 8,
    seed 1), warmed up; the fetches' last is the batch's real tokens."""
    import tensorflow.compat.v1 as tf

    from norbert.training import length_buckets
    from norbert.training.input_pipeline import InputConfig, make_input_fn

    inputs = InputConfig(input_files=[records], max_seq_length=seq, max_predictions_per_seq=pred,
                         is_training=True, seed=1,
                         length_buckets=length_buckets.parse(buckets, seq))
    batch = {}

    def features():
        batch.update(tf.data.make_one_shot_iterator(
            make_input_fn(inputs)({"batch_size": pretraining_step.B})).get_next())
        return batch

    graph, init, train_op, loss, options = pretraining_step._build(
        "adamw", bert_config(TINY), features)
    with graph.as_default():
        fetches = [train_op, loss, tf.reduce_sum(batch["input_mask"])]
    sess = tf.Session(graph=graph, config=options)
    sess.run(init)
    for _ in range(3):
        sess.run(fetches)
    return sess, fetches


def interleaved(records, seq, pred):
    """Auto's real tokens/s over none's: (all the turns, first half, second half)."""
    runs = {b: training_session(records, seq, pred, b) for b in ("none", "auto")}
    tokens = {b: [] for b in runs}
    seconds = {b: [] for b in runs}
    order = list(runs)
    try:
        for turn in range(TURNS[seq]):
            for name in order[turn % 2:] + order[:turn % 2]:
                sess, fetches = runs[name]
                start, count = time.perf_counter(), 0
                for _ in range(BLOCK):
                    count += int(sess.run(fetches)[-1])
                seconds[name].append(time.perf_counter() - start)
                tokens[name].append(count)
    finally:
        for sess, _ in runs.values():
            sess.close()

    def ratio(part):
        rate = {b: sum(tokens[b][part]) / sum(seconds[b][part]) for b in runs}
        return rate["auto"] / rate["none"]

    half = TURNS[seq] // 2
    return ratio(slice(None)), ratio(slice(None, half)), ratio(slice(half, None))


def main():
    import tensorflow.compat.v1 as tf

    tf.disable_eager_execution()
    config = bert_config(TINY)
    work = tempfile.mkdtemp(prefix="bench_length_cost_")
    rows, gains = [], []
    try:
        for seq, pred, steps in CASES[:1] if QUICK else CASES:
            records = os.path.join(work, "train-%d.tfrecord" % seq)
            build_records(",".join(corpus_files()), uncased_vocab(), records, seq, pred,
                          dupe_factor=1)
            lengths = real_lengths(records)
            points = [seq * (i + 1) // 8 for i in range(8)]  # auto's bucket lengths
            seconds = [step_seconds(config, n, pred, steps) for n in points]
            print("  %d: %s" % (seq, seconds), file=sys.stderr, flush=True)
            slope = (seconds[-1] - seconds[0]) / (points[-1] - points[0])
            fixed = seconds[-1] - slope * points[-1]  # the line through the ends, at length 0
            padding = 1 - lengths.mean() / seq
            bound = seconds[-1] / np.interp(lengths, points, seconds).mean()
            rows.append((str(seq), "%.1f%%" % (100 * padding),
                         " ".join("%d: %.1f" % (n, 1000 * s) for n, s in zip(points, seconds)),
                         "%.0f%%" % (100 * fixed / seconds[-1]), "%.2fx" % bound,
                         "%.2fx" % goal(1 / (1 - padding))))
            whole, first, second = interleaved(records, seq, pred)
            print("  %d: auto %.3f %.3f %.3f" % (seq, whole, first, second), file=sys.stderr,
                  flush=True)
            gains.append((str(seq), "%.3fx" % bound, "%.3fx" % goal(bound),
                          "%.3fx (%.3fx, %.3fx)" % (whole, first, second),
                          "%.0f%%" % (100 * (whole - 1) / (bound - 1))))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("## Length buckets: what padding costs the tiny model\n")
    print("The tiny model's (L=2, H=128) training step on batches of 8 cut to each of "
          "`--length_buckets=auto`'s lengths (norbert's default graph, in-process, the best of "
          "%d), and the speed-up a batching that computed no padding at all would reach on "
          "`length_buckets.py`'s records: the step time at full length over the mean, over the "
          "examples, of the step time at each one's real length (linear between the measured "
          "lengths). The length-independent share is where the line through the shortest and "
          "the full length meets length 0. Command: `python benchmarks/run_all.py "
          "length_cost`.\n" % REPEATS)
    print(table(["length", "padding", "ms per step at each bucket length",
                 "length-independent share", "no padding at all", "goal"], rows))
    print("\nWhat auto gains over none in fact: the two training graphs in one process, reading "
          "the records through norbert's input pipeline (`--seed=1`, batch %d), in turns of %d "
          "steps (the order rotating every turn; %s turns of each), real tokens/s of auto over "
          "none, over all the turns and (in brackets) each half of them; and the share of what "
          "padding costs (no padding at all) that auto recovers. The goal here: 80%% of it.\n"
          % (pretraining_step.B, BLOCK,
             " and ".join("%d at %d" % (TURNS[int(r[0])], int(r[0])) for r in gains)))
    print(table(["length", "no padding at all", "goal: 80% of it", "auto over none",
                 "recovered"], gains))


if __name__ == "__main__":
    main()
