"""BERT's sequence and masking settings, Google's defaults, written once.

The default of every config that takes them: the data builder's (``DataConfig`` and the
``InstanceConfig``/``MaskingConfig`` it makes), the masks drawn at training time
(``DynamicMasking``) and pretraining's (``PretrainingConfig``): a run built with the defaults
reads records built with the defaults. Plain constants, so that the flag machinery reads them
from the source.
"""

MAX_SEQ_LENGTH = 128  # tokens per sequence, [CLS] and [SEP]s included
MAX_PREDICTIONS_PER_SEQ = 20  # masked-LM predictions per sequence at most (~ 128 * 0.15)
MASKED_LM_PROB = 0.15  # share of each sequence's tokens to predict
SHORT_SEQ_PROB = 0.1  # share of documents cut into shorter sequences
