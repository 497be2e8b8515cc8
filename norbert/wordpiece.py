"""Greedy longest-match-first WordPiece over a vocabulary (pure).

A word is covered left to right by the longest vocabulary entry that matches at each position;
every piece after the first carries the ``##`` continuation prefix. If some position has no
match, or the word is longer than ``max_chars`` characters, the whole word becomes the unknown
token: BERT never emits a partial word.
"""

from typing import Container, List

CONTINUATION = "##"
MAX_CHARS_PER_WORD = 200  # Google's limit; Hugging Face's default is 100


def max_piece_length(vocab: Container[str]) -> int:
    """Longest entry in characters: no longer substring can match, so none is tried."""
    return max((len(t) for t in vocab), default=0)


def wordpiece(
    word: str,
    vocab: Container[str],
    unk_token: str = "[UNK]",
    max_chars: int = MAX_CHARS_PER_WORD,
    max_piece: int = 0,
) -> List[str]:
    """Splits one normalised word into vocabulary pieces, or ``[unk_token]``.

    ``max_piece`` (from ``max_piece_length``) only skips candidates that cannot be in the vocab;
    0 means no bound. The result is the same either way.
    """
    n = len(word)
    if n == 0:
        return []
    if n > max_chars:
        return [unk_token]
    if word in vocab:  # the common case: a whole word in the vocabulary
        return [word]
    pieces = []
    start = 0
    while start < n:
        end = min(n, start + max_piece) if max_piece else n
        prefix = CONTINUATION if start else ""
        while end > start:
            piece = prefix + word[start:end]
            if piece in vocab:
                break
            end -= 1
        else:
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces
