"""Import a Hugging Face transformers BERT folder as Google's layout, to continue pretraining.

    python scripts/import_hf.py --hf_dir=some_bert --output_dir=start
    python scripts/run_pretraining.py --bert_config_file=start/bert_config.json \\
        --init_checkpoint=start/bert_model.ckpt ...

Writes bert_config.json, vocab.txt and bert_model.ckpt (Google's variable names). Heads the
folder lacks (a bare BertModel has none) are reported and left for training to initialise.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from norbert import cli  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_string("hf_dir", None,
                    "A transformers folder: config.json, model.safetensors or pytorch_model.bin, "
                    "vocab.txt.")
flags.DEFINE_string("output_dir", None, "Where bert_config.json, vocab.txt and the checkpoint go.")


def main(argv):
    del argv
    from norbert.conversion.convert import ImportConfig, import_from_hf

    report = import_from_hf(ImportConfig(hf_dir=FLAGS.hf_dir, output_dir=FLAGS.output_dir))
    print(report.summary())


if __name__ == "__main__":
    cli.run(main)
