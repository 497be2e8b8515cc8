"""Tells how well a vocab fits your text, and what growing it would give.

    norbert-vocab-report --vocab_file=multi_cased_L-12_H-768_A-12/vocab.txt \\
        --input_file='no/*.txt.gz' --do_lower_case=false --num_new_tokens=1000,5000

Per input file and overall: words, tokens per word, the share of words split into several
pieces, the [UNK] share, the words split the most, and for each --num_new_tokens N the same
figures after N pieces learned as extend_vocab learns them (nothing is written). Many tokens
per word, or a large split share, on your language: grow the vocab with extend_vocab.
``--json`` prints one JSON object for scripts. ``python scripts/vocab_report.py`` takes the
same flags.
"""

from norbert.commands import flags
from norbert.tokenization.options import TokenizerOptions
from norbert.vocab_building.corpus import CorpusConfig
from norbert.vocab_building.report import VocabReportConfig, vocab_report

CONFIGS = (VocabReportConfig, CorpusConfig, TokenizerOptions)


def main(argv):
    del argv  # flags.run refuses positional arguments
    config = flags.config_from_flags(VocabReportConfig)
    report = vocab_report(config, flags.config_from_flags(TokenizerOptions),
                          flags.config_from_flags(CorpusConfig))
    print(report.json_text() if config.json else report.summary())


def run():
    """The ``norbert-vocab-report`` command."""
    flags.run(main, CONFIGS)
