"""Tells how well a vocab fits your text, and what growing it would give: run it before
continuing a model's pretraining on new text, to decide whether to grow its vocab first.

    python scripts/vocab_report.py --vocab_file=multi_cased_L-12_H-768_A-12/vocab.txt \\
        --input_file='no/*.txt.gz' --do_lower_case=false --num_new_tokens=1000,5000

Prints, per input file and overall: words, tokens per word, the share of words split into
several pieces, the [UNK] share, the words split the most, and what growing the vocab by each
``--num_new_tokens`` N (learned as ``scripts/extend_vocab.py`` learns them) would give.
``--json`` prints the same as one JSON object. The same as the ``norbert-vocab-report``
command (``norbert/commands/vocab_report.py``); the figures are computed in
``norbert/vocab_building/report.py``.
"""

from norbert.commands import vocab_report

if __name__ == "__main__":
    vocab_report.run()
