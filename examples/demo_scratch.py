"""A BERT from scratch, small: text to a trained model that transformers can use.

``make demo-scratch`` runs this on ``examples/sample_text.txt`` (Norwegian Bokmål and
English, written for this project). Each step runs the command-line tool a user would run,
printed before it starts, so the demo doubles as a worked example:

1. hold out every eighth document for evaluation;
2. ``build_vocab.py``: a small cased WordPiece vocab from the training text (cased, as
   Google's multilingual model: lower-casing would also strip the accents of å, é, ...);
3. ``create_pretraining_data.py``: masked-LM + next-sentence records for training and eval;
4. ``run_pretraining.py``: a small BERT trained from scratch on the CPU, then evaluated;
5. ``convert_to_pytorch.py``: a folder that transformers loads;
6. if transformers is installed, the exported model fills in ``[MASK]``.

Everything lands in ``--output_dir`` (default ``demo_scratch_output``), which a rerun
replaces. ``make demo`` (``examples/demo.py``) continues a published BERT instead.
"""

import argparse
import json
import os
import time

from demo_steps import (HERE, count_records, export_step, fill_step, finish, fresh_output_dir,
                        hold_out, read_eval_results, say, step, tool)

# A small BERT (Google's layout, fewer and narrower layers) on short sequences: several
# steps per second on two cores.
MODEL = {
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 512,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,  # no dropout: a short run on little text
    "attention_probs_dropout_prob": 0.0,
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
}
SEQ, PREDICTIONS = 64, 10
# Sentences for the fill-in step, one masked word each, in the corpus's two languages.
FILL = [
    "Om [MASK] er dagene korte og kalde.",
    "Bussen går tidlig om [MASK].",
    "The boats leave the harbour early in the [MASK].",
    "They walked for many hours in the [MASK].",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=os.path.join(HERE, "sample_text.txt"))
    parser.add_argument("--output_dir", default="demo_scratch_output")
    parser.add_argument("--vocab_size", type=int, default=3000)
    parser.add_argument("--num_train_steps", type=int, default=2000)
    parser.add_argument("--train_batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--dupe_factor", type=int, default=20)
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    if not os.path.exists(args.corpus):
        raise SystemExit("demo: --corpus=%s does not exist" % args.corpus)
    out = args.output_dir
    fresh_output_dir(out)
    path = lambda name: os.path.join(out, name)
    summary = []
    begin = time.perf_counter()

    hold_out(args.corpus, out, "1/6  hold out every eighth document for evaluation")

    step("2/6  build a vocabulary")
    seconds = tool("build_vocab.py", input_file=path("train.txt"), output_file=path("vocab.txt"),
                   vocab_size=args.vocab_size, do_lower_case=False, num_unused=10)
    with open(path("vocab.txt"), encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    summary.append(("vocabulary", "%.0f" % seconds, "%d tokens" % vocab_size))

    step("3/6  create pretraining data")
    common = dict(vocab_file=path("vocab.txt"), do_lower_case=False, max_seq_length=SEQ,
                  max_predictions_per_seq=PREDICTIONS)
    seconds = tool("create_pretraining_data.py", input_file=path("train.txt"),
                   output_file=path("train.tfrecord"), dupe_factor=args.dupe_factor, **common)
    seconds += tool("create_pretraining_data.py", input_file=path("heldout.txt"),
                    output_file=path("heldout.tfrecord"), dupe_factor=5, random_seed=1, **common)
    summary.append(("pretraining data", "%.0f" % seconds, "%d training, %d eval records" % (
        count_records(path("train.tfrecord")), count_records(path("heldout.tfrecord")))))

    step("4/6  pretrain a small BERT from scratch on the CPU, then evaluate")
    with open(path("bert_config.json"), "w", encoding="utf-8") as f:
        json.dump(dict(MODEL, vocab_size=vocab_size), f, indent=2)
    say("bert_config.json: %d layers, hidden size %d, %d heads" % (
        MODEL["num_hidden_layers"], MODEL["hidden_size"], MODEL["num_attention_heads"]))
    seconds = tool("run_pretraining.py", input_file=path("train.tfrecord"),
                   eval_input_file=path("heldout.tfrecord"), output_dir=path("model"),
                   bert_config_file=path("bert_config.json"), do_train=True, do_eval=True,
                   train_batch_size=args.train_batch_size, eval_batch_size=32,
                   max_seq_length=SEQ, max_predictions_per_seq=PREDICTIONS,
                   num_train_steps=args.num_train_steps,
                   num_warmup_steps=args.num_train_steps // 10,
                   learning_rate=args.learning_rate,
                   save_checkpoints_steps=args.num_train_steps, log_every_steps=100, seed=1)
    results = read_eval_results(path("model/eval_results.txt"))
    say("eval on the held-out documents:")
    for key in ("masked_lm_accuracy", "masked_lm_loss", "next_sentence_accuracy",
                "next_sentence_loss"):
        say("  %-24s %.4f" % (key, results[key]))
    summary.append(("pretraining + eval", "%.0f" % seconds,
                    "%d steps; held-out masked_lm_accuracy %.3f, next_sentence_accuracy %.3f" % (
                        args.num_train_steps, results["masked_lm_accuracy"],
                        results["next_sentence_accuracy"])))

    step("5/6  export to a transformers folder")
    export_step(path("hf"), summary, checkpoint=path("model"),
                bert_config_file=path("bert_config.json"), vocab_file=path("vocab.txt"),
                do_lower_case=False)

    step("6/6  fill in [MASK] with the exported model (transformers)")
    fill_step(path("hf"), FILL, summary)
    finish(summary, begin, out, path("hf"))


if __name__ == "__main__":
    main()
