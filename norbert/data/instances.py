"""Sentence-pair instances for next-sentence prediction, and their truncation.

Works on token ids; randomness comes in as a ``Draws`` (``norbert.data.draws``). The construction is
the reference's (Google's ``create_instances_from_document``), draw for draw:

- per document: ``random() < short_seq_prob`` picks a short target length,
  ``randint(2, max_num_tokens)``; otherwise the target is ``max_num_tokens``
  (``max_seq_length - 3``, room for ``[CLS]`` and two ``[SEP]``);
- sentences gather into a chunk until it reaches the target (or the document ends); then
  ``randint(1, len(chunk) - 1)`` sentences (1 for a one-sentence chunk) form segment A;
- segment B is the rest of the chunk, or -- always for a one-sentence chunk, else when
  ``random() < 0.5`` -- sentences from a random other document (up to ten
  ``randint(0, n_documents - 1)`` tries to avoid this one; then
  ``randint(0, len(doc) - 1)`` for the first sentence) until B reaches the target minus A;
  the chunk's unused sentences are then put back to start the next chunk;
- the pair is truncated to ``max_num_tokens``, one token at a time from the longer segment
  (B on a tie), from its front when ``random() < 0.5``, else from its back;
- the sequence ``[CLS] A [SEP] B [SEP]`` is then masked (``norbert.data.masking``).
"""

import dataclasses
from typing import Callable, Iterator, List, NamedTuple, Sequence, Tuple

from norbert.data import defaults
from norbert.data.draws import Draws
from norbert.data.masking import MaskedSequence
from norbert.errors import NorbertError

Document = List[List[int]]  # sentences of token ids


@dataclasses.dataclass(frozen=True)
class InstanceConfig:
    """How sentence pairs are cut from documents."""

    # Tokens per sequence, [CLS] and the two [SEP] included; shorter ones are padded.
    max_seq_length: int = defaults.MAX_SEQ_LENGTH
    # Share of documents whose sequences aim at a random length in [2, max_seq_length - 3]
    # rather than the full length, to mimic short fine-tuning inputs.
    short_seq_prob: float = defaults.SHORT_SEQ_PROB

    @property
    def max_num_tokens(self) -> int:
        return self.max_seq_length - 3  # room for [CLS] A [SEP] B [SEP]

    def __post_init__(self) -> None:
        if self.max_seq_length < 5:
            raise NorbertError(
                "--max_seq_length must be at least 5 (got %d): [CLS], two [SEP] and one token "
                "of each segment; BERT uses 128 or 512" % self.max_seq_length
            )
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise NorbertError(
                "--short_seq_prob must be between 0 and 1 (got %r)" % self.short_seq_prob
            )


class Instance(NamedTuple):
    """One training sequence ``[CLS] A [SEP] B [SEP]``, masked."""

    tokens: List[int]  # [n] ids as the model sees them (masked), n <= max_seq_length
    len_a: int  # tokens of segment A; segment_ids are 0 for [CLS] A [SEP], 1 for B [SEP]
    masked_positions: List[int]  # [m] ascending
    masked_labels: List[int]  # [m] original ids at those positions
    is_random_next: bool  # B came from another document

    @property
    def segment_ids(self) -> List[int]:
        n = len(self.tokens)
        return [0] * (self.len_a + 2) + [1] * (n - self.len_a - 2)


Mask = Callable[[List[int], int, Draws], MaskedSequence]  # (tokens, len_a, draws), in place


def truncate_pair(
    a: List[int], b: List[int], max_num_tokens: int, draws: Draws
) -> Tuple[List[int], List[int]]:
    """``a`` and ``b`` cut to ``max_num_tokens`` together, as the reference's truncation.

    One ``random()`` per token removed: from the longer segment (``b`` on a tie), at its front
    when the draw is below 0.5, else at its back. Returns slices; the inputs are not changed.
    """
    len_a, len_b = len(a), len(b)
    excess = len_a + len_b - max_num_tokens
    if excess <= 0:
        return a, b
    random = draws.random
    a_front = a_back = b_front = b_back = 0
    for _ in range(excess):
        if len_a > len_b:
            len_a -= 1
            if random() < 0.5:
                a_front += 1
            else:
                a_back += 1
        else:
            len_b -= 1
            if random() < 0.5:
                b_front += 1
            else:
                b_back += 1
    return a[a_front:len(a) - a_back], b[b_front:len(b) - b_back]


def instances_from_document(
    documents: Sequence[Document],
    index: int,
    config: InstanceConfig,
    mask: Mask,
    draws: Draws,
    cls_id: int,
    sep_id: int,
) -> Iterator[Instance]:
    """The instances of ``documents[index]``, B segments drawn from the others when random."""
    document = documents[index]
    random, randint = draws.random, draws.randint
    max_num_tokens = config.max_num_tokens
    target = max_num_tokens
    if random() < config.short_seq_prob:
        target = randint(2, max_num_tokens)
    n_sentences = len(document)
    chunk: List[List[int]] = []
    chunk_length = 0
    i = 0
    while i < n_sentences:
        sentence = document[i]
        chunk.append(sentence)
        chunk_length += len(sentence)
        if i == n_sentences - 1 or chunk_length >= target:
            a_end = randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            a: List[int] = []
            for s in chunk[:a_end]:
                a.extend(s)
            b: List[int] = []
            if len(chunk) == 1 or random() < 0.5:
                is_random_next = True
                target_b = target - len(a)
                for _ in range(10):  # the reference's bounded retry to avoid this document
                    other = randint(0, len(documents) - 1)
                    if other != index:
                        break
                other_doc = documents[other]
                for s in other_doc[randint(0, len(other_doc) - 1):]:
                    b.extend(s)
                    if len(b) >= target_b:
                        break
                i -= len(chunk) - a_end  # unused sentences start the next chunk
            else:
                is_random_next = False
                for s in chunk[a_end:]:
                    b.extend(s)
            a, b = truncate_pair(a, b, max_num_tokens, draws)
            tokens = [cls_id, *a, sep_id, *b, sep_id]
            masked = mask(tokens, len(a), draws)
            yield Instance(masked.tokens, len(a), masked.positions, masked.labels, is_random_next)
            chunk = []
            chunk_length = 0
        i += 1


def create_instances(
    documents: Sequence[Document],
    config: InstanceConfig,
    mask: Mask,
    draws: Draws,
    cls_id: int,
    sep_id: int,
    dupe_factor: int = 1,
) -> Iterator[Instance]:
    """All instances, ``dupe_factor`` passes over the documents, in the reference's order.

    The caller shuffles the documents before (the reference shuffles them once, first) and the
    instances after; each pass draws new lengths, pairs and masks.
    """
    for _ in range(dupe_factor):
        for index in range(len(documents)):
            yield from instances_from_document(
                documents, index, config, mask, draws, cls_id, sep_id
            )
