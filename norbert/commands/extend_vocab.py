"""Grows a trained model's vocab by word pieces of new text, initialising their rows.

    norbert-extend-vocab --input_file='no/*.txt.gz' --vocab_file=start/vocab.txt \\
        --bert_config_file=start/bert_config.json --init_checkpoint=start/bert_model.ckpt \\
        --do_lower_case=false --num_new_tokens=5000 --output_dir=grown
    norbert-run-pretraining --bert_config_file=grown/bert_config.json \\
        --init_checkpoint=grown/bert_model.ckpt ...   # data built with grown/vocab.txt

``python scripts/extend_vocab.py`` takes the same flags. Every old id is kept: the [unusedN]
slots are filled first, the rest appended. A new token starts from the mean of the rows of the
pieces the old vocab splits it into (--init=mean), or from random rows (--init=random).
"""

from norbert.commands import flags

# Named, not imported: the checks of the user's files come before any heavy import.
CONFIGS = ("norbert.conversion.extend_vocab:ExtendConfig",
           "norbert.vocab_building.corpus:CorpusConfig",
           "norbert.tokenization.options:TokenizerOptions")


def main(argv):
    del argv  # flags.run refuses positional arguments
    from norbert.conversion.extend_vocab import ExtendConfig, extend_vocab
    from norbert.tokenization.options import TokenizerOptions
    from norbert.vocab_building.corpus import CorpusConfig
    from norbert.vocab_building.report import output_lines

    report = extend_vocab(flags.config_from_flags(ExtendConfig),
                          flags.config_from_flags(TokenizerOptions),
                          flags.config_from_flags(CorpusConfig))
    print(report.summary())
    print(output_lines(report.figures))


def run():
    """The ``norbert-extend-vocab`` command."""
    flags.run(main, CONFIGS)
