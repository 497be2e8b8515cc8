"""Growing a trained model's vocab: how well the new tokens' first rows serve.

A small BERT is trained from scratch on the English text until its masked-LM accuracy is far
above the frequency baseline, then grown by Norwegian pieces (``extend_vocab``, learned from
most of the Norwegian text) with each initialisation of the new rows; each grown model is
evaluated on held-out Norwegian records right after growing and after the same short continued
training on the Norwegian text. Prints one Markdown section.

``python benchmarks/extend_vocab.py`` (about 10 minutes here); ``NORBERT_BENCH_QUICK=1``: a
smoke run with fewer steps.
"""

import json
import os
import sys
import tempfile

from common import (QUICK, SMALL_BERT, build_records, corpus_files, evaluate, split_documents,
                    table, train)

STEPS_ENGLISH = 200 if QUICK else 3000
STEPS_NORWEGIAN = 50 if QUICK else 300
NEW_TOKENS = 300
SEQ, PRED, BATCH = 64, 10, 32
CONFIG = dict(SMALL_BERT, max_position_embeddings=SEQ)


def _records(text_file, vocab, out, dupe_factor, seed=1):
    return build_records(text_file, vocab, out, SEQ, PRED, seed=seed, dupe_factor=dupe_factor)


def _train(records, config, out, steps, init=None, lr=5e-4):
    return train(records, config, out, steps, SEQ, PRED, BATCH, init=init, lr=lr)


def _evaluate(records, config, checkpoint, out):
    return evaluate(records, config, checkpoint, out, SEQ, PRED)


def english_model(work):
    """A vocab learned from the English text, and a model trained on it; (vocab, config,
    checkpoint, its held-out English accuracy, the frequency baseline)."""
    from norbert import build_vocab, load_vocab

    english = [p for p in corpus_files() if "english" in p][0]
    split_documents(english, 0.9, work, ("en_train.txt", "en_held.txt"))
    vocab = os.path.join(work, "vocab.txt")
    build_vocab(input_file=os.path.join(work, "en_train.txt"), output_file=vocab,
                vocab_size=4000, num_unused=100, progress=False)
    config = os.path.join(work, "bert_config.json")
    with open(config, "w") as f:
        json.dump(dict(CONFIG, vocab_size=len(load_vocab(vocab))), f)
    train_records = _records(os.path.join(work, "en_train.txt"), vocab,
                             os.path.join(work, "en_train.tfrecord"), 5)
    held_records = _records(os.path.join(work, "en_held.txt"), vocab,
                            os.path.join(work, "en_held.tfrecord"), 1)
    _train(train_records, config, os.path.join(work, "en"), STEPS_ENGLISH)
    result = _evaluate(held_records, config, os.path.join(work, "en"),
                       os.path.join(work, "en_eval"))
    return vocab, config, os.path.join(work, "en"), result["masked_lm_accuracy"], \
        _frequency_baseline(held_records)


def _frequency_baseline(records):
    """The accuracy of always predicting the most frequent masked token."""
    import collections

    from norbert.data import tfrecord

    counts = collections.Counter()
    for record in tfrecord.read_records(records):
        f = tfrecord.decode_example(record)
        for label, weight in zip(f["masked_lm_ids"], f["masked_lm_weights"]):
            if weight:
                counts[label] += 1
    return counts.most_common(1)[0][1] / sum(counts.values())


# (init, bias_init): the new rows' embeddings and output bias.
VARIANTS = (("mean", "mean"), ("mean", "min"), ("mean", "product"), ("mean", "zero"),
            ("random", "zero"))


def new_token_loss(work, checkpoint, grown, records, new_ids, name):
    """(masked-LM loss where the answer is a new token, where it is an old one) on ``records``,
    with the model exported to transformers and run by torch: the loss the new rows decide,
    apart from the rest that dominates the mean."""
    import numpy as np
    import torch
    import transformers

    from norbert import export_to_hf
    from norbert.data import tfrecord

    hf = os.path.join(work, "hf_" + name)
    export_to_hf(checkpoint=checkpoint, bert_config_file=os.path.join(grown, "bert_config.json"),
                 vocab_file=os.path.join(grown, "vocab.txt"), do_lower_case=True, output_dir=hf)
    model = transformers.BertForPreTraining.from_pretrained(hf).eval()
    feats = [tfrecord.decode_example(r) for r in tfrecord.read_records(records)]
    arrays = {k: np.array([f[k] for f in feats]) for k in feats[0]}
    losses, is_new = [], []
    with torch.no_grad():
        for start in range(0, len(feats), 64):
            part = {k: torch.tensor(v[start:start + 64]) for k, v in arrays.items()}
            logits = model(input_ids=part["input_ids"], attention_mask=part["input_mask"],
                           token_type_ids=part["segment_ids"]).prediction_logits  # [B, S, V]
            at = torch.gather(logits, 1, part["masked_lm_positions"][..., None].expand(
                -1, -1, logits.shape[-1]))  # [B, P, V]
            loss = torch.nn.functional.cross_entropy(
                at.reshape(-1, at.shape[-1]), part["masked_lm_ids"].reshape(-1),
                reduction="none")
            keep = part["masked_lm_weights"].reshape(-1) > 0
            losses.append(loss[keep].numpy())
            is_new.append(np.isin(part["masked_lm_ids"].reshape(-1)[keep].numpy(), new_ids))
    losses, is_new = np.concatenate(losses), np.concatenate(is_new)
    return float(losses[is_new].mean()), float(losses[~is_new].mean()), float(is_new.mean())


def grown_runs(work, vocab, config, checkpoint, variants):
    """Per (init, bias_init): held-out Norwegian masked-LM loss and accuracy right after growing
    and after STEPS_NORWEGIAN steps on the Norwegian text."""
    from norbert import extend_vocab

    norwegian = [p for p in corpus_files() if "norwegian" in p][0]
    split_documents(norwegian, 0.85, work, ("nb_train.txt", "nb_held.txt"))
    out = {}
    held_records = train_records = None
    for init, bias_init in variants:
        name = "%s_%s" % (init, bias_init)
        grown = os.path.join(work, "grown_" + name)
        report = extend_vocab(input_file=os.path.join(work, "nb_train.txt"), vocab_file=vocab,
                              bert_config_file=config, init_checkpoint=checkpoint,
                              output_dir=grown, num_new_tokens=NEW_TOKENS, init=init,
                              bias_init=bias_init, progress=False)
        grown_vocab = os.path.join(grown, "vocab.txt")
        grown_config = os.path.join(grown, "bert_config.json")
        if held_records is None:  # the grown vocab is the same for every variant
            held_records = _records(os.path.join(work, "nb_held.txt"), grown_vocab,
                                    os.path.join(work, "nb_held.tfrecord"), 2)
            train_records = _records(os.path.join(work, "nb_train.txt"), grown_vocab,
                                     os.path.join(work, "nb_train.tfrecord"), 3)
        at_zero = _evaluate(held_records, grown_config, os.path.join(grown, "bert_model.ckpt"),
                            os.path.join(work, "eval0_" + name))
        _train(train_records, grown_config, os.path.join(work, "nb_" + name), STEPS_NORWEGIAN,
               init=os.path.join(grown, "bert_model.ckpt"), lr=2e-4)
        after = _evaluate(held_records, grown_config, os.path.join(work, "nb_" + name),
                          os.path.join(work, "eval1_" + name))
        from norbert import load_vocab

        grown_vocab_ids = load_vocab(grown_vocab)
        new_ids = [grown_vocab_ids[t] for t in report.added]
        split0 = new_token_loss(work, os.path.join(grown, "bert_model.ckpt"), grown,
                                held_records, new_ids, name + "_0")
        split1 = new_token_loss(work, os.path.join(work, "nb_" + name), grown, held_records,
                                new_ids, name + "_1")
        out[(init, bias_init)] = dict(report=report, at_zero=at_zero, after=after,
                                      split0=split0, split1=split1)
    return out


def main():
    import absl.logging

    absl.logging.set_verbosity(absl.logging.WARNING)
    with tempfile.TemporaryDirectory() as work:
        vocab, config, checkpoint, accuracy, baseline = english_model(work)
        runs = grown_runs(work, vocab, config, checkpoint, VARIANTS)
    any_run = next(iter(runs.values()))["report"]
    rows = [[init, bias_init, "%.3f" % r["at_zero"]["masked_lm_loss"],
             "%.3f" % r["split0"][0], "%.3f" % r["split0"][1],
             "%.3f" % r["at_zero"]["masked_lm_accuracy"],
             "%.3f" % r["after"]["masked_lm_loss"], "%.3f" % r["split1"][0],
             "%.3f" % r["split1"][1], "%.3f" % r["after"]["masked_lm_accuracy"]]
            for (init, bias_init), r in runs.items()]
    print("## Growing a trained model's vocabulary\n")
    print("A BERT of 2 layers (hidden 128) trained from scratch on the English text for %d "
          "steps (batch %d, length %d; its own 4,000-token vocab with 100 `[unused]` slots) "
          "reaches a held-out masked-LM accuracy of %.3f (always predicting the most frequent "
          "token: %.3f). `extend_vocab` then adds %d Norwegian pieces (%d into the slots, "
          "tokens per word on the Norwegian text %.2f -> %.2f), and each grown model is "
          "evaluated on held-out Norwegian records, right after growing and after %d steps of "
          "continued training on the rest of the Norwegian text (the same records for every "
          "initialisation). Command: `python benchmarks/run_all.py extend_vocab`.\n"
          % (STEPS_ENGLISH, BATCH, SEQ, accuracy, baseline, NEW_TOKENS, any_run.slots_filled,
             any_run.tokens_per_word_before, any_run.tokens_per_word_after, STEPS_NORWEGIAN))
    print(table(["init", "bias_init", "loss at step 0", "new-token targets", "old-token targets",
                 "accuracy at step 0", "loss after %d steps" % STEPS_NORWEGIAN,
                 "new-token targets", "old-token targets",
                 "accuracy after %d steps" % STEPS_NORWEGIAN], rows))
    share = next(iter(runs.values()))["split0"][2]
    print("\nLosses are held-out masked-LM cross-entropy; the split columns are the same loss "
          "(computed by transformers on the exported model) over the predictions whose answer "
          "is one of the new tokens (%.1f%% of them) and over the rest." % (100 * share))
    return 0


if __name__ == "__main__":
    sys.exit(main())
