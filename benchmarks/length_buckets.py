"""Length buckets: real tokens per second with --length_buckets=auto against none and against
Google's run_pretraining, on the same records; and held-out masked-LM accuracy after the same
number of examples, auto against none, over 3 seeds.

Records: ``../shared/data/*.txt`` with norbert's reference-exact builder (the uncased
30,522-token vocab, dupe factor 1), at ``--max_seq_length`` 128 (20 predictions) and 512
(76). Their padding share is counted from the records. Speed: whole processes of each tool.
Google's: the steady state as the difference of a short and a long run (``pretraining.py``'s
method); every batch is full length, so real tokens/s = examples/s x the records' real tokens
per example. norbert: one long run with ``--seed=1`` (the same batches every repeat) logging
every ``short`` steps; its steady real tokens/s are the real tokens it counted after the first
log line over the time they took (from the log lines' examples/s and real tokens/s). Counting
the tokens of the batches actually run matters with buckets: a few steps are a sample of a
grouping window's batches, short and long, so examples/s alone would depend on which batches
they were. The goal the buckets are held to: a steady-state speed-up over none of at least
1 + 0.8 x (1 / (1 - padding share) - 1).

``NORBERT_BENCH_QUICK=1``: the tiny config at 128 only, and one accuracy seed.
``NORBERT_BENCH_PART=speed`` or ``accuracy``: that part alone; ``NORBERT_BENCH_SEEDS=4,5,6``:
the accuracy's seeds (default 1, 2, 3); ``NORBERT_BENCH_STEPS=30,810``: every speed case's
(short, long) steps (longer runs span several grouping windows of 1,024 examples).
"""

import json
import os
import re
import shutil
import sys
import tempfile

import numpy as np

from common import QUICK, build_records, corpus_files, table, uncased_vocab
from pretraining import BATCH, REFERENCE_CODE, SCRIPT, bert_config
import pretraining

# NORBERT_BENCH_PART=speed or accuracy: one part only (while tuning it); run_all runs both.
PART = os.environ.get("NORBERT_BENCH_PART", "")
# NORBERT_BENCH_STEPS=short,long: the speed runs' steps instead of each case's own.
STEPS = tuple(int(n) for n in os.environ.get("NORBERT_BENCH_STEPS", "").split(",") if n)
TINY = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512)
BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
            intermediate_size=3072)
# (model name, fields, sequence length, predictions, (short, long) steps)
CASES = [
    ("tiny (L=2, H=128)", TINY, 128, 20, (10, 110)),
    ("tiny (L=2, H=128)", TINY, 512, 76, (5, 45)),
    ("BERT-base (L=12, H=768)", BASE, 128, 20, (2, 12)),
    ("BERT-base (L=12, H=768)", BASE, 512, 76, (1, 7)),
]
# The accuracy runs: a vocab of 3,000 pieces learned from the training part, so that the tiny
# model learns past the most frequent pieces within minutes on the CPU (as make demo-scratch).
ACCURACY = dict(seq=128, pred=20, batch=32, steps=2000, vocab=3000, lr=1e-3, seeds=(1, 2, 3))


def goal(no_padding_speedup):
    """The speed-up over none that buckets are held to: 80% of what padding costs, given the
    speed-up of computing no padding at all (``1 / (1 - padding share)`` when a step's cost is
    proportional to its positions)."""
    return 1 + 0.8 * (no_padding_speedup - 1)


def real_lengths(records_glob, feature="input_mask"):
    """[real tokens of each example] of the records (the ones of their input_mask), or of
    another 0/1 ``feature`` (``masked_lm_weights``: real predictions)."""
    import tensorflow.compat.v1 as tf

    tf.disable_eager_execution()
    lengths = []
    for path in tf.io.gfile.glob(records_glob):
        for record in tf.python_io.tf_record_iterator(path):
            values = tf.train.Example.FromString(record).features.feature[feature]
            lengths.append(sum(values.int64_list.value or values.float_list.value))
    return np.array(lengths)


def padding_share(records_glob, seq, feature="input_mask"):
    """Share of all positions of the records (``seq`` each) that are padding (input_mask 0);
    or of all prediction slots (``masked_lm_weights``, ``seq`` the predictions) weighing 0."""
    return 1.0 - real_lengths(records_glob, feature).mean() / seq


def speed_rows(work, records, seq, pred, name, fields, steps, tokens):
    """({label: steady real tokens/s}, {label: the long run's whole-process seconds});
    ``tokens``: the records' real tokens per example."""
    config_path = os.path.join(work, "bert_config.json")
    with open(config_path, "w") as f:
        json.dump(bert_config(fields), f)
    base = ["--input_file=" + records, "--bert_config_file=" + config_path,
            "--max_seq_length=%d" % seq, "--max_predictions_per_seq=%d" % pred,
            "--train_batch_size=%d" % BATCH, "--learning_rate=1e-4", "--num_warmup_steps=1",
            "--save_checkpoints_steps=100000", "--do_train=True"]
    short, long_ = steps
    print("  %s, %d" % (name, seq), file=sys.stderr, flush=True)

    def reference(n, out):
        return [sys.executable, "-c", REFERENCE_CODE] + base + [
            "--output_dir=" + out, "--num_train_steps=%d" % n]

    label = "Google's run_pretraining.py"
    best = pretraining.fastest_runs({label: reference}, steps, work)
    rates = {label: pretraining.steady_rates(best, [label], steps)[label] * tokens}
    whole = {label: best[label, long_]}
    for buckets in ("none", "auto"):
        label = "norbert, --length_buckets=" + buckets
        command = [sys.executable, SCRIPT] + base + [
            "--output_dir=" + os.path.join(work, "out"), "--num_train_steps=%d" % long_,
            "--log_every_steps=%d" % short, "--seed=1", "--length_buckets=" + buckets]
        for _ in range(pretraining.REPEATS):
            print("    %s, %d steps" % (label, long_), file=sys.stderr, flush=True)
            shutil.rmtree(os.path.join(work, "out"), ignore_errors=True)
            seconds, log = run_logged(command)
            rates[label] = max(rates.get(label, 0.0), logged_rate(log))
            whole[label] = min(whole.get(label, seconds), seconds)
    return rates, whole


# "step 20/110  loss 7.1  2.10 steps/s  16.8 examples/s  1702 real tokens/s (18% padding)"
LOG_LINE = re.compile(r"step \d+/\d+ .* ([\d.]+) examples/s +([\d.]+) real tokens/s")


def run_logged(cmd):
    """(whole-process seconds, the run's log) of ``cmd``."""
    import subprocess
    import time

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=pretraining.REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit("%s failed:\n%s" % (" ".join(cmd[:3]), done.stdout[-3000:]))
    return seconds, done.stdout


def logged_rate(log):
    """Real tokens/s after the first log line (start-up and the first window): the tokens the
    lines report over the seconds they cover. Each line covers ``short`` steps of BATCH."""
    lines = [(float(e), float(t)) for e, t in LOG_LINE.findall(log)][1:]
    if not lines:
        raise SystemExit("no steady log lines in:\n" + log[-3000:])
    seconds = [1.0 / e for e, _ in lines]  # per example: each line covers as many examples
    return sum(t * s for (_, t), s in zip(lines, seconds)) / sum(seconds)


def accuracy_seeds():
    """The seeds the accuracy runs: NORBERT_BENCH_SEEDS, else ACCURACY's (one when QUICK)."""
    named = os.environ.get("NORBERT_BENCH_SEEDS", "")
    if named:
        return tuple(int(s) for s in named.split(","))
    return ACCURACY["seeds"][:1] if QUICK else ACCURACY["seeds"]


def accuracy(work):
    """Held-out masked-LM accuracy after the same examples: auto against none, per seed."""
    from common import corpus_split, evaluate
    from norbert import build_vocab, run_pretraining

    a = ACCURACY
    seeds = accuracy_seeds()
    train_text, heldout_text = corpus_split(work)
    vocab = os.path.join(work, "acc_vocab.txt")
    build_vocab(input_file=train_text, output_file=vocab, vocab_size=a["vocab"],
                do_lower_case=True)
    train = build_records(train_text, vocab, os.path.join(work, "acc_train"), a["seq"],
                          a["pred"], dupe_factor=2)
    heldout = build_records(heldout_text, vocab, os.path.join(work, "acc_heldout"), a["seq"],
                            a["pred"])
    config_path = os.path.join(work, "acc_config.json")
    with open(config_path, "w") as f:
        json.dump(dict(bert_config(TINY), vocab_size=a["vocab"]), f)
    found = {}
    for buckets in ("none", "auto"):
        for seed in seeds:
            out = os.path.join(work, "acc-%s-%d" % (buckets, seed))
            run_pretraining(input_file=train, bert_config_file=config_path, output_dir=out,
                            max_seq_length=a["seq"], max_predictions_per_seq=a["pred"],
                            do_train=True, train_batch_size=a["batch"],
                            num_train_steps=a["steps"], num_warmup_steps=a["steps"] // 10,
                            learning_rate=a["lr"], save_checkpoints_steps=a["steps"], seed=seed,
                            log_every_steps=a["steps"], length_buckets=buckets)
            result = evaluate(heldout, config_path, out, os.path.join(out, "eval"), a["seq"],
                              a["pred"])
            found.setdefault(buckets, []).append(float(result["masked_lm_accuracy"]))
    return found


def main():
    work = tempfile.mkdtemp(prefix="bench_buckets_")
    vocab = uncased_vocab()
    speed, shares, predictions = [], {}, {}
    try:
        for name, fields, seq, pred, steps in CASES if PART in ("", "speed") else ():
            if QUICK and (seq != 128 or fields is not TINY):
                continue
            records = os.path.join(work, "train-%d.tfrecord" % seq)
            if seq not in shares:
                build_records(",".join(corpus_files()), vocab, records, seq, pred,
                              dupe_factor=1)
                shares[seq] = padding_share(records, seq)
                predictions[seq] = padding_share(records, pred, "masked_lm_weights")
            tokens = (1 - shares[seq]) * seq  # real tokens per example
            rates, whole = speed_rows(work, records, seq, pred, name, fields, STEPS or steps,
                                      tokens)
            ref, none = rates["Google's run_pretraining.py"], rates[
                "norbert, --length_buckets=none"]
            target = goal(1 / (1 - shares[seq]))
            for label, rate in rates.items():
                speed.append((name, str(seq), label, "%.0f" % rate,
                              "%.2fx" % (rate / ref), "%.2fx" % (rate / none),
                              "%.0f s" % whole[label],
                              "%.2fx" % target if label.endswith("auto") else ""))
                print("    %s" % " | ".join(speed[-1]), file=sys.stderr, flush=True)
        found = accuracy(work) if PART in ("", "accuracy") else {}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("## Length buckets: padding not paid for\n")
    print("Records built from `../shared/data/*.txt` by norbert's reference-exact builder (the "
          "uncased 30,522-token vocab, dupe factor 1): padding is %s of all positions "
          "(and %s of all prediction slots, which auto cuts too). "
          "Training on the CPU, batch %d; real tokens/s (padding excluded) in the steady state, "
          "the best of %d runs: for Google's, the difference of a short and a long run "
          "(`benchmarks/pretraining.py`'s method; every batch is full length); for norbert, "
          "one long run with `--seed=1` logging every short run's steps, the real tokens it "
          "counted after its first log line over the time they took (the batches of a few "
          "steps are a sample of a window's short and long ones, so the tokens actually run "
          "are counted); and the whole process of the long run. The goal for auto is a "
          "steady-state speed-up over none of 1 + 0.8 x (1 / (1 - padding share) - 1). "
          "Command: `python benchmarks/run_all.py length_buckets`.\n"
          % (" and ".join("%.1f%% at length %d" % (100 * p, s) for s, p in sorted(shares.items())),
             " and ".join("%.1f%% at length %d" % (100 * p, s)
                          for s, p in sorted(predictions.items())),
             BATCH, pretraining.REPEATS))
    if speed:
        print(table(["model", "length", "run", "real tokens/s", "vs Google's", "vs none",
                     "whole process", "goal"], speed))
    a = ACCURACY
    if not found:
        print("\nHeld-out masked-LM accuracy, auto against none: not measured in this run "
              "(`NORBERT_BENCH_PART=speed`).")
        return
    print("\nHeld-out masked-LM accuracy after the same examples (tiny model, an uncased vocab "
          "of %d pieces built by norbert from the training part, length %d, batch %d, %d "
          "steps, learning rate %g; 90%% of the documents to train (dupe factor 2), 10%% held "
          "out), one run per seed %s:\n"
          % (a["vocab"], a["seq"], a["batch"], a["steps"], a["lr"],
             ", ".join(str(s) for s in accuracy_seeds())))
    rows = [(b, " ".join("%.4f" % v for v in values), "%.4f" % np.mean(values),
             "%.4f" % np.std(values)) for b, values in found.items()]
    print(table(["--length_buckets", "accuracy per seed", "mean", "spread (std)"], rows))


if __name__ == "__main__":
    main()
