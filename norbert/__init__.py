"""norbert: pretrain BERT from scratch, or continue pretraining Google's BERT, on new text."""

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
    "ExportConfig",
    "ExtendConfig",
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
    "VocabStats",
    "build_vocab",
    "create_pretraining_data",
    "export_to_hf",
    "extend_vocab",
    "import_from_hf",
    "load_vocab",
    "run_pretraining",
    "tokens_to_text",
]

# Names whose modules import TensorFlow: loaded on first use, so that `import norbert` (and the
# data tools) stay fast and work without TensorFlow.
_LAZY = {
    "BertModel": "norbert.model.modeling",
    "DistributionConfig": "norbert.training.distribution",
    "ExportConfig": "norbert.conversion.export",
    "ExtendConfig": "norbert.conversion.extend_vocab",
    "extend_vocab": "norbert.conversion.extend_vocab",
    "ImportConfig": "norbert.conversion.importing",
    "export_to_hf": "norbert.conversion.export",
    "import_from_hf": "norbert.conversion.importing",
    "MixingConfig": "norbert.training.mixing",
    "OptimizerConfig": "norbert.training.optimization",
    "PrecisionConfig": "norbert.model.precision",
    "PretrainingConfig": "norbert.training.pretraining",
    "RunConfig": "norbert.training.spec",
    "TpuConfig": "norbert.training.tpu",
    "run_pretraining": "norbert.training.pretraining",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError("module 'norbert' has no attribute %r" % name)


def __dir__():
    """Every public name, the lazy ones too (tab completion, ``dir(norbert)``)."""
    return sorted(set(globals()) | set(__all__))
