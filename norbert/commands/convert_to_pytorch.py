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

from norbert.commands import flags
from norbert.settings import Required

# The export states the model's casing: --do_lower_case is required here, though the
# tokenizer options default it to Google's true.
TOKENIZER = Required("norbert.tokenization.options:TokenizerOptions", ("do_lower_case",))
# Named, not imported: the checks of the user's files come before any heavy import.
CONFIGS = ("norbert.conversion.export:ExportConfig", TOKENIZER)


def main(argv):
    del argv  # flags.run refuses positional arguments
    from norbert.conversion.export import ExportConfig, export_to_hf
    from norbert.tokenization.options import TokenizerOptions

    report = export_to_hf(flags.config_from_flags(ExportConfig),
                          flags.config_from_flags(TokenizerOptions))
    print(report.summary())


def run():
    """The ``norbert-convert-to-pytorch`` command."""
    flags.run(main, CONFIGS)
