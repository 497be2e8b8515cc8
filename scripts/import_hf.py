"""Import a Hugging Face transformers BERT folder as Google's layout, to continue pretraining
it with run_pretraining.py: bert_config.json, vocab.txt and a bert_model.ckpt.

    python scripts/import_hf.py --hf_dir=some_bert --output_dir=start
    python scripts/run_pretraining.py --bert_config_file=start/bert_config.json \\
        --init_checkpoint=start/bert_model.ckpt ...

Writes bert_config.json, vocab.txt and bert_model.ckpt (Google's variable names). Heads the
folder lacks (a bare BertModel has none) are reported and left for training to initialise.
The same as the ``norbert-import-hf`` command.
"""

from norbert.commands import import_hf

if __name__ == "__main__":
    import_hf.run()
