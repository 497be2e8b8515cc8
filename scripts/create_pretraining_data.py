"""Builds BERT pretraining records (masked LM + next sentence) from text files.

The flags, their defaults and, by default, the records themselves are those of Google's
``create_pretraining_data.py``: the same inputs, flags and seed give records with the same
values, in the same order, in the same files, several times faster and without TensorFlow.

    python scripts/create_pretraining_data.py \\
        --input_file='corpus/*.txt' --output_file=out/train.tfrecord \\
        --vocab_file=vocab.txt --do_lower_case=True \\
        --max_seq_length=128 --max_predictions_per_seq=20 --dupe_factor=5

Input: one sentence per line, a blank line between documents (``.gz`` too; ``.jsonl`` files
with a ``"text"`` field per line are split into sentences). Each output file gets a
``<output_file>.meta.json`` sidecar with the settings and counts.

``--num_workers`` or ``--num_output_shards`` switch to the sharded mode, which is not
reference-exact: parallel, memory bounded by ``--block_mb`` rather than by the corpus, and
resumable (rerun the same command after an interruption; complete shards are kept):

    python scripts/create_pretraining_data.py --input_file='corpus/*.txt' \
        --output_file=out/train.tfrecord --vocab_file=vocab.txt \
        --num_output_shards=64 --num_workers=8     # out/train.tfrecord-00000-of-00064 ...
"""


from absl import flags, logging

from norbert import cli
from norbert.errors import NorbertError
from norbert.data.builder import DataConfig, create_pretraining_data

FLAGS = flags.FLAGS

flags.DEFINE_string("input_file", None,
                    "Input text file(s): comma-separated paths or globs. One sentence per "
                    "line, a blank line between documents.")
flags.DEFINE_string("output_file", None,
                    "Output TFRecord file(s), comma-separated; records go round-robin.")
flags.DEFINE_string("vocab_file", None, "The vocab.txt of the BERT model to train.")
flags.DEFINE_bool("do_lower_case", True,
                  "Lower-case the text: True for uncased models, False for cased ones.")
flags.DEFINE_bool("do_whole_word_mask", False,
                  "Mask all WordPiece pieces of a word together.")
flags.DEFINE_bool("whole_word_mask_per_word", False,
                  "With --do_whole_word_mask: make the [MASK]/keep/random choice once per word "
                  "rather than per piece (the reference's behaviour, a known bug). Records then "
                  "differ from the reference's.")
flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.")
flags.DEFINE_integer("max_predictions_per_seq", 20,
                     "Maximum number of masked LM predictions per sequence.")
flags.DEFINE_integer("random_seed", 12345, "Random seed for data generation.")
flags.DEFINE_integer("dupe_factor", 10,
                     "Number of times to duplicate the input data (with different masks).")
flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.")
flags.DEFINE_float("short_seq_prob", 0.1,
                   "Probability of creating sequences shorter than the maximum length.")
flags.DEFINE_integer("num_workers", None,
                     "Processes building shards in parallel (default: one per shard, at most "
                     "one per CPU). Giving it leaves reference-exact mode for the sharded mode "
                     "(see --num_output_shards); the records do not depend on it.")
flags.DEFINE_integer("num_output_shards", None,
                     "Write <output_file>-00000-of-0000K ... files, each built from its own "
                     "slice of the input with its own seed (default: --num_workers). Giving it "
                     "leaves reference-exact mode: records are not the reference's, shuffled "
                     "within blocks (--block_mb) rather than globally; memory is bounded; a "
                     "rerun keeps shards that are complete and builds the rest.")
flags.DEFINE_float("block_mb", 8.0,
                   "Sharded mode: megabytes of text per block. Random next sentences come from "
                   "the same block and records are shuffled within it; memory per worker grows "
                   "with it, not with the corpus (measured: 520 MB at 8 and --dupe_factor=10, "
                   "of which about 40 MB per MB of block).")
flags.DEFINE_bool("progress", True, "Show progress bars on stderr.")


def main(argv):
    if len(argv) > 1:
        raise NorbertError("unexpected arguments %s: every setting is a --flag" % argv[1:])
    config = DataConfig(
        input_file=FLAGS.input_file,
        output_file=FLAGS.output_file,
        vocab_file=FLAGS.vocab_file,
        do_lower_case=FLAGS.do_lower_case,
        do_whole_word_mask=FLAGS.do_whole_word_mask,
        whole_word_mask_per_word=FLAGS.whole_word_mask_per_word,
        max_seq_length=FLAGS.max_seq_length,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq,
        random_seed=FLAGS.random_seed,
        dupe_factor=FLAGS.dupe_factor,
        masked_lm_prob=FLAGS.masked_lm_prob,
        short_seq_prob=FLAGS.short_seq_prob,
        num_workers=FLAGS.num_workers,
        num_output_shards=FLAGS.num_output_shards,
        block_mb=FLAGS.block_mb,
        progress=FLAGS.progress,
    )
    summary = create_pretraining_data(config)
    logging.info("%s", summary.line())


if __name__ == "__main__":
    cli.run(main)
