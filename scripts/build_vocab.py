"""Learns a WordPiece vocab.txt from text, or fills the [unusedN] slots of an existing one.

    python scripts/build_vocab.py --input_file='corpus/*.txt' --output_file=vocab.txt \\
        --vocab_size=30522 --do_lower_case=False --num_workers=4

    # continue training multilingual BERT on Norwegian: same size, every old id kept
    python scripts/build_vocab.py --input_file='no/*.txt.gz' --output_file=vocab.txt \\
        --extend_vocab=multi_cased_L-12_H-768_A-12/vocab.txt --do_lower_case=False

The vocab fits ``norbert.FullTokenizer`` (and Google's tokenizer) with the same
``--do_lower_case``. The same as the ``norbert-build-vocab`` command
(``norbert/commands/build_vocab.py``); the layout and the algorithm are described in
``norbert/vocab_building/``.
"""

from norbert.commands import build_vocab

if __name__ == "__main__":
    build_vocab.run()
