"""norbert: pretrain BERT from scratch, or continue pretraining Google's BERT, on new text."""

from norbert.errors import NorbertError
from norbert.tokenizer import FullTokenizer, tokens_to_text
from norbert.vocab import CasingWarning, load_vocab

__version__ = "0.1.0"

__all__ = [
    "CasingWarning",
    "FullTokenizer",
    "NorbertError",
    "load_vocab",
    "tokens_to_text",
]
