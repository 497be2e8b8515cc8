"""``TokenizerOptions``: how text is split before WordPiece: Google's ``do_lower_case`` and
Hugging Face's BertTokenizer options beyond Google's tokenizer.

The vocab builder, the data builder, the export and extend_vocab take the same options (flags of
``build_vocab``, ``create_pretraining_data``, ``convert_to_pytorch`` and ``extend_vocab``),
because the vocab, the records and the exported tokenizer must split text the same way. The
defaults are Google's tokenizer, so leaving them alone changes nothing; the export alone
requires ``--do_lower_case`` (a model's casing is stated, never guessed).
"""

import dataclasses
from typing import Any, ClassVar, Dict, Iterable, List, Mapping, Optional, Tuple

from norbert.errors import NorbertError


@dataclasses.dataclass(frozen=True)
class TokenizerOptions:
    """How text is split before WordPiece: the casing, and where it departs from Google's
    tokenizer."""

    # The heading of its flags in --help and docs/flags.md.
    HEADING: ClassVar[str] = "Tokenizer"

    # Remove accents ("é" -> "e", "å" -> "a"). Unset: when lower-casing, as Google's tokenizer
    # does. false keeps them while lower-casing (an uncased Norwegian or Swedish model must
    # tell "å" from "a"); true strips them from cased text too.
    strip_accents: Optional[bool] = None
    # Make every CJK ideograph a word of its own, as Google's tokenizer does; false leaves
    # ideographs in the words they are written in.
    tokenize_chinese_chars: bool = True
    # Words kept whole and as written (not lower-cased, not split at punctuation) where they
    # stand between spaces, comma-separated: markers such as <url>. Each must be a token of
    # the vocab; build_vocab puts them in.
    never_split: Tuple[str, ...] = ()
    # Lower-case (and strip accents, unless --strip_accents says otherwise) as the tokenizer
    # does: True for an uncased vocab and model, False for a cased one. The vocab, the records
    # and the exported tokenizer must be made with the same value.
    do_lower_case: bool = True

    def __post_init__(self) -> None:
        """Raises ``NorbertError`` naming the flag for options that cannot work."""
        if isinstance(self.never_split, str):
            raise NorbertError("--never_split takes a list of words, not the string %r"
                               % self.never_split)
        words = tuple(self.never_split)
        object.__setattr__(self, "never_split", words)  # a list from Python becomes a tuple
        for word in words:
            if not isinstance(word, str) or not word or word.split() != [word]:
                raise NorbertError(
                    "--never_split=%s: %r is not a word; give words without spaces, "
                    "comma-separated" % (",".join(map(str, words)), word))
        if len(set(words)) != len(words):
            raise NorbertError("--never_split names a word twice: give each word once")

    def tokenizer_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments of ``FullTokenizer`` and ``BasicTokenizer`` beside
        ``do_lower_case``, which callers pass on its own."""
        return {"strip_accents": self.strip_accents,
                "tokenize_chinese_chars": self.tokenize_chinese_chars,
                "never_split": self.never_split}

    def settings(self) -> Dict[str, Any]:
        """The options as JSON values, as the sidecar records them (in this order)."""
        return {"do_lower_case": self.do_lower_case,
                "strip_accents": self.strip_accents,
                "tokenize_chinese_chars": self.tokenize_chinese_chars,
                "never_split": list(self.never_split)}

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> "TokenizerOptions":
        """The options a sidecar recorded (Google's for a sidecar that predates them)."""
        return cls(strip_accents=values.get("strip_accents"),
                   tokenize_chinese_chars=values.get("tokenize_chinese_chars", True),
                   never_split=tuple(values.get("never_split") or ()),
                   do_lower_case=values.get("do_lower_case", True))

    def flags(self) -> str:
        """The options beyond the casing as the flags that give them, for messages: "" for
        Google's. Messages state ``--do_lower_case`` on their own."""
        parts = []
        if self.strip_accents is not None:
            parts.append("--strip_accents=%s" % str(self.strip_accents).lower())
        if not self.tokenize_chinese_chars:
            parts.append("--tokenize_chinese_chars=false")
        if self.never_split:
            parts.append("--never_split=%s" % ",".join(self.never_split))
        return " ".join(parts)

    def missing(self, vocab: Iterable[str]) -> List[str]:
        """The never_split words that are not tokens of ``vocab``, in order."""
        tokens = vocab if isinstance(vocab, Mapping) else set(vocab)
        return [w for w in self.never_split if w not in tokens]

    def check_vocab(self, vocab: Iterable[str], source: str) -> None:
        """``NorbertError`` naming ``source`` when a never_split word is not a vocab token:
        it would always be [UNK], and Hugging Face's tokenizer would give it a new id."""
        missing = self.missing(vocab)
        if missing:
            raise NorbertError(
                "--never_split: %s not in %s; never-split words must be vocab tokens (build "
                "the vocab with the same --never_split, or leave them out)"
                % (" ".join(missing), source))
