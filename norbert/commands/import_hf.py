"""Imports a Hugging Face transformers BERT folder as Google's layout, to continue pretraining.

    norbert-import-hf --hf_dir=some_bert --output_dir=start
    norbert-run-pretraining --bert_config_file=start/bert_config.json \\
        --init_checkpoint=start/bert_model.ckpt ...

``python scripts/import_hf.py`` takes the same flags. Writes bert_config.json, vocab.txt and
bert_model.ckpt (Google's variable names). Heads the folder lacks (a bare BertModel has none)
are reported and left for training to initialise.
"""

from norbert.commands import flags

# Named, not imported: the checks of the user's files come before any heavy import.
CONFIGS = ("norbert.conversion.importing:ImportConfig",)


def main(argv):
    del argv  # flags.run refuses positional arguments
    from norbert.conversion.importing import ImportConfig, import_from_hf

    report = import_from_hf(flags.config_from_flags(ImportConfig))
    print(report.summary())


def run():
    """The ``norbert-import-hf`` command."""
    flags.run(main, CONFIGS)
