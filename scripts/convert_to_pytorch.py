"""Export a norbert (or Google) BERT checkpoint as a Hugging Face transformers folder,
which transformers' ``from_pretrained`` loads (weights, config and tokenizer files).

    python scripts/convert_to_pytorch.py --checkpoint=out/model.ckpt-20000 \\
        --bert_config_file=bert_config.json --vocab_file=vocab.txt --do_lower_case=false \\
        --output_dir=hf_model

The folder loads with transformers' ``from_pretrained`` (BertForPreTraining, AutoModel,
AutoModelForMaskedLM, AutoTokenizer). Writing it needs no torch, except --format=pytorch_bin.
``--checkpoint`` takes a prefix (model.ckpt-20000) or a run's folder (its latest checkpoint).
The same as the ``norbert-convert-to-pytorch`` command.
"""

from norbert.commands import convert_to_pytorch

if __name__ == "__main__":
    convert_to_pytorch.run()
