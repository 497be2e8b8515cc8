"""``FullTokenizer``: BERT's tokenizer (text normalisation, then WordPiece), with Google's API.

Every step of BERT tokenisation before WordPiece works on one whitespace-separated chunk at a
time, so the whole pipeline is a function of the chunk. The tokenizer caches that function:
real text repeats its words, and a cache hit costs one dictionary lookup. Text is cleaned once per
call, with fast paths for ASCII.
"""

import re
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from norbert.tokenization import text as textlib
from norbert.tokenization import vocab as vocablib
from norbert.tokenization import wordpiece as wplib

_UNUSED_RE = re.compile(r"^\[unused\d+\]$")
_DEFAULT_CACHE_SIZE = 1 << 18  # entries per cache (chunks, words): 100 MB at most in all


def _as_text(text: Union[str, bytes]) -> str:
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8", "ignore")  # as Google's tokenizer: invalid bytes dropped
    raise TypeError("text must be str or bytes, not %s" % type(text).__name__)


class FullTokenizer:
    """Text to WordPiece tokens and ids, identical to Google's ``tokenization.FullTokenizer``.

    ``FullTokenizer(vocab_file, do_lower_case=True)`` as in the reference; ``from_vocab`` builds
    one from a token -> id mapping. ``preserve_unused_tokens`` keeps ``[unusedN]`` written in the
    text as one token, like the reference's flag of that name. Hugging Face's BertTokenizer
    options: ``strip_accents`` (None: when lower-casing, as Google's; True or False whatever
    the casing), ``tokenize_chinese_chars`` and ``never_split`` (whitespace-separated words
    kept whole and as written).
    """

    def __init__(
        self,
        vocab_file: str,
        do_lower_case: bool = True,
        preserve_unused_tokens: bool = False,
        cache_size: int = _DEFAULT_CACHE_SIZE,
        check_casing: bool = True,
        strip_accents: Optional[bool] = None,
        tokenize_chinese_chars: bool = True,
        never_split: Iterable[str] = (),
    ):
        vocab = vocablib.load_vocab(vocab_file)
        self._setup(vocab, do_lower_case, preserve_unused_tokens, cache_size)
        self._options(strip_accents, tokenize_chinese_chars, never_split)
        self.vocab_file = vocab_file
        if check_casing:
            vocablib.warn_on_casing_mismatch(vocab, do_lower_case, vocab_file, strip_accents)

    @classmethod
    def from_vocab(
        cls,
        vocab: Union[Mapping[str, int], Sequence[str]],
        do_lower_case: bool = True,
        preserve_unused_tokens: bool = False,
        cache_size: int = _DEFAULT_CACHE_SIZE,
        check_casing: bool = True,
        strip_accents: Optional[bool] = None,
        tokenize_chinese_chars: bool = True,
        never_split: Iterable[str] = (),
    ) -> "FullTokenizer":
        """A tokenizer over an in-memory vocab: a token -> id mapping or a token list."""
        if not isinstance(vocab, Mapping):
            vocab = {t: i for i, t in enumerate(vocab)}
        self = cls.__new__(cls)
        self._setup(dict(vocab), do_lower_case, preserve_unused_tokens, cache_size)
        self._options(strip_accents, tokenize_chinese_chars, never_split)
        self.vocab_file = None
        if check_casing:
            vocablib.warn_on_casing_mismatch(vocab, do_lower_case, "vocab", strip_accents)
        return self

    def _setup(self, vocab, do_lower_case, preserve_unused_tokens, cache_size):
        self.vocab = vocab  # token -> id, in id order: the reference's attribute
        self.inv_vocab = vocablib.invert(vocab)  # id -> token
        self.do_lower_case = bool(do_lower_case)
        self.preserve_unused_tokens = bool(preserve_unused_tokens)
        self.unk_token = vocablib.UNK
        self.unk_id = vocab.get(vocablib.UNK)  # None: a vocab without [UNK], as Google allows
        self._bounds = wplib.piece_bounds(vocab)
        self._cache_size = cache_size
        self._tokens_cache: Dict[str, Tuple[str, ...]] = {}
        self._ids_cache: Dict[str, Tuple[int, ...]] = {}
        self._word_cache: Dict[str, Tuple[Tuple[str, ...], Tuple[int, ...]]] = {}

    def _options(self, strip_accents, tokenize_chinese_chars, never_split) -> None:
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.never_split = frozenset(never_split)

    # -- the tokeniser ---------------------------------------------------------------------

    def _word(self, word: str) -> Tuple[Tuple[str, ...], Tuple[int, ...]]:
        """WordPiece tokens and ids of one normalised word, cached: chunks differ in their
        punctuation ("Oslo", "Oslo," and "(Oslo)") far more often than in their words."""
        entry = self._word_cache.get(word)
        if entry is None:
            tokens = tuple(
                wplib.wordpiece(word, self.vocab, self.unk_token, bounds=self._bounds)
            )
            entry = (tokens, tuple(self.vocab[t] for t in tokens))
            self._remember(self._word_cache, word, entry)
        return entry

    def _chunk(self, chunk: str, part: int) -> tuple:
        """Tokens (part 0) or ids (part 1) of one cleaned, whitespace-free chunk (uncached)."""
        if self.preserve_unused_tokens and _UNUSED_RE.match(chunk) and chunk in self.vocab:
            return ((chunk,), (self.vocab[chunk],))[part]
        if chunk in self.never_split:  # whole and as written, as Hugging Face's slow tokenizer
            return ((chunk,), (self.vocab.get(chunk, self.unk_id),))[part]
        words = textlib.normalize_chunk(chunk, self.do_lower_case, self.strip_accents,
                                        self.tokenize_chinese_chars)
        if len(words) == 1:
            return self._word(words[0])[part]
        out: list = []
        for word in words:
            out.extend(self._word(word)[part])
        return tuple(out)

    def _remember(self, cache: dict, key: str, value) -> None:
        if len(cache) >= self._cache_size:
            cache.clear()  # crude but O(1) per call; real text refills the cache fast
        cache[key] = value

    def _tokens_of(self, chunk: str) -> Tuple[str, ...]:
        tokens = self._chunk(chunk, 0)
        self._remember(self._tokens_cache, chunk, tokens)
        return tokens

    def _ids_of(self, chunk: str) -> Tuple[int, ...]:
        ids = self._chunk(chunk, 1)
        self._remember(self._ids_cache, chunk, ids)
        return ids

    def tokenize(self, text: Union[str, bytes]) -> List[str]:
        """WordPiece tokens of ``text``: ``"Unaffable!"`` -> ``["una", "##ffa", "##ble", "!"]``."""
        cache = self._tokens_cache
        out: List[str] = []
        for chunk in textlib.clean_text(_as_text(text)).split():
            tokens = cache.get(chunk)
            out.extend(tokens if tokens is not None else self._tokens_of(chunk))
        return out

    def encode(self, text: Union[str, bytes]) -> List[int]:
        """Token ids of ``text``: ``convert_tokens_to_ids(tokenize(text))``, faster."""
        cache = self._ids_cache
        out: List[int] = []
        for chunk in textlib.clean_text(_as_text(text)).split():
            ids = cache.get(chunk)
            out.extend(ids if ids is not None else self._ids_of(chunk))
        return out

    # -- conversions -----------------------------------------------------------------------

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> List[int]:
        vocab = self.vocab
        try:
            return [vocab[t] for t in tokens]
        except KeyError as e:
            raise KeyError("token %r is not in the vocab" % e.args[0]) from None

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> List[str]:
        inv = self.inv_vocab
        try:
            return [inv[int(i)] for i in ids]
        except KeyError as e:
            raise KeyError("id %r is outside the vocab (size %d)" % (e.args[0], len(inv))) from None

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Readable text from ids: pieces joined, ``##`` continuations glued to their word.

        Casing and accents removed by ``do_lower_case`` and the spaces around punctuation are
        not restored: ``decode(encode("Don't!"))`` is ``"don ' t !"`` for an uncased vocab.
        """
        return tokens_to_text(self.convert_ids_to_tokens(ids), skip_special_tokens)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return "FullTokenizer(vocab_file=%r, do_lower_case=%r, vocab_size=%d)" % (
            self.vocab_file,
            self.do_lower_case,
            len(self.vocab),
        )


def tokens_to_text(tokens: Iterable[str], skip_special_tokens: bool = True) -> str:
    """Joins WordPiece tokens into text, gluing ``##`` pieces onto the word before them."""
    words: List[str] = []
    for token in tokens:
        if skip_special_tokens and token in _SKIPPED:
            continue
        if token.startswith(wplib.CONTINUATION) and words:
            words[-1] += token[len(wplib.CONTINUATION):]
        else:
            words.append(token)
    return " ".join(words)


_SKIPPED = frozenset((vocablib.PAD, vocablib.CLS, vocablib.SEP))
