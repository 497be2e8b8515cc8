"""Text to WordPiece ids: normalisation (text), the WordPiece rule (wordpiece), vocab files and
their special tokens (vocab), and the tokenizer that joins them. No TensorFlow.

The package also speaks Google's ``bert.tokenization`` API (``google_api``): a notebook that
used ``from bert import tokenization`` switches with ``from norbert import tokenization``.
"""

from norbert.tokenization.google_api import (  # Google's module-level API
    BasicTokenizer, WordpieceTokenizer, _is_control, _is_punctuation, _is_whitespace,
    convert_by_vocab, convert_ids_to_tokens, convert_to_unicode, convert_tokens_to_ids,
    load_vocab, printable_text, whitespace_tokenize,
)
from norbert.tokenization.tokenizer import FullTokenizer

__all__ = [
    "BasicTokenizer", "FullTokenizer", "WordpieceTokenizer", "convert_by_vocab",
    "convert_ids_to_tokens", "convert_to_unicode", "convert_tokens_to_ids", "load_vocab",
    "printable_text", "whitespace_tokenize",
]
