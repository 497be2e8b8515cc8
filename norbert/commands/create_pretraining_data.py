"""Builds BERT pretraining records (masked LM + next sentence) from text files.

    norbert-create-pretraining-data --input_file='corpus/*.txt' \\
        --output_file=out/train.tfrecord --vocab_file=vocab.txt --do_lower_case=True \\
        --max_seq_length=128 --max_predictions_per_seq=20 --dupe_factor=5

``python scripts/create_pretraining_data.py`` takes the same flags, which are those of Google's
``create_pretraining_data.py``: by default the same inputs, flags and seed give the same
records. ``--num_workers`` or ``--num_output_shards`` switch to the sharded mode (parallel,
memory bounded, resumable; not reference-exact); ``--runner`` runs the sharded mode as an Apache
Beam pipeline (``--runner=DataflowRunner --beam_pipeline_options=...``). No TensorFlow is
imported (but for ``gs://`` paths).
"""

from absl import logging

from norbert.commands import flags
from norbert.beam_runner import BeamConfig
from norbert.data.builder import create_pretraining_data
from norbert.data.config import DataConfig
from norbert.tokenization.options import TokenizerOptions

CONFIGS = (DataConfig, TokenizerOptions, BeamConfig)


def main(argv):
    del argv  # flags.run refuses positional arguments
    summary = create_pretraining_data(flags.config_from_flags(DataConfig),
                                      flags.config_from_flags(TokenizerOptions),
                                      flags.config_from_flags(BeamConfig))
    if summary.plan:  # --plan_only: nothing was built
        print(summary.plan)
    else:
        logging.info("%s", summary.line())


def run():
    """The ``norbert-create-pretraining-data`` command."""
    flags.run(main, CONFIGS)
