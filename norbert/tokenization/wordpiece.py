"""Greedy longest-match-first WordPiece over a vocabulary (pure).

A word is covered left to right by the longest vocabulary entry that matches at each position;
every piece after the first carries the ``##`` continuation prefix. If some position has no
match, or the word is longer than ``max_chars`` characters, the whole word becomes the unknown
token: BERT never emits a partial word.
"""

from typing import Container, Dict, Iterable, List, Optional, Tuple

CONTINUATION = "##"
MAX_CHARS_PER_WORD = 200  # Google's limit; Hugging Face's default is 100

# For each first character, the longest vocab entry that starts with it: as a word-initial
# piece (matched literally) and as a continuation (the part after "##").
Bounds = Tuple[Dict[str, int], Dict[str, int]]


def piece_bounds(vocab: Iterable[str]) -> Bounds:
    """Longest candidate worth trying at each position, by the character found there.

    Without it every position tries every length down to one; with it a character that starts
    no entry ends the word at once, and a rare script tries only as long as its longest entry.
    """
    first: Dict[str, int] = {}
    cont: Dict[str, int] = {}
    for token in vocab:
        if token and len(token) > first.get(token[0], 0):
            first[token[0]] = len(token)
        body = token[len(CONTINUATION):] if token.startswith(CONTINUATION) else ""
        if body and len(body) > cont.get(body[0], 0):
            cont[body[0]] = len(body)
    return first, cont


def wordpiece(
    word: str,
    vocab: Container[str],
    unk_token: str = "[UNK]",
    max_chars: int = MAX_CHARS_PER_WORD,
    bounds: Optional[Bounds] = None,
) -> List[str]:
    """Splits one normalised word into vocabulary pieces, or ``[unk_token]``.

    ``bounds`` (from ``piece_bounds(vocab)``) only skips candidates that cannot be in the vocab;
    the result is the same with or without it.
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
        prefix = CONTINUATION if start else ""
        if bounds is None:
            end = n
        else:
            end = min(n, start + bounds[1 if start else 0].get(word[start], 0))
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
