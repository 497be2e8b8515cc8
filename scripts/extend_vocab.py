"""Grow a trained model's vocab by word pieces of new text, initialising their rows.

    python scripts/extend_vocab.py --input_file='no/*.txt.gz' --vocab_file=start/vocab.txt \\
        --bert_config_file=start/bert_config.json --init_checkpoint=start/bert_model.ckpt \\
        --do_lower_case=false --num_new_tokens=5000 --output_dir=grown

Writes vocab.txt (every old id kept), bert_config.json (the new vocab_size) and bert_model.ckpt
(the new rows from the mean of their old pieces' rows, --init=mean). The same as the
``norbert-extend-vocab`` command.
"""

from norbert.commands import extend_vocab

if __name__ == "__main__":
    extend_vocab.run()
