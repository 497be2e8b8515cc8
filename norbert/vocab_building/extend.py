"""Growing a trained model's vocab: which tokens, where they go, and their first embeddings.

Pure functions on token lists and numpy arrays; ``norbert.conversion.extend_vocab`` reads the
model and the corpus and writes the grown model around them.

The new vocab keeps every old id: the ``[unusedN]`` slots are filled first (the model has rows
for them already), the rest is appended. A new token's first embedding (and masked-LM output
bias) is, with ``init="mean"``, the mean of the rows of the pieces the old vocab splits it into
(what the model knows of its spelling); with ``init="random"``, a fresh draw as in training
from scratch (N(0, initializer_range)).

The masked-LM output bias of a new token is a prior of how often it is the answer, and its
pieces' biases overstate that: a piece is the answer more often than a longer token made of
it. ``bias_init`` chooses the rule (``grown_bias``): the pieces' ``mean`` or ``min``, the
``product`` prior (the token as likely as its pieces drawn independently from the bias's
softmax: the sum of their log-probabilities), or ``zero`` (a fresh model's).
"""

import dataclasses
import re
from typing import List, Mapping, Sequence

import numpy as np

from norbert.errors import NorbertError
from norbert.tokenization import vocab as vocablib
from norbert.tokenization import wordpiece as wplib

MEAN, RANDOM = "mean", "random"
INITS = (MEAN, RANDOM)
MIN, PRODUCT, ZERO = "min", "product", "zero"
BIAS_INITS = (MEAN, MIN, PRODUCT, ZERO)
_UNUSED_RE = re.compile(r"^\[unused\d+\]$")


@dataclasses.dataclass(frozen=True)
class Growth:
    """Where the new tokens go in the grown vocab, and what they are made of in the old one."""

    tokens: List[str]  # the grown vocab in id order: every old id kept
    added: List[str]  # the new tokens, in the order chosen
    ids: List[int]  # [added] their ids in the grown vocab
    pieces: List[List[int]]  # [added] the old vocab's pieces of each (ids), what "mean" averages
    slots_filled: int  # how many went into [unusedN] slots (the first ones)

    @property
    def old_size(self) -> int:
        return len(self.tokens) - (len(self.added) - self.slots_filled)


def grow(old: Mapping[str, int], added: Sequence[str]) -> Growth:
    """The grown vocab: ``added`` into ``old``'s [unusedN] slots in id order, then appended."""
    tokens = [t for t, _ in sorted(old.items(), key=lambda kv: kv[1])]
    if [old[t] for t in tokens] != list(range(len(tokens))):
        raise NorbertError("the vocab's ids are not 0..N-1")  # load_vocab's are line numbers
    taken = [t for t in added if t in old]
    if taken:
        raise NorbertError("tokens already in the vocab cannot be added: %s" % " ".join(taken))
    slots = [i for i, t in enumerate(tokens) if _UNUSED_RE.match(t)]
    ids = []
    for k, token in enumerate(added):
        if k < len(slots):
            tokens[slots[k]] = token
            ids.append(slots[k])
        else:
            ids.append(len(tokens))
            tokens.append(token)
    pieces = [[old[p] for p in old_pieces(token, old)] for token in added]
    return Growth(tokens, list(added), ids, pieces, min(len(added), len(slots)))


def old_pieces(token: str, old: Mapping[str, int]) -> List[str]:
    """How the old vocab spells ``token``: WordPiece for a word-initial token; for a ``##``
    token, the longest ``##`` pieces left to right, as inside a word. ``[UNK]`` if it cannot."""
    if not token.startswith(wplib.CONTINUATION):
        return wplib.wordpiece(token, old, vocablib.UNK)
    body, pieces, start = token[len(wplib.CONTINUATION):], [], 0
    while start < len(body):
        for end in range(len(body), start, -1):
            piece = wplib.CONTINUATION + body[start:end]
            if piece in old:
                pieces.append(piece)
                start = end
                break
        else:
            return [vocablib.UNK]
    return pieces


def grown_rows(values: np.ndarray, growth: Growth, init: str, rng: np.random.RandomState,
               stddev: float) -> np.ndarray:
    """The embeddings ``values`` [old vocab, H] with the new tokens' rows: [grown vocab, H].

    ``mean``: each new row the mean of its pieces' rows. ``random``: N(0, stddev) rows. The
    rows of filled [unusedN] slots are replaced.
    """
    if init not in INITS:
        raise NorbertError("--init=%s: use one of %s" % (init, ", ".join(INITS)))
    out = _with_rows(values, growth)
    for token_id, pieces in zip(growth.ids, growth.pieces):
        if init == MEAN:
            out[token_id] = values[pieces].mean(axis=0)
        else:
            out[token_id] = rng.normal(0.0, stddev, size=values.shape[1:])
    return out


def grown_bias(values: np.ndarray, growth: Growth, rule: str) -> np.ndarray:
    """The output bias ``values`` [old vocab] with the new tokens' entries: [grown vocab].

    ``mean`` / ``min``: of the pieces' biases. ``product``: sum_i (b_i - L) + L over the pieces
    with L = logsumexp(b), so that softmax(b) gives the token the product of its pieces'
    probabilities (the biases of the old tokens, and so L, are the old model's). ``zero``: 0.
    """
    if rule not in BIAS_INITS:
        raise NorbertError("--bias_init=%s: use one of %s" % (rule, ", ".join(BIAS_INITS)))
    out = _with_rows(values, growth)
    peak = values.max()
    log_total = peak + np.log(np.exp(values - peak).sum())  # logsumexp, without overflow
    for token_id, pieces in zip(growth.ids, growth.pieces):
        if rule == MEAN:
            out[token_id] = values[pieces].mean()
        elif rule == MIN:
            out[token_id] = values[pieces].min()
        elif rule == PRODUCT:
            out[token_id] = (values[pieces] - log_total).sum() + log_total
        else:
            out[token_id] = 0
    return out


def _with_rows(values: np.ndarray, growth: Growth) -> np.ndarray:
    """``values`` copied into a table with a row per token of the grown vocab (new rows 0)."""
    if values.shape[0] != growth.old_size:
        raise NorbertError("a vocab-sized variable has %d rows, the vocab %d"
                           % (values.shape[0], growth.old_size))
    out = np.zeros((len(growth.tokens),) + values.shape[1:], dtype=values.dtype)
    out[:values.shape[0]] = values
    return out


def grown_slot(values: np.ndarray, growth: Growth) -> np.ndarray:
    """An optimizer slot of a vocab-sized variable, with zero rows for the new tokens (a
    moment of a row that was never trained as that token)."""
    out = _with_rows(values, growth)
    out[growth.ids] = 0
    return out
