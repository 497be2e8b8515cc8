"""Learns a WordPiece vocab.txt from text (a new one, of the size asked), or fills the ~100
[unusedN] slots of an existing vocab with the text's words (its size and other ids kept).

    norbert-build-vocab --input_file='corpus/*.txt' --output_file=vocab.txt \\
        --vocab_size=30522 --do_lower_case=False --num_workers=4

    # a few new words for a model, without touching it: fill its vocab's [unusedN] slots
    norbert-build-vocab --input_file='no/*.txt.gz' --output_file=vocab.txt \\
        --fill_unused_of=multi_cased_L-12_H-768_A-12/vocab.txt --do_lower_case=False

    # count the words as an Apache Beam pipeline (here, or on a cluster); learn here
    norbert-build-vocab --input_file='gs://B/corpus/*.gz' --output_file=vocab.txt \\
        --runner=DataflowRunner \\
        --beam_pipeline_options="project=P,region=R,temp_location=gs://B/tmp,setup_file=./setup.py"

To continue training multilingual BERT on Norwegian, where thousands of new pieces help, grow
the vocab and the checkpoint together with norbert-extend-vocab instead (norbert-vocab-report
tells how much growing would give). ``--fill_unused_of`` is for a handful of words (names,
symbols) that must stay whole; ``--extend_vocab`` is its old name.

``python scripts/build_vocab.py`` takes the same flags. The vocab fits ``norbert.FullTokenizer``
(and Google's tokenizer) with the same ``--do_lower_case``; Hugging Face's tokenizer options
(``--strip_accents``, ``--tokenize_chinese_chars``, ``--never_split``) are given alike to this
tool, the data builder and the export.
"""

from norbert.commands import flags
from norbert.beam_runner import BeamConfig
from norbert.tokenization.options import TokenizerOptions
from norbert.vocab_building.builder import VocabConfig, build_vocab
from norbert.vocab_building.corpus import CorpusConfig
from norbert.vocab_building.report import output_lines

CONFIGS = (VocabConfig, CorpusConfig, TokenizerOptions, BeamConfig)


def main(argv):
    del argv  # flags.run refuses positional arguments
    config = flags.config_from_flags(VocabConfig)
    stats = build_vocab(config, flags.config_from_flags(TokenizerOptions),
                        flags.config_from_flags(BeamConfig), flags.config_from_flags(CorpusConfig))
    print(stats.summary())
    print(output_lines(stats.figures))
    print("wrote %s" % config.output_file)


def run():
    """The ``norbert-build-vocab`` command."""
    flags.run(main, CONFIGS)
