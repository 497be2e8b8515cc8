"""Masks drawn at training time against masks in the records: size, accuracy, input speed.

The English text is split (90% to train on, 10% held out); a 4,000-token vocab is learned from
the training part; its records are built twice, with static masks (``dupe_factor`` 5) and for
``--masking=dynamic`` (``dupe_factor`` 1); the small BERT is trained for the same steps, batch
and seed on each, and both are evaluated on the same held-out records (static masks, built
once). Then the dynamic input pipeline alone (no model) is timed against the examples/s the
dynamic run trained at. Prints one Markdown section.

``python benchmarks/run_all.py dynamic_masking`` (about 15 minutes here);
``NORBERT_BENCH_QUICK=1``: a smoke run with fewer steps.
"""

import glob
import json
import os
import sys
import tempfile
import time

from common import (QUICK, SMALL_BERT, build_records, corpus_files, evaluate, split_documents,
                    table, train)

STEPS = 200 if QUICK else 3000
SEQ, PRED, BATCH = 64, 10, 32
STATIC_DUPES = 5


def _bytes(path):
    return sum(os.path.getsize(p) for p in glob.glob(path + "*") if not p.endswith(".json"))


def _trained_rate(run_dir):
    """The examples/s the run logged, its first window (start-up) left out: the median."""
    import tensorflow.compat.v1 as tf

    rates = []
    for events in sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))):
        for event in tf.train.summary_iterator(events):
            for value in event.summary.value:
                if value.tag == "examples_per_sec":
                    rates.append(value.simple_value)
    rates = sorted(rates[1:] or rates)
    return rates[len(rates) // 2]


def _pipeline_rate(records, batches):
    """Examples/s of the training input pipeline alone, masks drawn, on the CPU."""
    import tensorflow.compat.v1 as tf

    from norbert.training import input_pipeline

    files = input_pipeline.record_files(records)
    masking = input_pipeline.dynamic_masking_of(files, PRED)
    input_fn = input_pipeline.make_input_fn(input_pipeline.InputConfig(
        input_files=files, max_seq_length=SEQ, max_predictions_per_seq=PRED, is_training=True,
        seed=1, masking=masking))
    with tf.Graph().as_default():
        batch = tf.data.make_one_shot_iterator(input_fn({"batch_size": BATCH})).get_next()
        with tf.Session() as sess:
            for _ in range(20):  # warm up: files opened, buffers filled
                sess.run(batch)
            start = time.perf_counter()
            for _ in range(batches):
                sess.run(batch)
            return batches * BATCH / (time.perf_counter() - start)


def compare(work, steps):
    """{"static"|"dynamic": held-out eval results, plus bytes, records, rate (trained
    examples/s)} of the small BERT trained ``steps`` steps on each kind of record, and the
    dynamic input pipeline's examples/s alone."""
    from norbert import build_vocab, load_vocab

    path = lambda name: os.path.join(work, name)
    english = [p for p in corpus_files() if "english" in p][0]
    train_text, held_text = split_documents(english, 0.9, work, ("train.txt", "held.txt"))
    build_vocab(input_file=train_text, output_file=path("vocab.txt"), vocab_size=4000,
                progress=False)
    with open(path("bert_config.json"), "w") as f:
        json.dump(dict(SMALL_BERT, vocab_size=len(load_vocab(path("vocab.txt"))),
                       max_position_embeddings=SEQ), f)
    held = build_records(held_text, path("vocab.txt"), path("held.tfrecord"), SEQ, PRED,
                         seed=7, dupe_factor=2)
    results = {}
    for name, settings in (("static", dict(dupe_factor=STATIC_DUPES)),
                           ("dynamic", dict(masking="dynamic"))):
        records = build_records(train_text, path("vocab.txt"), path(name + ".tfrecord"),
                                SEQ, PRED, **settings)
        with open(records + ".meta.json") as f:
            count = json.load(f)["instances_in_file"]
        train(records, path("bert_config.json"), path("run_" + name), steps, SEQ, PRED, BATCH)
        result = evaluate(held, path("bert_config.json"), path("run_" + name),
                          path("eval_" + name), SEQ, PRED)
        results[name] = dict(result, bytes=_bytes(records), records=count,
                             dupe_factor=settings.get("dupe_factor", 1),
                             rate=_trained_rate(path("run_" + name)))
    pipeline = _pipeline_rate(path("dynamic.tfrecord"), 100 if QUICK else 400)
    return results, pipeline


def main():
    import absl.logging

    absl.logging.set_verbosity(absl.logging.WARNING)
    with tempfile.TemporaryDirectory() as work:
        results, pipeline = compare(work, STEPS)
    rows = [[name, r["dupe_factor"], r["records"], "%.1f" % (r["bytes"] / 1e6),
             "%.3f" % r["masked_lm_accuracy"], "%.3f" % r["masked_lm_loss"], "%.0f" % r["rate"]]
            for name, r in results.items()]
    static, dynamic = results["static"], results["dynamic"]
    print("## Masks drawn at training time\n")
    print("The small BERT (2 layers of 128, length %d, %d predictions) trained for %d steps of "
          "batch %d on the English text (90%%; a 4,000-token vocab learned from it), once on "
          "records with static masks (`--dupe_factor=%d`) and once on `--masking=dynamic` "
          "records (`--dupe_factor=1`, fresh masks at every read), then evaluated on the same "
          "held-out records (the other 10%%, static masks). Command: "
          "`python benchmarks/run_all.py dynamic_masking`.\n"
          % (SEQ, PRED, STEPS, BATCH, STATIC_DUPES))
    print(table(["masking", "dupe_factor", "records", "MB", "held-out accuracy",
                 "held-out loss", "trained examples/s"], rows))
    print("\nDynamic records take %.2f of the static ones' bytes (1/%d would be %.2f); held-out "
          "accuracy dynamic minus static: %+.3f. The dynamic input pipeline alone (parse, "
          "shuffle, batch, draw masks; no model) delivers %.0f examples/s, %.1fx what the "
          "small BERT trains at on the same machine."
          % (dynamic["bytes"] / static["bytes"], STATIC_DUPES, 1.0 / STATIC_DUPES,
             dynamic["masked_lm_accuracy"] - static["masked_lm_accuracy"], pipeline,
             pipeline / dynamic["rate"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
