"""Exports a norbert (or Google) BERT checkpoint as a Hugging Face transformers folder.

    norbert-convert-to-pytorch --checkpoint=out/model.ckpt-20000 \\
        --bert_config_file=bert_config.json --vocab_file=vocab.txt --do_lower_case=false \\
        --output_dir=hf_model

``python scripts/convert_to_pytorch.py`` takes the same flags. The folder loads with
transformers' ``from_pretrained`` (BertForPreTraining, AutoModel, AutoModelForMaskedLM,
AutoTokenizer). Writing it needs no torch, except --format=pytorch_bin. Give the tokenizer
options the data was built with (--strip_accents, --tokenize_chinese_chars, --never_split):
they go into tokenizer_config.json.
"""

from norbert import cli
from norbert.errors import NorbertError
from norbert.settings import Required

# The export states the model's casing: --do_lower_case is required here, though the
# tokenizer options default it to Google's true.
TOKENIZER = Required("norbert.tokenization.options:TokenizerOptions", ("do_lower_case",))
# Named, not imported: the checks of the user's files come before any heavy import.
CONFIGS = ("norbert.conversion.export:ExportConfig", TOKENIZER.config)


def main(argv):
    del argv  # cli.run refuses positional arguments
    for name in TOKENIZER.names:  # until the flag machinery takes Required (no default then)
        if not cli.FLAGS[name].present:
            raise NorbertError("--%s is required: The model's casing, written to "
                               "tokenizer_config.json (must match the vocab's training)" % name)
    from norbert.conversion.export import ExportConfig, export_to_hf
    from norbert.tokenization.options import TokenizerOptions

    report = export_to_hf(cli.config_from_flags(ExportConfig),
                          cli.config_from_flags(TokenizerOptions))
    print(report.summary())


def run():
    """The ``norbert-convert-to-pytorch`` command."""
    cli.run(main, CONFIGS)
