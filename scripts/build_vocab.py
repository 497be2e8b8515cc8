"""Learns a WordPiece vocab.txt from text (a new one, of the size asked), or fills the ~100
[unusedN] slots of an existing vocab with the text's words (its size and other ids kept).

    python scripts/build_vocab.py --input_file='corpus/*.txt' --output_file=vocab.txt \\
        --vocab_size=30522 --do_lower_case=False --num_workers=4

    # a few new words for a model, without touching it: fill its vocab's [unusedN] slots
    python scripts/build_vocab.py --input_file='no/*.txt.gz' --output_file=vocab.txt \\
        --fill_unused_of=multi_cased_L-12_H-768_A-12/vocab.txt --do_lower_case=False

To continue training multilingual BERT on Norwegian, where thousands of new pieces help, grow
the vocab and the checkpoint together with scripts/extend_vocab.py instead
(scripts/vocab_report.py tells how much growing would give). ``--fill_unused_of`` is for a
handful of words (names, symbols) that must stay whole; ``--extend_vocab`` is its old name.

The vocab fits ``norbert.FullTokenizer`` (and Google's tokenizer) with the same
``--do_lower_case``. The same as the ``norbert-build-vocab`` command
(``norbert/commands/build_vocab.py``); the layout and the algorithm are described in
``norbert/vocab_building/``.
"""

from norbert.commands import build_vocab

if __name__ == "__main__":
    build_vocab.run()
