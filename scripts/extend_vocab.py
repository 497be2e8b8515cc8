"""Grow a trained model's vocab by word pieces of new text, initialising their rows: the way
to continue pretraining a model (multilingual BERT, say) on a language its vocab splits badly.

    python scripts/extend_vocab.py --input_file='no/*.txt.gz' --vocab_file=start/vocab.txt \\
        --bert_config_file=start/bert_config.json --init_checkpoint=start/bert_model.ckpt \\
        --do_lower_case=false --num_new_tokens=5000 --output_dir=grown

Writes vocab.txt (every old id kept), bert_config.json (the new vocab_size) and bert_model.ckpt
(the new rows from the mean of their old pieces' rows, --init=mean). scripts/vocab_report.py
tells first how much a given --num_new_tokens would shorten the text. (build_vocab.py
--fill_unused_of only fills the ~100 [unusedN] slots, without growing anything.) The same as
the ``norbert-extend-vocab`` command.
"""

from norbert.commands import extend_vocab

if __name__ == "__main__":
    extend_vocab.run()
