"""Text normalisation before WordPiece: cleaning, CJK and punctuation splitting, casing.

These are the semantics of Google's BERT ``BasicTokenizer`` (and of Hugging Face's
``BertPreTokenizer`` + ``BertNormalizer``), written for speed:

1. *clean*: drop NUL, U+FFFD and control/format characters (Unicode ``Cc``/``Cf``, except tab,
   newline and carriage return, which count as whitespace);
2. split on whitespace (``str.split``: every Unicode space separator, plus tab/newline/CR and the
   line/paragraph separators);
3. put every CJK ideograph in a word of its own;
4. when lower-casing: ``str.lower`` then NFD with combining marks (``Mn``) removed;
5. split punctuation off as single-character words: ASCII symbols ``!-/ :-@ [-` {-~`` and
   every Unicode ``P*`` character.

Character categories come from the running Python's ``unicodedata``, like the reference, and are
classified lazily: scanning all of Unicode up front would cost half a second per process.
All functions here are pure.
"""

import re
import unicodedata
from typing import Collection, List, Optional

_category = unicodedata.category

# ASCII control characters other than \t \n \r: these are removed, not treated as spaces.
_ASCII_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# ASCII punctuation as BERT defines it: every non-alphanumeric printable symbol.
_ASCII_PUNCT = "!-/:-@\\[-`{-~"
_ASCII_WORD_RE = re.compile("[%s]|[^%s]+" % (_ASCII_PUNCT, _ASCII_PUNCT))

# CJK Unified Ideographs and their extensions and compatibility blocks. Hangul, kana and the
# CJK punctuation block are not in it: those scripts separate words with spaces.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
_CJK_CLASS = "".join("%s-%s" % (chr(lo), chr(hi)) for lo, hi in _CJK_RANGES)
_CJK_SPLIT_RE = re.compile("([%s])" % _CJK_CLASS)
_CJK_SEARCH_RE = re.compile("[%s]" % _CJK_CLASS)


def is_cjk(char: str) -> bool:
    """True for a CJK ideograph, which BERT always makes a word of its own."""
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def is_control(char: str) -> bool:
    """True for a character that cleaning removes (tab, newline and CR are whitespace)."""
    if char in "\t\n\r":
        return False
    return char in "\x00\ufffd" or _category(char) in ("Cc", "Cf")


def is_whitespace(char: str) -> bool:
    """True for BERT's whitespace: space, tab, newline, CR and Unicode space separators."""
    return char in " \t\n\r" or _category(char) == "Zs"


def is_punctuation(char: str) -> bool:
    """True for ASCII symbols and any Unicode punctuation (``P*``): split off as own words."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return _category(char).startswith("P")


class _LazyClass:
    """A character predicate memoised per character, answered for many characters at once."""

    def __init__(self, predicate):
        self._predicate = predicate
        self._yes = set()  # characters known to satisfy the predicate
        self._seen = set()  # characters classified so far, either way

    def members(self, chars: set) -> set:
        """The subset of ``chars`` that satisfies the predicate."""
        unseen = chars - self._seen
        if unseen:
            self._yes.update(c for c in unseen if self._predicate(c))
            self._seen.update(unseen)
        return chars & self._yes

    def __contains__(self, char: str) -> bool:
        if char not in self._seen:
            if self._predicate(char):
                self._yes.add(char)
            self._seen.add(char)
        return char in self._yes


_CONTROL = _LazyClass(is_control)
_PUNCT = _LazyClass(is_punctuation)


def clean_text(text: str) -> str:
    """Removes NUL, U+FFFD and control/format characters; whitespace is left to ``split``."""
    if text.isascii():
        if _ASCII_CONTROL_RE.search(text) is None:
            return text
        return _ASCII_CONTROL_RE.sub("", text)
    removed = _CONTROL.members(set(text))
    if not removed:
        return text
    return text.translate({ord(c): None for c in removed})


def split_cjk(chunk: str) -> List[str]:
    """Splits a whitespace-free chunk so that every CJK ideograph stands alone."""
    if chunk.isascii() or _CJK_SEARCH_RE.search(chunk) is None:
        return [chunk]
    return [piece for piece in _CJK_SPLIT_RE.split(chunk) if piece]


def strip_accents(text: str) -> str:
    """NFD, then drops combining marks (``Mn``): "Grüße" -> "Gruße"."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if _category(c) != "Mn")


def split_punctuation(word: str) -> List[str]:
    """Splits every punctuation character off as a word of its own: "a,b!" -> a , b !"""
    if word.isascii():
        return _ASCII_WORD_RE.findall(word)
    out = []
    run = []
    for char in word:
        if char in _PUNCT:
            if run:
                out.append("".join(run))
                run = []
            out.append(char)
        else:
            run.append(char)
    if run:
        out.append("".join(run))
    return out


def normalize_chunk(chunk: str, do_lower_case: bool, strip: Optional[bool] = None,
                    tokenize_chinese_chars: bool = True) -> List[str]:
    """Words of one cleaned, whitespace-free chunk, before WordPiece.

    The order matters and is the reference's: CJK splitting sees the original characters,
    casing and accents come next, punctuation is split last. Hugging Face's options: ``strip``
    (its ``strip_accents``) removes accents whatever the casing (None: when lower-casing, as
    Google's), and ``tokenize_chinese_chars=False`` leaves CJK ideographs in their words.
    """
    if chunk.isascii():  # most chunks of most corpora: no CJK, no accents
        return _ASCII_WORD_RE.findall(chunk.lower() if do_lower_case else chunk)
    if strip is None:
        strip = do_lower_case
    words = []
    for piece in split_cjk(chunk) if tokenize_chinese_chars else [chunk]:
        if do_lower_case or strip:
            if do_lower_case:
                piece = piece.lower()
            if strip:
                piece = strip_accents(piece)
            if not piece.isascii():
                # Lower-casing and NFD never create spaces today; split anyway so that a future
                # Unicode version cannot make us disagree with the reference's final split.
                for part in piece.split():
                    words.extend(split_punctuation(part))
                continue
        words.extend(split_punctuation(piece))
    return words


def basic_tokenize(text: str, do_lower_case: bool = True, strip: Optional[bool] = None,
                   tokenize_chinese_chars: bool = True,
                   never_split: Collection[str] = ()) -> List[str]:
    """The words of ``text`` as BERT's basic tokenizer gives them (no caching, no vocab);
    a whitespace-separated chunk in ``never_split`` stays whole and as written."""
    words = []
    for chunk in clean_text(text).split():
        if chunk in never_split:
            words.append(chunk)
        else:
            words.extend(normalize_chunk(chunk, do_lower_case, strip, tokenize_chinese_chars))
    return words


def chunks(text: str) -> List[str]:
    """Cleaned whitespace-separated chunks: the unit the tokenizer caches on."""
    return clean_text(text).split()
