"""Builds BERT pretraining records (masked LM + next sentence) from text files, with Google's
flags; by default the very records Google's tool writes, or parallel shards when asked.

    python scripts/create_pretraining_data.py \\
        --input_file='corpus/*.txt' --output_file=out/train.tfrecord \\
        --vocab_file=vocab.txt --do_lower_case=True \\
        --max_seq_length=128 --max_predictions_per_seq=20 --dupe_factor=5

The flags, their defaults and, by default, the records themselves are those of Google's
``create_pretraining_data.py``: the same inputs, flags and seed give records with the same
values, in the same order, in the same files, several times faster and without TensorFlow.

Input: one sentence per line, a blank line between documents (``.gz`` too; ``.jsonl`` files
with a ``"text"`` field per line are split into sentences). Each output file gets a
``<output_file>.meta.json`` sidecar with the settings and counts.

``--num_workers`` or ``--num_output_shards`` switch to the sharded mode, which is not
reference-exact: parallel, memory bounded by ``--block_mb`` rather than by the corpus, and
resumable (rerun the same command after an interruption; complete shards are kept):

    python scripts/create_pretraining_data.py --input_file='corpus/*.txt' \\
        --output_file=out/train.tfrecord --vocab_file=vocab.txt \\
        --num_output_shards=64 --num_workers=8     # out/train.tfrecord-00000-of-00064 ...

The same as the ``norbert-create-pretraining-data`` command.
"""

from norbert.commands import create_pretraining_data

if __name__ == "__main__":
    create_pretraining_data.run()
