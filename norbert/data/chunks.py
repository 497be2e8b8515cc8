"""Chunks of documents for pairs drawn at training time (``--pairing=dynamic``).

A chunk is what the reference's ``create_instances_from_document`` gathers before it splits
it into a pair (``norbert.data.instances``): per document, ``random() < short_seq_prob`` picks a
short target length ``randint(2, max_seq_length - 3)``, else the target is
``max_seq_length - 3``; consecutive sentences gather until they reach the target or the
document ends. Here the chunks follow one another (no sentences put back: the split, and so
what a random B leaves unused, is drawn anew at every read by
``norbert.training.dynamic_pairing``).

A record holds one chunk, unsplit and unmasked (``norbert.data.features``' chunk table): its
first ``max_seq_length`` tokens (a chunk's last sentence can overshoot the target; the pair is
truncated to ``max_seq_length - 3`` anyway), which tokens start a sentence and a word, and the
document's target.
"""

from typing import Iterator, List, Sequence, Tuple

from norbert.data import tfrecord
from norbert.data.draws import Draws
from norbert.data.features import WORD_PIECE, WORD_START
from norbert.data.instances import Document, InstanceConfig

Chunk = Tuple[List[List[int]], int]  # (sentences of token ids, the document's target length)


def chunks_from_document(document: Document, config: InstanceConfig,
                         draws: Draws) -> Iterator[Chunk]:
    """The chunks of ``document``, in order, each with the document's target length."""
    max_num_tokens = config.max_num_tokens
    target = max_num_tokens
    if draws.random() < config.short_seq_prob:
        target = draws.randint(2, max_num_tokens)
    chunk: List[List[int]] = []
    length = 0
    last = len(document) - 1
    for i, sentence in enumerate(document):
        chunk.append(sentence)
        length += len(sentence)
        if i == last or length >= target:
            yield chunk, target
            chunk, length = [], 0


def create_chunks(documents: Sequence[Document], config: InstanceConfig, draws: Draws,
                  dupe_factor: int = 1) -> Iterator[Chunk]:
    """All chunks, ``dupe_factor`` passes over the documents (each draws new targets)."""
    for _ in range(dupe_factor):
        for document in documents:
            yield from chunks_from_document(document, config, draws)


class ChunkEncoder:
    """Chunks to serialised ``tf.train.Example`` bytes (the chunk table's features)."""

    def __init__(self, max_seq_length: int, continuation: Sequence[bool]):
        self.max_seq_length = max_seq_length
        self.continuation = bytes(bool(c) for c in continuation)  # id -> 0/1

    def tokens(self, chunk: Chunk) -> int:
        """The tokens a record of ``chunk`` holds."""
        return min(sum(map(len, chunk[0])), self.max_seq_length)

    def encode(self, chunk: Chunk) -> bytes:
        sentences, target = chunk
        s = self.max_seq_length
        ids: List[int] = []
        starts: List[int] = []
        for sentence in sentences:
            starts.append(1)
            starts.extend([0] * (len(sentence) - 1))
            ids.extend(sentence)
        ids, starts = ids[:s], starts[:s]
        n = len(ids)
        marks = [WORD_PIECE if p and self.continuation[t] else WORD_START
                 for p, t in enumerate(ids)]
        pad = [0] * (s - n)
        return tfrecord.encode_example({
            "input_ids": (tfrecord.INT64, ids + pad),
            "input_mask": (tfrecord.INT64, [1] * n + pad),
            "maskable": (tfrecord.INT64, marks + pad),
            "sentence_starts": (tfrecord.INT64, starts + pad),
            "target_length": (tfrecord.INT64, [target]),
        })
