"""norbert: pretrain BERT from scratch, or continue pretraining Google's BERT, on new text.

Each step is a function that takes config objects, or their fields as keywords named as the
flags of its tool (``scripts/NAME.py``, ``norbert-NAME``; ``docs/flags.md`` lists them all).
In the order of the main job; ``help(norbert.NAME)`` says the rest:

  vocab_report             how well a vocab fits your text, and what growing it would give
                           (VocabReportConfig)
  build_vocab              learn a new vocab.txt, or fill the [unusedN] slots of an existing
                           one, same size (VocabConfig; fill_unused_of=)
  extend_vocab             grow a vocab and a trained checkpoint with it: new pieces, new
                           embedding rows (ExtendConfig)
  create_pretraining_data  text -> TFRecord files of masked sentence pairs (DataConfig)
  run_pretraining          train and/or evaluate (PretrainingConfig, OptimizerConfig,
                           RunConfig, TpuConfig, PrecisionConfig, DistributionConfig,
                           MixingConfig)
  export_to_hf             a checkpoint -> a Hugging Face folder, as convert_to_pytorch does
                           (ExportConfig)
  import_from_hf           a Hugging Face BERT folder -> a checkpoint (ImportConfig)
  evaluate_downstream      is the model better? fine-tune copies on a labelled task (UD tags,
                           entities, sentiment): scores as mean and spread over seeds, or per
                           checkpoint of a running training (DownstreamConfig, FinetuneConfig,
                           WatchConfig)

Shared settings: TokenizerOptions (casing, accents, never-split words), CorpusConfig (the
text read), BertConfig (bert_config.json). Also FullTokenizer, load_vocab, tokens_to_text
and BertModel (the encoder, in TensorFlow); VocabStats (what build_vocab returns) and
CasingWarning (a vocab's casing at odds with do_lower_case). Bad input raises NorbertError,
one line naming the setting (as the keyword, when given as one) and the fix. For example:

    import norbert
    norbert.build_vocab(input_file="no/*.txt", output_file="vocab.txt", vocab_size=32000,
                        do_lower_case=False)
    norbert.create_pretraining_data(input_file="no/*.txt", output_file="train.tfrecord",
                                    vocab_file="vocab.txt", do_lower_case=False)
    norbert.run_pretraining(input_file="train.tfrecord", output_dir="run",
                            bert_config_file="bert_config.json", do_train=True,
                            num_train_steps=1000)

Only run_pretraining (once it has checked its settings and files), the conversions,
evaluate_downstream and BertModel import TensorFlow, on first use.
"""

import sys

from norbert.data.builder import DataConfig, create_pretraining_data
from norbert.errors import NorbertError
from norbert.model.bert_config import BertConfig
from norbert.tokenization.options import TokenizerOptions
from norbert.tokenization.tokenizer import FullTokenizer, tokens_to_text
from norbert.tokenization.vocab import CasingWarning, load_vocab
from norbert.vocab_building.builder import VocabConfig, VocabStats, build_vocab
from norbert.vocab_building.corpus import CorpusConfig

__version__ = "0.1.0"

__all__ = [
    "BertConfig",
    "BertModel",
    "CasingWarning",
    "CorpusConfig",
    "DataConfig",
    "DistributionConfig",
    "DownstreamConfig",
    "ExportConfig",
    "ExtendConfig",
    "FinetuneConfig",
    "FullTokenizer",
    "ImportConfig",
    "MixingConfig",
    "NorbertError",
    "OptimizerConfig",
    "PrecisionConfig",
    "PretrainingConfig",
    "RunConfig",
    "TokenizerOptions",
    "TpuConfig",
    "VocabConfig",
    "VocabReportConfig",
    "VocabStats",
    "WatchConfig",
    "build_vocab",
    "create_pretraining_data",
    "evaluate_downstream",
    "export_to_hf",
    "extend_vocab",
    "import_from_hf",
    "load_vocab",
    "run_pretraining",
    "tokens_to_text",
    "vocab_report",
]

# Names loaded on first use, so that `import norbert` (and the data tools) stay fast and work
# without TensorFlow.
_LAZY = {
    # Their modules import TensorFlow.
    "BertModel": "norbert.model.modeling",
    "ExportConfig": "norbert.conversion.export",
    "ExtendConfig": "norbert.conversion.extend_vocab",
    "extend_vocab": "norbert.conversion.extend_vocab",
    "ImportConfig": "norbert.conversion.importing",
    "export_to_hf": "norbert.conversion.export",
    "import_from_hf": "norbert.conversion.importing",
    # The pretraining run's settings and entry: TensorFlow is imported only once the run has
    # checked its settings and files.
    "DistributionConfig": "norbert.training.distribution",
    "MixingConfig": "norbert.training.mixing",
    "OptimizerConfig": "norbert.training.config",
    "PrecisionConfig": "norbert.model.precision_config",
    "PretrainingConfig": "norbert.training.config",
    "RunConfig": "norbert.training.spec",
    "TpuConfig": "norbert.training.config",
    "run_pretraining": "norbert.training.pretraining",
    # No TensorFlow, but not needed by the other tools: loaded when asked for.
    "VocabReportConfig": "norbert.vocab_building.report",
    "vocab_report": "norbert.vocab_building.report",
    "DownstreamConfig": "norbert.downstream.config",
    "FinetuneConfig": "norbert.downstream.config",
    "WatchConfig": "norbert.downstream.config",
    "evaluate_downstream": "norbert.downstream.evaluate",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError("module 'norbert' has no attribute %r" % name)


def __dir__():
    """Every public name, the lazy ones too (tab completion, ``dir(norbert)``).

    Except for ``inspect.getmembers``, which is how ``help(norbert)`` and pydoc list a
    module: to them the public names are left out, so that help shows the map in the
    docstring above (not every class in full, 1,500 lines) and loads no TensorFlow.
    """
    if sys._getframe(1).f_globals.get("__name__") == "inspect":
        return sorted(name for name in globals()
                      if name not in __all__ and name not in ("__getattr__", "__dir__"))
    return sorted(set(globals()) | set(__all__))
