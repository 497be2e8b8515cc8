"""What padded positions cost the tiny model's step, the most cutting them can gain, and what
auto gains, all in interleaved runs.

In one process: norbert's training graph (``model_fn.build_model_fn``'s, as the loop runs it:
forward, backward and the default update, the dropout keyed) on one fixed batch of 8 at each
of ``--length_buckets=auto``'s lengths (read from a dataset, as the records are), and on the
records as norbert's input pipeline reads them (``--seed=1``, batch 8) with
``--length_buckets=none`` and ``auto``. Every graph runs in turns (``FIXED_BLOCK`` steps of a
fixed batch, ``BLOCK`` of the records), the order of the graphs rotating every turn, so that
the machine's drift (on a shared 2-core machine, a third between stretches of a few seconds)
falls on all alike. Such a process is one run; the figures move between runs more than within
one (auto's gain at 128 by several times its error within a run), so each length has ``RUNS``
of them, each a fresh process, and every figure is given for each run and as their mean. From
the turns, at ``--max_seq_length`` 128 (20 predictions) and 512 (76):

- the step time at each length, and with those times (linear between them) the records' own
  real lengths give the step time of a batching that computed no padding at all: the mean over
  the examples of t(real length). ``t(max length) / that mean`` is the speed-up no bucketing can
  pass. The goal of ``length_buckets.py`` (1 + 0.8 x (1 / (1 - padding share) - 1)) assumes a
  step's cost proportional to its positions, which a model whose step is mostly
  length-independent work (the masked-LM output over the vocab for every prediction, the
  embedding table's update) is not; the goal held here is 80% of what padding costs this
  model, ``1 + 0.8 x (no padding at all - 1)``;
- what auto's own batches would gain at those step times (the lengths it cut its batches to),
  and what it gains in fact: auto's real tokens/s over none's. The gap between the two is what
  auto's batching costs beyond the shapes it runs (grouping, unknown lengths in the graph).

The fixed batches keep every one of their ``P`` predictions at every length: "no padding at all"
is of positions. Auto also cuts each batch's padded predictions (``length_buckets.cut``), which
the fixed graphs do not, so auto's gain can pass that bound and its share exceed 100%.

Auto's gain and the share of no padding at all it recovers are given with the standard error
of the runs' mean, with each run's seconds over what its steps' shapes take in the fixed
graphs. Then, apart, at length 128 (``path_costs``): what an unknown length in the graph, a
new length every step and the input pipeline each cost a step (``NORBERT_BENCH_PART=turns`` or
``path``: one part).

Records: ``length_buckets.py``'s (``../shared/data/*.txt``, norbert's reference-exact builder,
the uncased 30,522-token vocab, dupe factor 1). ``NORBERT_BENCH_QUICK=1``: length 128 only,
fewer turns and runs. ``python benchmarks/length_cost.py --turns RECORDS LENGTH PREDICTIONS``:
one run's turns, as JSON (what each run's process does).
"""

import collections
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from common import QUICK, build_records, corpus_files, table, uncased_vocab
from length_buckets import TINY, goal, real_lengths
from pretraining import bert_config
import pretraining_step

CASES = ((128, 20), (512, 76))  # (length, predictions)
# Steps per turn: of a graph on the records (32 batches of 8: a quarter of a grouping window of
# 1,024 examples), and of a graph on one fixed batch (the same every step, so fewer are enough).
BLOCK = 32
FIXED_BLOCK = 8
# Runs per length (each a process of its own) and turns of every graph in each run (20 x 32
# steps of batch 8 at 128: 5 grouping windows of 1,024 examples; 12 x 32 at 512: 3).
RUNS = {128: 2 if QUICK else 4, 512: 2}
TURNS = {128: 6 if QUICK else 20, 512: 12}
# Steps before the turns of a graph on the records: a whole grouping window (1,024 examples), so
# that auto has run each of its shapes before it is timed (the steady state, not first uses).
WARM_UP = 128
# The paired measurements of what auto's path could add to a step (``path_costs``): turns of
# two blocks of FIXED_BLOCK steps each, and batches read to time the input pipeline alone.
PAIRED_TURNS = 16 if QUICK else 64
PIPELINE_BATCHES = 1024
PATH_LENGTH = 128  # the length they are measured at, where auto's gain is smallest
# NORBERT_BENCH_PART=turns or path: one part only (each its own section of BENCHMARKS.md).
PART = os.environ.get("NORBERT_BENCH_PART", "")
# The graphs on the records (--length_buckets), beside the fixed batches' (named by length).
ON_RECORDS = ("none", "auto")
# One run's figures (``figures``): seconds per step at each of auto's lengths; the speed-up of
# no padding at all; what auto's batches would gain at those times; what auto gains over none;
# auto's and none's seconds over what their batches' shapes take in the fixed graphs.
RunFigures = collections.namedtuple(
    "RunFigures", "seconds bound predicted gain auto_over_shapes none_over_shapes")


def model_session(config, features, warm_feeds):
    """(session, fetches) of norbert's training graph (``model_fn.build_model_fn``'s, training:
    forward, backward and the default update, the training dropout keyed as the loop runs it),
    with the loop's session options, on the batch ``features()`` makes in the new graph, after
    a step with each of ``warm_feeds``; the fetches: train op, loss, the batch's real tokens
    and its length."""
    import tensorflow.compat.v1 as tf

    from norbert.model.bert_config import BertConfig
    from norbert.training import loop
    from norbert.training.model_fn import ModelFnConfig, build_model_fn
    from norbert.training.config import OptimizerConfig
    from norbert.training.spec import TRAIN, RunConfig

    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(0)
        batch = features()
        model = ModelFnConfig(bert_config=BertConfig(**config), optimizer=OptimizerConfig(
            learning_rate=1e-4, num_train_steps=100000, num_warmup_steps=10))
        spec = build_model_fn(model)(batch, None, TRAIN, {"batch_size": pretraining_step.B})
        fetches = [spec.train_op, spec.loss, tf.reduce_sum(batch["input_mask"]),
                   tf.shape(batch["input_ids"])[1]]
        init = tf.global_variables_initializer()
    sess = tf.Session(graph=graph, config=loop.session_config(RunConfig(output_dir="unused")))
    sess.run(init)
    for feed in warm_feeds:
        sess.run(fetches, feed)
    return sess, fetches


def fixed_batch(seq, pred, length=None):
    """``features()`` for ``model_session``: ``pretraining_step``'s fixed batch of 8 examples of
    ``seq`` positions (its masked positions moved into auto's shortest bucket), read from a
    dataset every step (as the records are: a batch of constants in the graph would let the
    graph optimizer fold what is computed from it alone), the token features cut to ``length``
    (a tensor: the graph does not know its length, as auto's does not; None: left at ``seq``)."""
    import tensorflow.compat.v1 as tf

    from norbert.training import length_buckets

    pretraining_step.S, pretraining_step.P = seq, pred  # its batch's shape
    feed = pretraining_step._feed()
    feed["masked_lm_positions"] %= auto_lengths(seq)[0]

    def features():
        f = tf.data.make_one_shot_iterator(
            tf.data.Dataset.from_tensors(feed).repeat()).get_next()  # shapes static: [B, seq]
        if length is not None:
            n = length()
            for name in length_buckets.TOKEN_FEATURES:
                f[name] = f[name][:, :n]  # [B, n], n unknown to the graph
        return f
    return features


def fixed_session(config, length, predictions):
    """(session, fetches) of ``model_session`` on ``fixed_batch``'s batch of ``length``
    positions, warmed up."""
    return model_session(config, fixed_batch(length, predictions), [{}] * 2)


def auto_lengths(seq):
    """``--length_buckets=auto``'s lengths at ``--max_seq_length=seq`` (eight)."""
    from norbert.training import length_buckets

    return list(length_buckets.parse(length_buckets.AUTO, seq))


def next_batch(records, seq, pred, buckets):
    """In the current graph, the next batch of ``records`` as norbert's input pipeline reads
    them while training with ``--length_buckets=buckets`` (batch 8, seed 1)."""
    import tensorflow.compat.v1 as tf

    from norbert.training import length_buckets
    from norbert.training.input_pipeline import InputConfig, make_input_fn

    inputs = InputConfig(input_files=[records], max_seq_length=seq, max_predictions_per_seq=pred,
                         is_training=True, seed=1,
                         length_buckets=length_buckets.parse(buckets, seq))
    return tf.data.make_one_shot_iterator(
        make_input_fn(inputs)({"batch_size": pretraining_step.B})).get_next()


def training_session(records, seq, pred, buckets):
    """(session, fetches) of ``model_session`` on ``next_batch``'s batches, warmed up
    (``WARM_UP`` steps)."""
    return model_session(bert_config(TINY), lambda: next_batch(records, seq, pred, buckets),
                         [{}] * WARM_UP)


def hidden_session(config, seq, pred):
    """(session, fetches, length) of ``model_session`` on ``fixed_batch``'s batch of ``seq``
    positions cut to ``length`` (a placeholder, ``seq`` by default), warmed up at every bucket
    length twice."""
    import tensorflow.compat.v1 as tf

    length = {}

    def hidden():
        length["n"] = tf.placeholder_with_default(tf.constant(seq), [])
        return length["n"]

    sess, fetches = model_session(config, fixed_batch(seq, pred, hidden), [])
    for n in auto_lengths(seq) * 2:
        sess.run(fetches, {length["n"]: n})
    return sess, fetches, length["n"]


def paired(blocks, turns):
    """Mean and standard error of the per-step difference of two ways of running steps, and
    B's mean step (ms): ``blocks(turn)`` gives two functions, each running ``FIXED_BLOCK``
    steps (A and B; which runs first alternates every turn)."""
    diffs, base = [], []
    for turn in range(turns):
        a, b = blocks(turn)
        spent = {}
        for name, run in ((("a", a), ("b", b)) if turn % 2 else (("b", b), ("a", a))):
            start = time.perf_counter()
            run()
            spent[name] = (time.perf_counter() - start) / FIXED_BLOCK
        diffs.append(spent["a"] - spent["b"])
        base.append(spent["b"])
    diffs = 1000 * np.array(diffs)
    return diffs.mean(), diffs.std() / len(diffs) ** 0.5, 1000 * np.mean(base)


def path_costs(records, seq, pred):
    """What auto's path could add to a step beyond its shapes, each measured apart (ms per step,
    mean and standard error): an unknown length in the graph (the same batch, static graph
    against hidden), a new length every step (the eight bucket lengths shuffled against one
    length per block) and the input pipeline's CPU time per batch, none's and auto's."""
    import tensorflow.compat.v1 as tf

    config = bert_config(TINY)
    static, static_fetches = fixed_session(config, seq, pred)
    hidden, fetches, length = hidden_session(config, seq, pred)
    lengths = auto_lengths(seq)
    rng = random.Random(0)

    def steps(sess, fetches, feeds):
        return lambda: [sess.run(fetches, f) for f in feeds]

    try:
        unknown = paired(lambda turn: (steps(hidden, fetches, [{}] * FIXED_BLOCK),
                                       steps(static, static_fetches, [{}] * FIXED_BLOCK)),
                         PAIRED_TURNS)
        shuffled = paired(lambda turn: (
            steps(hidden, fetches, [{length: n} for n in rng.sample(lengths, FIXED_BLOCK)]),
            steps(hidden, fetches, [{length: lengths[turn % 8]}] * FIXED_BLOCK)),
            PAIRED_TURNS)
    finally:
        static.close()
        hidden.close()
    cpu = {}
    for buckets in ON_RECORDS:
        with tf.Graph().as_default(), tf.Session() as sess:
            batch = next_batch(records, seq, pred, buckets)
            for _ in range(WARM_UP):
                sess.run(batch)
            start = time.process_time()
            for _ in range(PIPELINE_BATCHES):
                sess.run(batch)
            cpu[buckets] = 1000 * (time.process_time() - start) / PIPELINE_BATCHES
    return unknown, shuffled, cpu


def interleaved(records, seq, pred):
    """One run's turns of every graph: {name: [[seconds, real tokens, [batch lengths]] per
    turn]}, names auto's lengths (a fixed batch each) and "none" and "auto" (the records)."""
    config = bert_config(TINY)
    runs = {str(n): fixed_session(config, n, pred) for n in auto_lengths(seq)}
    runs.update((b, training_session(records, seq, pred, b)) for b in ON_RECORDS)
    turns = {name: [] for name in runs}
    order = list(runs)
    try:
        for turn in range(TURNS[seq]):
            k = turn % len(order)
            for name in order[k:] + order[:k]:
                sess, fetches = runs[name]
                fixed = name not in ON_RECORDS
                tokens, lengths = 0, []
                start = time.perf_counter()
                for _ in range(FIXED_BLOCK if fixed else BLOCK):
                    out = sess.run(fetches)
                    real, length = out[-2:]
                    tokens += int(real)
                    lengths.append(int(length))
                turns[name].append([time.perf_counter() - start, tokens, lengths])
    finally:
        for sess, _ in runs.values():
            sess.close()
    return turns


def run(records, seq, pred):
    """``interleaved``'s turns, run in a fresh process (``--turns``)."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--turns", records,
                          str(seq), str(pred)], stdout=subprocess.PIPE, check=True,
                         universal_newlines=True).stdout
    return json.loads(out.splitlines()[-1])


def figures(turns, lengths) -> RunFigures:
    """One run's ``RunFigures``, from its turns (``interleaved``'s) and the records' real
    lengths."""
    def total(name, i):
        return sum(turn[i] for turn in turns[name])

    points = [int(n) for n in turns if n not in ON_RECORDS]
    seconds = [total(str(n), 0) / sum(len(t[2]) for t in turns[str(n)]) for n in points]
    bound = seconds[-1] / np.interp(lengths, points, seconds).mean()
    rate = {b: total(b, 1) / total(b, 0) for b in ON_RECORDS}
    # What each run's steps would take at the fixed graphs' times for their lengths
    shapes = {b: np.interp([n for turn in turns[b] for n in turn[2]], points, seconds).sum()
              for b in ON_RECORDS}
    predicted = (total("auto", 1) / shapes["auto"]) / (total("none", 1) / shapes["none"])
    over = {b: total(b, 0) / shapes[b] for b in ON_RECORDS}
    return RunFigures(seconds, bound, predicted, rate["auto"] / rate["none"], over["auto"],
                      over["none"])


def mean_error(values):
    """The mean of the runs' ``values`` and its standard error."""
    return np.mean(values), np.std(values, ddof=1) / len(values) ** 0.5


def main():
    import tensorflow.compat.v1 as tf

    tf.disable_eager_execution()
    if sys.argv[1:2] == ["--turns"]:  # one run, in its own process (``run``)
        records, seq, pred = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(interleaved(records, seq, pred)), flush=True)
        return
    work = tempfile.mkdtemp(prefix="bench_length_cost_")
    costs, gains, shapes, paths = [], [], [], []
    cases = [c for c in CASES if c[0] == PATH_LENGTH] if PART == "path" else CASES
    try:
        for seq, pred in cases[:1] if QUICK else cases:
            records = os.path.join(work, "train-%d.tfrecord" % seq)
            build_records(",".join(corpus_files()), uncased_vocab(), records, seq, pred,
                          dupe_factor=1)
            if seq == PATH_LENGTH and PART in ("", "path"):
                unknown, shuffled, cpu = path_costs(records, seq, pred)
                paths.append((str(seq), "%+.1f ± %.1f ms of %.1f" % unknown,
                              "%+.1f ± %.1f ms of %.1f" % shuffled,
                              "%.2f ms, %.2f ms" % (cpu["none"], cpu["auto"])))
            if PART not in ("", "turns"):
                continue
            lengths = real_lengths(records)
            points = auto_lengths(seq)
            runs = [figures(run(records, seq, pred), lengths) for _ in range(RUNS[seq])]
            print("  %d: %s" % (seq, runs), file=sys.stderr, flush=True)
            seconds = np.mean([r.seconds for r in runs], axis=0)
            slope = (seconds[-1] - seconds[0]) / (points[-1] - points[0])
            flat = seconds[-1] - slope * points[-1]  # the line through the ends, at length 0
            padding = 1 - lengths.mean() / seq
            costs.append((str(seq), "%.1f%%" % (100 * padding),
                          " ".join("%d: %.1f" % (n, 1000 * t) for n, t in zip(points, seconds)),
                          "%.0f%%" % (100 * flat / seconds[-1]),
                          "%.2fx" % goal(1 / (1 - padding))))

            def cell(field, error=False):  # the runs' mean (± its standard error), each run's
                values = [getattr(r, field) for r in runs]
                mean, err = mean_error(values)
                return "%.3fx%s (%s)" % (mean, " ± %.3f" % err if error else "",
                                         ", ".join("%.3fx" % v for v in values))

            recovered = [100 * (r.gain - 1) / (r.bound - 1) for r in runs]
            gains.append((str(seq), cell("bound"),
                          "%.3fx" % goal(np.mean([r.bound for r in runs])),
                          cell("predicted"), cell("gain", error=True),
                          "%.0f%% ± %.0f (%s)" % (mean_error(recovered) + (
                              ", ".join("%.0f%%" % r for r in recovered),))))
            shapes.append((str(seq), cell("auto_over_shapes"), cell("none_over_shapes")))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if gains:
        print_turns(costs, gains, shapes)
    if paths:
        print("\n## Length buckets: what auto's path could add to a step\n")
        print("The tiny model's training step (norbert's training graph) at length %d, batch %d, "
              "what each thing auto's path does beyond cutting its batches costs apart, per "
              "step: the graph not knowing its length (the same fixed batch, its length hidden "
              "behind a placeholder, against the static graph), a new length every step (that "
              "graph at auto's eight lengths shuffled, against one length per block, the blocks "
              "rotating over the same lengths), each the mean and standard error of %d paired "
              "blocks of %d steps (which runs first alternating), beside the mean step it is "
              "compared with; and the input pipeline's CPU time per batch read alone (%d batches, "
              "after a grouping window), none's and auto's. Command: `NORBERT_BENCH_PART=path "
              "python benchmarks/run_all.py length_cost`.\n"
              % (PATH_LENGTH, pretraining_step.B, PAIRED_TURNS, FIXED_BLOCK, PIPELINE_BATCHES))
        print(table(["length", "unknown length", "a new length every step",
                     "input pipeline's CPU per batch (none, auto)"], paths))


def print_turns(costs, gains, shapes):
    """The interleaved runs' section (``main``'s figures)."""
    print("## Length buckets: what padding costs the tiny model\n")
    print("The tiny model's (L=2, H=128) training step (norbert's training graph) on a fixed batch "
          "of 8 (read from a dataset every step) cut to each of `--length_buckets=auto`'s "
          "lengths, in turns of %d steps, interleaved with the runs below, the mean of the "
          "runs; the length-independent share is where the line through the shortest and the "
          "full length meets length 0, and the goal is `length_buckets.py`'s, 1 + 0.8 x (1 / "
          "(1 - padding share) - 1). Command: `python benchmarks/run_all.py length_cost`.\n"
          % FIXED_BLOCK)
    print(table(["length", "padding", "ms per step at each bucket length",
                 "length-independent share", "goal"], costs))
    print("\nWhat padding costs this model, and what auto recovers of it, measured in the same "
          "turns: no padding at all (of positions: the fixed batches keep all their "
          "predictions, while auto also cuts padded ones, so it can pass this) is the step time "
          "at full length over the mean, over the "
          "records' examples, of the step time at each one's real length (linear between the "
          "lengths above); the goal here is 80%% of it. Auto's batches predict what the lengths "
          "auto cut its batches to would gain at those step times; auto over none is what it "
          "gained: the training graphs of none and auto reading the records through norbert's "
          "input pipeline (`--seed=1`, batch %d), in turns of %d steps (the order of all the "
          "graphs rotating every turn), real tokens/s of auto over none; recovered: auto over "
          "none's share of no padding at all. Runs, each a process of its own: %s; each figure is "
          "the runs' mean, with (in brackets) each run's, auto's gain and share with the "
          "standard error of the mean.\n"
          % (pretraining_step.B, BLOCK,
             ", ".join("%d at %s (%d turns of every graph)" % (RUNS[int(r[0])], r[0],
                                                               TURNS[int(r[0])]) for r in gains)))
    print(table(["length", "no padding at all", "goal: 80% of it", "auto's batches predict",
                 "auto over none", "recovered"], gains))
    print("\nWhere auto's gain and its batches' prediction part: each run's seconds over what its "
          "steps would take at the fixed-batch graphs' times for their lengths (1.000x: its "
          "steps cost what their shapes cost; the input pipeline, unknown lengths and changing "
          "shapes are what is over).\n")
    print(table(["length", "auto's steps over their shapes'", "none's steps over the full "
                 "length's"], shapes))


if __name__ == "__main__":
    main()
