"""Masked LM alone (``--objective=mlm``, packed full, ``--cross_documents=true``) against
Google's masked LM + next sentence (``mlm_nsp``): held-out masked-LM accuracy after the same
number of trained tokens, over 3 seeds, with the time each run took.

The text: ``../shared/data/*.txt``, 90% of the documents to train on and 10% held out; an uncased
vocab of 3,000 pieces built by norbert from the training part, and the tiny model at length 128
(``length_buckets.py``'s accuracy setting, as ``make demo-scratch``). Both kinds of records are
built from the same training text (dupe factor 2, seed 1). The ``mlm_nsp`` runs train
``STEPS`` steps; the ``mlm`` runs the steps that give the same real tokens (padding excluded),
from the records' real tokens per example: packed records hold more of them. Every model is
evaluated on the same held-out records of both kinds (Google's pairs, and packed records);
masked-LM accuracy only. The runs use ``--length_buckets=auto`` (the default).

Each pretrained model is then fine-tuned on UPOS tags (``evaluate_downstream``, one fine-tuning
seed: the pretraining run's) on ``downstream.py``'s split of UD Norwegian Bokmål's dev file,
beside the same tiny model from random weights (seeds 1, 2, 3): does either objective give the
encoder something a tagger can use, and does one give more?

``NORBERT_BENCH_QUICK=1``: one seed and 100 steps (a smoke run, not recorded).
"""

import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from common import QUICK, build_records, corpus_split, evaluate, table
from downstream import SETTINGS as UPOS_SETTINGS
from downstream import UD_FILE, split_by_sentence
from length_buckets import TINY, padding_share
from pretraining import bert_config

SEQ, PRED, BATCH, VOCAB, LR = 128, 20, 32, 3000, 1e-3
STEPS = 100 if QUICK else 2000  # of the mlm_nsp runs
SEEDS = (1,) if QUICK else (1, 2, 3)
OBJECTIVES = {"mlm_nsp": {}, "mlm": dict(objective="mlm", cross_documents=True)}
# Fine-tuning the tiny model on UPOS: downstream.py's settings, at the pretraining runs' learning
# rate (a model this small takes a larger one than BERT-base's 1e-4).
UPOS = dict(UPOS_SETTINGS, learning_rate=LR, num_seeds=1)


def prepare(work):
    """(training records, held-out records, real tokens per training example), each keyed by
    objective, the model's config file and vocab."""
    from norbert import build_vocab

    train_text, heldout_text = corpus_split(work)
    vocab = os.path.join(work, "vocab.txt")
    build_vocab(input_file=train_text, output_file=vocab, vocab_size=VOCAB, do_lower_case=True)
    train, heldout, tokens = {}, {}, {}
    for objective, settings in OBJECTIVES.items():
        train[objective] = build_records(train_text, vocab, os.path.join(
            work, "train-%s.tfrecord" % objective), SEQ, PRED, dupe_factor=2, **settings)
        heldout[objective] = build_records(heldout_text, vocab, os.path.join(
            work, "heldout-%s.tfrecord" % objective), SEQ, PRED, **settings)
        tokens[objective] = (1 - padding_share(train[objective], SEQ)) * SEQ
    config = os.path.join(work, "bert_config.json")
    with open(config, "w") as f:
        json.dump(dict(bert_config(TINY), vocab_size=VOCAB), f)
    return train, heldout, tokens, config, vocab


def steps_for(tokens):
    """{objective: steps}: the mlm runs' steps give the real tokens of STEPS mlm_nsp steps."""
    return {objective: STEPS if objective == "mlm_nsp"
            else int(round(STEPS * tokens["mlm_nsp"] / per_example))
            for objective, per_example in tokens.items()}


def upos(tagging, config, vocab, checkpoint, seed, out):
    """UPOS accuracy of the tiny model fine-tuned from ``checkpoint`` (None: random weights)."""
    from norbert import evaluate_downstream

    train, held = tagging
    results = evaluate_downstream(
        train_file=train, eval_file=held, bert_config_file=config, vocab_file=vocab,
        checkpoint=checkpoint, output_dir=out, do_lower_case=True, name="ud_upos", seed=seed,
        **UPOS)
    return results.metrics()["accuracy"]["mean"]


def run(work, train, heldout, config, vocab, tagging, objective, steps, seed):
    """(seconds the training took, {held-out kind: masked-LM accuracy}, UPOS accuracy) of one
    run."""
    from norbert import run_pretraining

    out = os.path.join(work, "run-%s-%d" % (objective, seed))
    start = time.perf_counter()
    run_pretraining(input_file=train[objective], bert_config_file=config, output_dir=out,
                    max_seq_length=SEQ, max_predictions_per_seq=PRED, do_train=True,
                    train_batch_size=BATCH, num_train_steps=steps,
                    num_warmup_steps=max(1, steps // 10), learning_rate=LR,
                    save_checkpoints_steps=steps, seed=seed, log_every_steps=max(1, steps // 5))
    seconds = time.perf_counter() - start
    accuracy = {}
    for kind, records in heldout.items():
        result = evaluate(records, config, out, os.path.join(out, "eval-" + kind), SEQ, PRED)
        accuracy[kind] = float(result["masked_lm_accuracy"])
    tags = upos(tagging, config, vocab, out, seed, os.path.join(out, "upos"))
    shutil.rmtree(out, ignore_errors=True)
    return seconds, accuracy, tags


def main():
    work = tempfile.mkdtemp(prefix="bench_objective_")
    found = {}
    try:
        train, heldout, tokens, config, vocab = prepare(work)
        tagging = split_by_sentence(UD_FILE, work)
        steps = steps_for(tokens)
        for seed in SEEDS:
            for objective in OBJECTIVES:
                print("  %s, seed %d, %d steps" % (objective, seed, steps[objective]),
                      file=sys.stderr, flush=True)
                found.setdefault(objective, []).append(run(
                    work, train, heldout, config, vocab, tagging[:2], objective,
                    steps[objective], seed))
                print("    %.0f s, %s, UPOS %.4f" % found[objective][-1], file=sys.stderr,
                      flush=True)
        random = [upos(tagging[:2], config, vocab, None, seed,
                       os.path.join(work, "upos-random-%d" % seed)) for seed in SEEDS]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(report(found, tokens, steps, random, tagging[2:]))


def _spread(values):
    return "%s (mean %.4f, std %.4f)" % (" ".join("%.4f" % v for v in values),
                                         np.mean(values), np.std(values))


def report(found, tokens, steps, random, sentences):
    """The Markdown section."""
    rows = []
    for objective, runs in found.items():
        row = [objective, str(steps[objective]),
               "%.2fM" % (steps[objective] * BATCH * tokens[objective] / 1e6)]
        for kind in OBJECTIVES:
            row.append(_spread([accuracy[kind] for _, accuracy, _ in runs]))
        row.append(_spread([tags for _, _, tags in runs]))
        row.append(" ".join("%.0f s" % seconds for seconds, _, _ in runs))
        rows.append(row)
    rows.append(["none (random weights)", "0", "0", "", "", _spread(random), ""])
    lines = [
        "## Masked LM alone against masked LM + next sentence\n",
        "The same training text (`../shared/data/*.txt`, 90%% of the documents, dupe factor 2) "
        "as Google's pairs (`--objective=mlm_nsp`: %.1f real tokens per example of %d) and as "
        "records packed full (`--objective=mlm --cross_documents=true`: %.1f); the tiny model "
        "(L=2, H=128), an uncased vocab of %d pieces built by norbert from the training part, "
        "batch %d, learning rate %g, `--length_buckets=auto`. The mlm_nsp runs train %d steps "
        "and the mlm runs the steps that give the same real tokens. Held-out masked-LM accuracy "
        "(the other 10%% of the documents, as records of both kinds; every model evaluated on "
        "both), one run per seed %s, and the time each run's training took (its graph's "
        "build included). UPOS: each pretrained model fine-tuned once on part-of-speech tags "
        "(`evaluate_downstream`, the pretraining run's seed; %d sentences of UD Norwegian "
        "Bokmål's dev split, accuracy on %d held out as in the downstream section; learning "
        "rate %g, %g epochs, batch %d), and the same model from random weights. Command: "
        "`python benchmarks/run_all.py objective`.\n"
        % (tokens["mlm_nsp"], SEQ, tokens["mlm"], VOCAB, BATCH, LR, STEPS,
           ", ".join(str(s) for s in SEEDS), sentences[0], sentences[1],
           UPOS["learning_rate"], UPOS["num_train_epochs"], UPOS["train_batch_size"]),
        table(["--objective", "steps", "real tokens trained", "accuracy, held-out pairs",
               "accuracy, held-out packed", "UPOS accuracy", "time of each run"], rows),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
