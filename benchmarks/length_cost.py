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

Records: ``length_buckets.py``'s (``../shared/data/*.txt``, norbert's reference-exact builder,
the uncased 30,522-token vocab, dupe factor 1). ``NORBERT_BENCH_QUICK=1``: length 128 only, one
measurement per length.
"""

import os
import shutil
import sys
import tempfile

import numpy as np

from common import QUICK, build_records, corpus_files, table, uncased_vocab
from length_buckets import TINY, real_lengths
from pretraining import bert_config
import pretraining_step

CASES = ((128, 20, 40), (512, 76, 10))  # (length, predictions, timed steps)
REPEATS = 1 if QUICK else 3


def step_seconds(config, length, predictions, steps):
    """Best seconds per step of norbert's default graph on batches of ``length`` positions."""
    pretraining_step.S, pretraining_step.P = length, predictions  # its batch's shape
    return min(pretraining_step._seconds_per_step("adamw", config, steps)
               for _ in range(REPEATS))


def main():
    import tensorflow.compat.v1 as tf

    tf.disable_eager_execution()
    config = bert_config(TINY)
    work = tempfile.mkdtemp(prefix="bench_length_cost_")
    rows = []
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
                         "%.2fx" % (1 + 0.8 * (1 / (1 - padding) - 1))))
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


if __name__ == "__main__":
    main()
