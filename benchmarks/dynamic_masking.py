"""Masks drawn at training time against masks in the records: size, accuracy, input speed.

The English text is split (90% to train on, 10% held out); a 4,000-token vocab is learned from
the training part; its records are built three times: with static masks (``dupe_factor`` 5),
for ``--masking=dynamic`` (``dupe_factor`` 1: pairs cut once, masks drawn when read) and for
``--pairing=dynamic`` (``dupe_factor`` 1: chunks, paired and masked when read); the small BERT
is trained for the same steps, batch and seed on each, and all are evaluated on the same
held-out records (static masks, built once). Then each dynamic input pipeline alone (no model)
is timed against the examples/s its run trained at. Prints one Markdown section.

``python benchmarks/run_all.py dynamic_masking`` (about 30 minutes here);
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

    from norbert.training import input_pipeline, record_checks

    files = record_checks.record_files(records)
    masking = record_checks.dynamic_masking_of(files, PRED)
    input_fn = input_pipeline.make_input_fn(input_pipeline.InputConfig(
        input_files=files, max_seq_length=SEQ, max_predictions_per_seq=PRED, is_training=True,
        seed=1, masking=masking, pairing=record_checks.dynamic_pairing_of(files)))
    with tf.Graph().as_default():
        batch = tf.data.make_one_shot_iterator(input_fn({"batch_size": BATCH})).get_next()
        with tf.Session() as sess:
            for _ in range(20):  # warm up: files opened, buffers filled
                sess.run(batch)
            start = time.perf_counter()
            for _ in range(batches):
                sess.run(batch)
            return batches * BATCH / (time.perf_counter() - start)


VARIANTS = (("static", dict(dupe_factor=STATIC_DUPES)),
            ("dynamic", dict(masking="dynamic")),
            ("dynamic pairs", dict(pairing="dynamic")))


def compare(work, steps):
    """({"static"|"dynamic"|"dynamic pairs": held-out eval results, plus bytes, records, rate
    (trained examples/s)} of the small BERT trained ``steps`` steps on each kind of record,
    {"dynamic"|"dynamic pairs": its input pipeline's examples/s alone})."""
    from norbert import build_vocab, load_vocab
    from norbert.data import sidecar

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
    for name, settings in VARIANTS:
        records = build_records(train_text, path("vocab.txt"),
                                path(name.replace(" ", "_") + ".tfrecord"), SEQ, PRED, **settings)
        count = sidecar.records_in_file(sidecar.read(records), records)
        run = path("run_" + name.replace(" ", "_"))
        train(records, path("bert_config.json"), run, steps, SEQ, PRED, BATCH)
        result = evaluate(held, path("bert_config.json"), run, run + "_eval", SEQ, PRED)
        results[name] = dict(result, bytes=_bytes(records), records=count,
                             dupe_factor=settings.get("dupe_factor", 1),
                             rate=_trained_rate(run))
    pipelines = {name: _pipeline_rate(path(name.replace(" ", "_") + ".tfrecord"),
                                      100 if QUICK else 400)
                 for name, _ in VARIANTS[1:]}
    return results, pipelines


def main():
    import absl.logging

    absl.logging.set_verbosity(absl.logging.WARNING)
    with tempfile.TemporaryDirectory() as work:
        results, pipelines = compare(work, STEPS)
    rows = [[name, r["dupe_factor"], r["records"], "%.1f" % (r["bytes"] / 1e6),
             "%.3f" % r["masked_lm_accuracy"], "%.3f" % r["masked_lm_loss"],
             "%.3f" % r["next_sentence_loss"], "%.0f" % r["rate"]]
            for name, r in results.items()]
    static = results["static"]
    print("## Masks drawn at training time\n")
    print("The small BERT (2 layers of 128, length %d, %d predictions) trained for %d steps of "
          "batch %d on the English text (90%%; a 4,000-token vocab learned from it), on records "
          "with static masks (`--dupe_factor=%d`), on `--masking=dynamic` records "
          "(`--dupe_factor=1`: pairs cut once, fresh masks at every read) and on "
          "`--pairing=dynamic` records (`--dupe_factor=1`: chunks, a fresh pair and fresh masks "
          "at every read), then evaluated on the same held-out records (the other 10%%, static "
          "masks). Command: `python benchmarks/run_all.py dynamic_masking`.\n"
          % (SEQ, PRED, STEPS, BATCH, STATIC_DUPES))
    print(table(["kind", "dupe_factor", "records", "MB", "held-out accuracy",
                 "held-out MLM loss", "held-out NSP loss", "trained examples/s"], rows))
    for name, rate in pipelines.items():
        r = results[name]
        print("\n`%s`: %.2f of the static records' bytes (1/%d would be %.2f); held-out accuracy "
              "minus static: %+.3f; its input pipeline alone (parse, shuffle, batch, %sdraw "
              "masks; no model) delivers %.0f examples/s, %.1fx what the small BERT trained at."
              % (name, r["bytes"] / static["bytes"], STATIC_DUPES, 1.0 / STATIC_DUPES,
                 r["masked_lm_accuracy"] - static["masked_lm_accuracy"],
                 "pair the chunks, " if "pairs" in name else "", rate, rate / r["rate"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
