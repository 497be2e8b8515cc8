"""Reading and checking a BERT ``vocab.txt``: one token per line, the line number is the id."""

import collections
import re
import warnings
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

from norbert import fileio
from norbert.errors import NorbertError
from norbert.tokenization import text as textlib

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)

_BRACKETED_RE = re.compile(r"^\[[^\]]*\]$")  # [PAD], [unused12], [SEP]: never produced by text


class CasingWarning(UserWarning):
    """The vocabulary's casing (or accents) and ``do_lower_case`` (or ``strip_accents``)
    disagree."""


def parse_vocab(data: bytes, source: str = "vocab",
                required: Sequence[str] = ()) -> "collections.OrderedDict[str, int]":
    """Token -> id from the bytes of a vocab file; raises ``NorbertError`` naming ``source``.

    Lines are stripped of surrounding whitespace as Google's reader does, so ids are line
    numbers. Unlike Google's reader, a repeated token is an error rather than a silent shift
    of every later id. Any vocab Google's reader takes is taken; the tools that need special
    tokens name them in ``required`` (``SPECIAL_TOKENS`` for building or exporting a BERT).
    """
    if b"\x00" in data:
        raise NorbertError(
            "vocab file %s is binary, not text: pass the vocab.txt that came with the model"
            % source
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NorbertError(
            "vocab file %s is not UTF-8 (line %d, byte offset %d): re-save it as UTF-8"
            % (source, data.count(b"\n", 0, e.start) + 1, e.start)
        ) from None
    text = text.lstrip("\ufeff")  # a byte-order mark would otherwise glue onto the first token
    lines = text.split("\n")  # "\n" only: str.splitlines would also break at U+2028 and friends
    if lines and lines[-1] == "":
        lines.pop()
    if not any(line.strip() for line in lines):
        raise NorbertError("vocab file %s is empty: it needs one token per line" % source)
    vocab = collections.OrderedDict()
    for number, line in enumerate(lines):
        token = line.strip()
        if token in vocab:
            raise NorbertError(
                "vocab file %s: token %r on line %d repeats line %d; each token must appear once "
                "(remove the repeat, keeping the ids the model was trained with)"
                % (source, token, number + 1, vocab[token] + 1)
            )
        vocab[token] = number
    require(vocab, required, source)
    return vocab


def require(vocab: Mapping[str, int], tokens: Sequence[str], source: str) -> None:
    """``NorbertError`` naming ``source`` when ``vocab`` lacks any of ``tokens``."""
    missing = [t for t in tokens if t not in vocab]
    if missing:
        raise NorbertError(
            "vocab file %s lacks %s: a BERT vocab needs %s (add the missing lines)"
            % (source, " ".join(missing), " ".join(SPECIAL_TOKENS))
        )


def load_vocab(path: str, required: Sequence[str] = ()) -> "collections.OrderedDict[str, int]":
    """Reads and checks a vocab file (local, or ``gs://`` through ``tf.io.gfile``); as
    ``parse_vocab``."""
    return parse_vocab(fileio.read_bytes(path, what="vocab file"), source=path,
                       required=required)


def invert(vocab: Mapping[str, int]) -> Dict[int, str]:
    return {i: t for t, i in vocab.items()}


def _word_tokens(tokens: Iterable[str]) -> List[str]:
    """Tokens that text can produce, without the ``##`` prefix; specials left out."""
    return [t[2:] if t.startswith("##") else t for t in tokens if not _BRACKETED_RE.match(t)]


def casing_mismatch(vocab: Iterable[str], do_lower_case: bool) -> Optional[str]:
    """Why the vocab's casing contradicts ``do_lower_case``, or None when it does not.

    A token with upper-case letters can never be produced from lower-cased text; a vocab with
    letters but no upper-case token makes every capitalised word fall apart when the text keeps
    its case. One percent of lettered tokens is the line between the two: uncased vocabs have
    none, cased ones (Google's and any trained on cased text) have far more.
    """
    words = _word_tokens(vocab)
    lettered = [w for w in words if w.lower() != w.upper()]
    if not lettered:
        return None  # nothing with case in it (for example a CJK-only vocab): no judgement
    upper = sum(1 for w in lettered if w.lower() != w)
    share = upper / len(lettered)
    if do_lower_case and share >= 0.01:
        return (
            "the vocab looks cased (%.0f%% of its lettered tokens have upper-case letters) but "
            "do_lower_case is True, so those tokens can never be used: pass do_lower_case=False "
            "(--do_lower_case=False) for a cased model" % (100 * share)
        )
    if not do_lower_case and upper == 0:
        return (
            "the vocab looks uncased (no token has an upper-case letter) but do_lower_case is "
            "False, so capitalised words will break into pieces or [UNK]: pass "
            "do_lower_case=True (--do_lower_case=True) for an uncased model"
        )
    return None


def accent_mismatch(vocab: Iterable[str], do_lower_case: bool,
                    strip_accents: Optional[bool] = None) -> Optional[str]:
    """Why the vocab's accents contradict stripping them, or None when they do not.

    A tokenizer that strips accents (``strip_accents``, or when unset ``do_lower_case``) can
    never produce a token with one; a vocab where one percent of the lettered tokens have
    accents was learned from text that kept them (Google's uncased vocabs have none). The
    other way cannot be judged: a vocab without accents may come from text that had none.
    """
    strips = do_lower_case if strip_accents is None else strip_accents
    if not strips:
        return None
    lettered = [w for w in _word_tokens(vocab) if w.lower() != w.upper()]
    accented = sum(1 for w in lettered if textlib.strip_accents(w) != w)
    if not lettered or accented < 0.01 * len(lettered):
        return None
    return (
        "the vocab keeps accents (%.0f%% of its lettered tokens have them) but the tokenizer "
        "strips them%s, so those tokens can never be used: pass strip_accents=False "
        "(--strip_accents=false)" % (100.0 * accented / len(lettered),
                                     " (do_lower_case)" if strip_accents is None else "")
    )


def tokenizer_mismatch(vocab: Iterable[str], do_lower_case: bool,
                       strip_accents: Optional[bool] = None) -> Optional[str]:
    """Why the vocab's casing or accents contradict the tokenizer's settings, or None."""
    vocab = list(vocab)
    return (casing_mismatch(vocab, do_lower_case)
            or accent_mismatch(vocab, do_lower_case, strip_accents))


def warn_on_casing_mismatch(vocab: Iterable[str], do_lower_case: bool, source: str,
                            strip_accents: Optional[bool] = None) -> None:
    """A ``CasingWarning`` naming ``source`` when the vocab's casing or accents contradict
    the tokenizer's settings."""
    reason = tokenizer_mismatch(vocab, do_lower_case, strip_accents)
    if reason:
        warnings.warn("%s: %s" % (source, reason), CasingWarning, stacklevel=3)
