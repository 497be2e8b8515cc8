"""Learns a WordPiece vocab.txt from text, or fills the [unusedN] slots of an existing one.

    python scripts/build_vocab.py --input_file='corpus/*.txt' --output_file=vocab.txt \\
        --vocab_size=30522 --do_lower_case=False --num_workers=4

    # continue training multilingual BERT on Norwegian: same size, every old id kept
    python scripts/build_vocab.py --input_file='no/*.txt.gz' --output_file=vocab.txt \\
        --extend_vocab=multi_cased_L-12_H-768_A-12/vocab.txt --do_lower_case=False

The vocab fits ``norbert.FullTokenizer`` (and Google's tokenizer) with the same
``--do_lower_case``. See ``norbert/vocab_building/builder.py`` for the layout and the algorithm.
"""

import sys

from absl import flags

from norbert import cli
from norbert.errors import NorbertError
from norbert.vocab_building.builder import VocabConfig, build_vocab

FLAGS = flags.FLAGS

flags.DEFINE_string("input_file", None,
                    "Text to learn from: comma-separated paths or globs (plain text, .gz, gs://).")
flags.DEFINE_string("output_file", None, "Where to write vocab.txt.")
flags.DEFINE_integer("vocab_size", 30522,
                     "Lines in the vocab, specials and [unusedN] included. Ignored with "
                     "--extend_vocab.")
flags.DEFINE_bool("do_lower_case", True,
                  "Lower-case and strip accents: True for uncased models, False for cased ones.")
flags.DEFINE_integer("min_frequency", 2,
                     "Never merge a pair seen fewer times (with --extend_vocab: never add a "
                     "word seen fewer times).")
flags.DEFINE_integer("num_unused", 100,
                     "[unusedN] slots after [PAD] [UNK] [CLS] [SEP] [MASK], for tokens added "
                     "later. Ignored with --extend_vocab.")
flags.DEFINE_float("character_coverage", 0.9999,
                   "Keep the most frequent characters covering this share of all character "
                   "occurrences; words with rarer ones become [UNK]. 1.0 keeps every character.")
flags.DEFINE_enum("merge_score", "frequency", ["frequency", "likelihood"],
                  "Which pair to merge next: the most frequent (BPE-like, fewest tokens) or the "
                  "largest unigram-likelihood gain (Schuster & Nakajima).")
flags.DEFINE_integer("max_input_bytes", 0,
                     "Read only lines that start within the first this-many bytes of text; 0 "
                     "reads everything.")
flags.DEFINE_integer("num_workers", 1,
                     "Processes counting words; the result does not depend on it.")
flags.DEFINE_string("extend_vocab", None,
                    "An existing vocab.txt: fill its [unusedN] slots with the corpus words it "
                    "splits into the most pieces, keeping every other id.")
flags.DEFINE_bool("progress", None,
                  "Show progress on stderr (default: when stderr is a terminal).")


def main(argv):
    if len(argv) > 1:
        raise NorbertError("unexpected arguments %s: every setting is a --flag" % argv[1:])
    progress = FLAGS.progress
    if progress is None:
        progress = sys.stderr.isatty()
    config = VocabConfig(
        input_file=FLAGS.input_file or "",
        output_file=FLAGS.output_file or "",
        vocab_size=FLAGS.vocab_size,
        do_lower_case=FLAGS.do_lower_case,
        min_frequency=FLAGS.min_frequency,
        num_unused=FLAGS.num_unused,
        character_coverage=FLAGS.character_coverage,
        merge_score=FLAGS.merge_score,
        max_input_bytes=FLAGS.max_input_bytes,
        num_workers=FLAGS.num_workers,
        extend_vocab=FLAGS.extend_vocab,
        progress=progress,
    )
    stats = build_vocab(config)
    print(stats.summary())
    print("wrote %s" % config.output_file)


if __name__ == "__main__":
    cli.run(main)
