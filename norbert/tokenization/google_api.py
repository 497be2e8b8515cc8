"""Google's ``bert.tokenization`` module-level API, on norbert's tokenizer.

A notebook written against Google's module changes its import only:
``from norbert import tokenization`` offers ``FullTokenizer``, ``BasicTokenizer``,
``WordpieceTokenizer``, ``load_vocab``, ``convert_by_vocab``, ``convert_tokens_to_ids``,
``convert_ids_to_tokens``, ``convert_to_unicode``, ``printable_text`` and
``whitespace_tokenize`` with the same signatures and results (and the character tests Google's
own tests call, ``_is_whitespace``, ``_is_control``, ``_is_punctuation``). Any vocab Google's
reader takes is taken: the special tokens are checked by the tools that need them.
"""

from typing import Iterable, List, Mapping, Optional, Union

from norbert.tokenization import text as textlib
from norbert.tokenization import vocab as vocablib
from norbert.tokenization import wordpiece as wplib

MAX_INPUT_CHARS_PER_WORD = wplib.MAX_CHARS_PER_WORD


def load_vocab(vocab_file: str):
    """Token -> id (an ``OrderedDict``) of a vocab file, as Google's ``load_vocab``."""
    return vocablib.load_vocab(vocab_file)


def convert_to_unicode(text: Union[str, bytes]) -> str:
    """``text`` as ``str``; bytes are decoded as UTF-8, invalid bytes dropped."""
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8", "ignore")
    raise ValueError("Unsupported string type: %s" % type(text))


def printable_text(text: Union[str, bytes]) -> str:
    """``text`` fit for printing or logging (``str`` on Python 3)."""
    return convert_to_unicode(text)


def convert_by_vocab(vocab: Mapping, items: Iterable) -> list:
    """``[vocab[item] for item in items]``: tokens to ids, or ids to tokens."""
    return [vocab[item] for item in items]


def convert_tokens_to_ids(vocab: Mapping[str, int], tokens: Iterable[str]) -> List[int]:
    return convert_by_vocab(vocab, tokens)


def convert_ids_to_tokens(inv_vocab: Mapping[int, str], ids: Iterable[int]) -> List[str]:
    return convert_by_vocab(inv_vocab, ids)


def whitespace_tokenize(text: str) -> List[str]:
    """``text`` split at whitespace, stripped first."""
    text = text.strip()
    return text.split() if text else []


class BasicTokenizer:
    """Cleaning, punctuation splitting, lower-casing and accent stripping (no vocab).

    Google's ``BasicTokenizer(do_lower_case)``, with Hugging Face's options too: ``never_split``
    (words kept whole and as written), ``tokenize_chinese_chars`` and ``strip_accents`` (None:
    when lower-casing).
    """

    def __init__(self, do_lower_case: bool = True, never_split: Iterable[str] = (),
                 tokenize_chinese_chars: bool = True, strip_accents: Optional[bool] = None):
        self.do_lower_case = do_lower_case
        self.never_split = frozenset(never_split)
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents

    def tokenize(self, text: Union[str, bytes], never_split: Iterable[str] = ()) -> List[str]:
        return textlib.basic_tokenize(convert_to_unicode(text), self.do_lower_case,
                                      self.strip_accents, self.tokenize_chinese_chars,
                                      self.never_split.union(never_split))


class WordpieceTokenizer:
    """Greedy longest-match-first WordPiece over ``vocab`` (a token -> id mapping)."""

    def __init__(self, vocab: Mapping[str, int], unk_token: str = vocablib.UNK,
                 max_input_chars_per_word: int = MAX_INPUT_CHARS_PER_WORD):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def tokenize(self, text: Union[str, bytes]) -> List[str]:
        """Pieces of each whitespace-separated word of ``text`` (already basic-tokenized)."""
        pieces: List[str] = []
        for word in whitespace_tokenize(convert_to_unicode(text)):
            pieces.extend(wplib.wordpiece(word, self.vocab, self.unk_token,
                                          self.max_input_chars_per_word))
        return pieces


# The character classes, under the names Google's tests call them by.
_is_whitespace = textlib.is_whitespace
_is_control = textlib.is_control
_is_punctuation = textlib.is_punctuation
