"""Sequences packed full of consecutive sentences, for the masked-LM-only objective
(``--objective=mlm``: RoBERTa's DOC-SENTENCES and FULL-SENTENCES inputs, without segment pairs).

Works on token ids, like ``norbert.data.instances``. Per pass over the documents (in the
order given: the caller shuffles them), the sentences follow one another into a record's body
of ``max_seq_length - 2`` tokens (room for ``[CLS]`` and the closing ``[SEP]``):

- by default a record is filled to its last token: the sentence that does not fit is split,
  its rest opens the next record (and a sentence longer than a record spans several); the
  bodies of a pass, put end to end, are the documents' tokens in order;
- ``whole_sentences=True`` (``--whole_sentences``): a sentence that does not fit in the room
  left closes the record (padded) and opens the next one whole, so a record never cuts a
  sentence unless that sentence alone is longer than a body: such a one starts a fresh record
  and is split over as many as it needs (the sentences after its last piece may join that
  record). A record's body is then whole sentences, after at most one piece of a long one
  (or is one piece); about half a sentence of padding per record;
- either way nothing is dropped: every sentence appears once per pass, in order;
- ``cross_documents=False``: a record never spans two documents, so a document's last record
  may be short (padded);
- ``cross_documents=True``: a document's end is marked by a ``[SEP]`` and the next document
  continues the same record (when at least one of its tokens fits after that ``[SEP]``, and
  with ``whole_sentences`` only when its first sentence fits whole; else the record closes,
  its own ``[SEP]`` marking the end);
- each pass packs alone (its last record may be short); ``dupe_factor`` passes draw new masks
  over the same cuts. ``--short_seq_prob`` does not apply (another value than its default or 0
  is an error, ``DataConfig``).

A record is ``[CLS] d1.. [SEP] d2.. [SEP] ..`` (one part per document it holds), written in
Google's schema with every ``segment_ids`` 0 and ``next_sentence_labels`` 0 (a placeholder: no
next-sentence task). Every position but ``[CLS]`` and the ``[SEP]`` s is a masked-LM candidate.
The packing draws nothing; the masks draw from the build's generator.
"""

from typing import Callable, Iterator, List, NamedTuple, Sequence

from norbert.data.draws import Draws
from norbert.data.instances import Document
from norbert.data.masking import MaskedSequence

Run = List[List[int]]  # one record's parts: the tokens of each document it holds, in order
# (tokens, candidate positions (ascending), draws) -> the masked sequence; in place.
MaskRun = Callable[[List[int], List[int], Draws], MaskedSequence]


class _Record:
    """The record being filled: earlier documents' parts, this document's tokens in it, and the
    room left in its body (each part but the last costs one more place, its [SEP])."""

    def __init__(self, body_length: int):
        self.body_length = body_length
        self.parts: Run = []
        self.current: List[int] = []
        self.room = body_length

    @property
    def empty(self) -> bool:
        return not (self.parts or self.current)

    def close(self) -> Run:
        """The record's parts (an empty ``current`` adds none: the last document's [SEP] then
        closes the record); the next record starts empty."""
        run = self.parts + [self.current] if self.current else self.parts
        self.parts, self.current, self.room = [], [], self.body_length
        return run

    def fill(self, sentence: Sequence[int]) -> Iterator[Run]:
        """Puts ``sentence`` in, split where the room runs out; yields the records it fills."""
        start, n = 0, len(sentence)
        while start < n:
            if self.room == 0:
                yield self.close()
            take = sentence[start:start + self.room]
            self.current.extend(take)
            self.room -= len(take)
            start += len(take)

    def end_document(self, cross_documents: bool) -> Iterator[Run]:
        """At a document's end: its [SEP] and the record goes on (``cross_documents``, room for
        that [SEP] and a token of the next), or the record closes."""
        if not self.current:
            return  # a document without tokens leaves no mark
        if cross_documents and self.room >= 2:
            self.parts.append(self.current)
            self.current = []
            self.room -= 1
        else:
            yield self.close()


def packed_runs(documents: Sequence[Document], body_length: int, cross_documents: bool,
                whole_sentences: bool = False) -> Iterator[Run]:
    """The records of one pass over ``documents``, as parts: each run's tokens plus one
    separator between parts total at most ``body_length``. With ``whole_sentences`` a sentence
    that does not fit in the room left opens the next record instead of being split (module
    docstring)."""
    record = _Record(body_length)
    for document in documents:
        for sentence in document:
            if whole_sentences and len(sentence) > record.room and not record.empty:
                yield record.close()  # padded: the sentence begins the next record
            yield from record.fill(sentence)
        yield from record.end_document(cross_documents)
    if not record.empty:
        yield record.close()


def record_of(run: Run, cls_id: int, sep_id: int):
    """(tokens ``[CLS] p1.. [SEP] p2.. [SEP]``, the candidate positions: all but the specials)."""
    tokens = [cls_id]
    candidates: List[int] = []
    for part in run:
        candidates.extend(range(len(tokens), len(tokens) + len(part)))
        tokens.extend(part)
        tokens.append(sep_id)
    return tokens, candidates


class Packed(NamedTuple):
    """One packed record, masked (``positions``/``labels`` empty when masks are left to
    training time)."""

    tokens: List[int]  # [n] ids as the model sees them, n <= max_seq_length
    candidates: List[int]  # positions that may be masked: all but [CLS] and the [SEP]s
    positions: List[int]  # [m] masked positions, ascending
    labels: List[int]  # [m] original ids at those positions


def packed_instances(documents: Sequence[Document], max_seq_length: int, cross_documents: bool,
                     mask: MaskRun, draws: Draws, cls_id: int, sep_id: int,
                     dupe_factor: int = 1, whole_sentences: bool = False) -> Iterator[Packed]:
    """All packed records of ``dupe_factor`` passes, each masked by ``mask``."""
    for _ in range(dupe_factor):
        for run in packed_runs(documents, max_seq_length - 2, cross_documents,
                               whole_sentences):
            tokens, candidates = record_of(run, cls_id, sep_id)
            masked = mask(tokens, list(candidates), draws)  # consumes its copy
            yield Packed(masked.tokens, candidates, masked.positions, masked.labels)
