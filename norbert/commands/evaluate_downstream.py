"""Fine-tunes copies of a BERT checkpoint on a labelled task and reports the task's scores
(mean and spread over --num_seeds runs): is the model better than the one it started from?

    norbert-evaluate-downstream --train_file=ud/train.conllu --eval_file=ud/dev.conllu \\
        --checkpoint=run --bert_config_file=bert_config.json --vocab_file=vocab.txt \\
        --do_lower_case=false --output_dir=eval_ud

Token classification from CoNLL-U (--label_column=UPOS, XPOS, DEPREL or MISC:key), or
--task=sequence_classification from JSONL or TSV (--text_field, --label_field). Without
--checkpoint, random weights: a baseline. --watch=RUN_FOLDER evaluates each checkpoint of a
run_pretraining folder as it appears. --distribution=mirrored fine-tunes on this machine's GPUs
(or --num_cpu_replicas CPU devices), the global batch split over them.
``python scripts/evaluate_downstream.py`` takes the same flags; docs/downstream.md says more.
"""

from norbert.commands import flags
from norbert.downstream.config import DownstreamConfig, FinetuneConfig, WatchConfig
from norbert.tokenization.options import TokenizerOptions
from norbert.training.distribution import DistributionConfig

CONFIGS = (DownstreamConfig, FinetuneConfig, WatchConfig, TokenizerOptions, DistributionConfig)


def main(argv):
    del argv  # flags.run refuses positional arguments
    from absl import logging

    from norbert.downstream.evaluate import evaluate_downstream

    logging.set_verbosity(logging.INFO)
    results = evaluate_downstream(*(flags.config_from_flags(c) for c in CONFIGS))
    for one in results if isinstance(results, list) else [results]:
        print(one.summary())


def run():
    """The ``norbert-evaluate-downstream`` command."""
    flags.run(main, CONFIGS)
