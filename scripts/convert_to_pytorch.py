"""Export a norbert (or Google) BERT checkpoint as a Hugging Face transformers folder.

    python scripts/convert_to_pytorch.py --checkpoint=out/model.ckpt-20000 \\
        --bert_config_file=bert_config.json --vocab_file=vocab.txt --do_lower_case=false \\
        --output_dir=hf_model

The folder loads with transformers' ``from_pretrained`` (BertForPreTraining, AutoModel,
AutoModelForMaskedLM, AutoTokenizer). Writing it needs no torch, except --format=pytorch_bin.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from norbert import cli  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_string("checkpoint", None, "Checkpoint prefix (model.ckpt-1000) or folder (latest).")
flags.DEFINE_string("bert_config_file", None, "The bert_config.json the checkpoint was trained with.")
flags.DEFINE_string("vocab_file", None, "The model's vocab.txt.")
flags.DEFINE_bool("do_lower_case", True, "Whether the model is uncased (written for the tokenizer).")
flags.DEFINE_string("output_dir", None, "The Hugging Face folder to write.")
flags.DEFINE_enum("format", "safetensors", ["safetensors", "pytorch_bin"],
                  "model.safetensors, or the bare torch state_dict pytorch_model.bin (needs torch).")


def main(argv):
    del argv
    from norbert.conversion.convert import ExportConfig, export_to_hf

    report = export_to_hf(ExportConfig(
        checkpoint=FLAGS.checkpoint,
        bert_config_file=FLAGS.bert_config_file,
        vocab_file=FLAGS.vocab_file,
        do_lower_case=FLAGS.do_lower_case,
        output_dir=FLAGS.output_dir,
        format=FLAGS.format,
    ))
    print(report.summary())


if __name__ == "__main__":
    cli.run(main)
