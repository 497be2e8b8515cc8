"""THE pretraining feature schema: names, dtypes and lengths, defined once.

The data builder writes these features and the training input pipeline parses them; both read
this module, so the two cannot drift apart (the reference declares them twice, in two scripts).
Names, dtypes and meanings are Google's, so records written by either tool train with either.

Legend: ``S`` = max_seq_length, ``P`` = max_predictions_per_seq.

| feature              | dtype   | length | meaning                                              |
| -------------------- | ------- | ------ | ---------------------------------------------------- |
| input_ids            | int64   | S      | token ids, masked, then 0 ([PAD]) padding            |
| input_mask           | int64   | S      | 1 for real tokens, 0 for padding                     |
| segment_ids          | int64   | S      | 0 for [CLS] A [SEP], 1 for B [SEP], 0 for padding    |
| masked_lm_positions  | int64   | P      | positions to predict, ascending, then 0 padding      |
| masked_lm_ids        | int64   | P      | original ids at those positions, then 0 padding      |
| masked_lm_weights    | float32 | P      | 1.0 per real prediction, 0.0 for padding             |
| next_sentence_labels | int64   | 1      | 1 when B is a random sentence, 0 when it follows A   |

Records for masks drawn at training time (``--masking=dynamic``) hold the pair unmasked:
``input_ids`` (unmasked), ``input_mask``, ``segment_ids``, ``next_sentence_labels`` as above and,
instead of the three ``masked_lm_*`` features,

| feature              | dtype   | length | meaning                                              |
| -------------------- | ------- | ------ | ---------------------------------------------------- |
| maskable             | int64   | S      | 0 never masked ([CLS], [SEP], padding), 1 the first  |
|                      |         |        | piece of a word, 2 a later ("##") piece of that word |

The input pipeline draws the masked_lm_* features from them (``norbert.training.dynamic_masking``).

Records for pairs drawn at training time too (``--pairing=dynamic``) hold a chunk of a
document each (``norbert.data.chunks``), unsplit and unmasked:

| feature              | dtype   | length | meaning                                              |
| -------------------- | ------- | ------ | ---------------------------------------------------- |
| input_ids            | int64   | S      | the chunk's token ids (no [CLS]/[SEP]), 0 padding    |
| input_mask           | int64   | S      | 1 for real tokens, 0 for padding                     |
| maskable             | int64   | S      | as above, on the chunk's tokens                      |
| sentence_starts      | int64   | S      | 1 on the first token of each sentence, else 0        |
| target_length        | int64   | 1      | the document's target length of a pair, in tokens    |

The input pipeline makes a pair of each chunk as it reads it (``norbert.training.dynamic_pairing``).

Records of the masked-LM-only objective (``--objective=mlm``, ``norbert.data.packing``) use the
first two tables as they are, for one packed sequence ``[CLS] d1.. [SEP] d2.. [SEP]`` rather
than a pair: ``segment_ids`` all 0, ``next_sentence_labels`` 0 (a placeholder: there is no
next-sentence task; training reads the objective from the sidecar), and ``maskable`` 0 on every
``[SEP]``.
"""

import collections
import struct
from typing import Dict, List, Sequence, Tuple

import numpy as np

from norbert.data import tfrecord

INT64 = "int64"
FLOAT32 = "float32"

# name -> (dtype, which length: "seq", "pred" or 1); the order is the reference's.
_SCHEMA = (
    ("input_ids", INT64, "seq"),
    ("input_mask", INT64, "seq"),
    ("segment_ids", INT64, "seq"),
    ("masked_lm_positions", INT64, "pred"),
    ("masked_lm_ids", INT64, "pred"),
    ("masked_lm_weights", FLOAT32, "pred"),
    ("next_sentence_labels", INT64, 1),
)
FEATURE_NAMES = tuple(name for name, _, _ in _SCHEMA)
# Masks drawn at training time: the pair unmasked, and what a masker needs to know of it.
_DYNAMIC_SCHEMA = (
    ("input_ids", INT64, "seq"),
    ("input_mask", INT64, "seq"),
    ("segment_ids", INT64, "seq"),
    ("maskable", INT64, "seq"),
    ("next_sentence_labels", INT64, 1),
)
STATIC, DYNAMIC = "static", "dynamic"
MASKINGS = (STATIC, DYNAMIC)
PAIRINGS = (STATIC, DYNAMIC)  # pairs cut by the builder, or chunks paired at training time
# What a run trains: masked LM and next-sentence prediction on pairs (Google's), or masked LM
# alone on packed sequences (norbert.data.packing).
MLM_NSP, MLM = "mlm_nsp", "mlm"
OBJECTIVES = (MLM_NSP, MLM)
# Pairs drawn at training time: chunks, unsplit and unmasked.
_CHUNK_SCHEMA = (
    ("input_ids", INT64, "seq"),
    ("input_mask", INT64, "seq"),
    ("maskable", INT64, "seq"),
    ("sentence_starts", INT64, "seq"),
    ("target_length", INT64, 1),
)
NOT_MASKABLE, WORD_START, WORD_PIECE = 0, 1, 2  # the values of ``maskable``


def feature_schema(
    max_seq_length: int, max_predictions_per_seq: int, masking: str = STATIC,
    pairing: str = STATIC,
) -> "collections.OrderedDict[str, Tuple[str, int]]":
    """``name -> (dtype, length)`` of every feature, in the order they are written."""
    lengths = {"seq": max_seq_length, "pred": max_predictions_per_seq, 1: 1}
    if pairing == DYNAMIC:
        schema = _CHUNK_SCHEMA
    else:
        schema = _DYNAMIC_SCHEMA if masking == DYNAMIC else _SCHEMA
    return collections.OrderedDict((n, (t, lengths[k])) for n, t, k in schema)


def parse_spec(max_seq_length: int, max_predictions_per_seq: int,
               masking: str = STATIC, pairing: str = STATIC) -> Dict[str, object]:
    """``name -> tf.io.FixedLenFeature`` for ``tf.io.parse_single_example`` (imports TF)."""
    import tensorflow.compat.v1 as tf  # deferred: the data builder never needs TensorFlow

    dtypes = {INT64: tf.int64, FLOAT32: tf.float32}
    schema = feature_schema(max_seq_length, max_predictions_per_seq, masking, pairing)
    return {name: tf.io.FixedLenFeature([length], dtypes[dtype])
            for name, (dtype, length) in schema.items()}


def maskable_marks(tokens: Sequence[int], len_a: int, continuation: bytes) -> bytes:
    """``maskable`` of ``[CLS] a.. [SEP] b.. [SEP]`` (``len_a`` tokens in a), one byte per
    token: ``continuation[id]`` says whether ``id`` is a ``##`` piece. A ``##`` piece that
    opens segment B starts a word of its own (it cannot join a word across the [SEP])."""
    n = len(tokens)
    marks = bytearray(n)
    for start, end in ((1, len_a + 1), (len_a + 2, n - 1)):
        for p in range(start, end):
            marks[p] = WORD_PIECE if p > start and continuation[tokens[p]] else WORD_START
    return bytes(marks)


def candidate_marks(tokens: Sequence[int], candidates: Sequence[int],
                    continuation: bytes) -> bytes:
    """``maskable`` of a packed record (``norbert.data.packing``): 0 but on ``candidates``;
    a ``##`` piece continues a word only when the position before it is a candidate too."""
    marks = bytearray(len(tokens))
    previous = -2
    for p in candidates:
        marks[p] = WORD_PIECE if p == previous + 1 and continuation[tokens[p]] else WORD_START
        previous = p
    return bytes(marks)


def instance_arrays(
    tokens, len_a, masked_positions, masked_labels, is_random_next,
    max_seq_length: int, max_predictions_per_seq: int,
) -> "collections.OrderedDict[str, np.ndarray]":
    """One instance as padded feature arrays (``int64``/``float32``), in schema order."""
    n, m = len(tokens), len(masked_positions)
    if n > max_seq_length or m > max_predictions_per_seq:
        raise ValueError("instance longer than the schema: %d tokens, %d predictions" % (n, m))
    s, p = max_seq_length, max_predictions_per_seq
    out = collections.OrderedDict()
    out["input_ids"] = _padded(tokens, s, np.int64)
    out["input_mask"] = _padded([1] * n, s, np.int64)
    out["segment_ids"] = _padded([0] * (len_a + 2) + [1] * (n - len_a - 2), s, np.int64)
    out["masked_lm_positions"] = _padded(masked_positions, p, np.int64)
    out["masked_lm_ids"] = _padded(masked_labels, p, np.int64)
    out["masked_lm_weights"] = _padded([1.0] * m, p, np.float32)
    out["next_sentence_labels"] = np.array([1 if is_random_next else 0], np.int64)
    return out


def _padded(values, length, dtype) -> np.ndarray:
    out = np.zeros(length, dtype)
    out[: len(values)] = values
    return out


class ExampleEncoder:
    """Instances straight to serialised ``tf.train.Example`` bytes, without TensorFlow.

    The same bytes as ``tfrecord.encode_example`` of ``instance_arrays(...)``, many times
    faster: whatever depends only on lengths is precomputed (input_mask, the weights, the label,
    and the nested headers Features entry > key > Feature > Int64List > packed values for every
    possible payload length), and ids become varints through a lookup table.
    """

    def __init__(self, max_seq_length: int, max_predictions_per_seq: int, vocab_size: int):
        s, p = max_seq_length, max_predictions_per_seq
        self.max_seq_length, self.max_predictions_per_seq = s, p
        self._varint = [tfrecord.varint(i) for i in range(max(vocab_size, s, 128))]
        id_bytes = len(tfrecord.varint(max(vocab_size, s, 1) - 1))  # the longest varint used
        # Header of each variable-length int64 feature, for every payload length it can have.
        self._ids_head = [_int64_header("input_ids", n) for n in range(s * id_bytes + 1)]
        self._pos_head = [_int64_header("masked_lm_positions", n) for n in range(p * id_bytes + 1)]
        self._lab_head = [_int64_header("masked_lm_ids", n) for n in range(p * id_bytes + 1)]
        self._seg_head = _int64_header("segment_ids", s)  # segment ids are 0/1: one byte each
        # Whole features that depend on a length only.
        self._input_mask = [
            tfrecord.encode_example_entry(
                "input_mask", tfrecord.INT64, b"\x01" * n + b"\x00" * (s - n)
            )
            for n in range(s + 1)
        ]
        one = struct.pack("<f", 1.0)
        self._weights = [
            tfrecord.encode_example_entry(
                "masked_lm_weights", tfrecord.FLOAT, one * m + b"\x00" * (4 * (p - m))
            )
            for m in range(p + 1)
        ]
        self._label = [
            tfrecord.encode_example_entry("next_sentence_labels", tfrecord.INT64, bytes((v,)))
            for v in (0, 1)
        ]

    def encode(
        self, tokens: List[int], len_a: int, positions: List[int], labels: List[int],
        is_random_next: bool,
    ) -> bytes:
        """Serialised ``tf.train.Example`` of one instance (see ``instance_arrays``)."""
        s, p = self.max_seq_length, self.max_predictions_per_seq
        n, m = len(tokens), len(positions)
        if n > s or m > p:
            raise ValueError("instance longer than the schema: %d tokens, %d predictions" % (n, m))
        varint = self._varint.__getitem__
        ids = b"".join(map(varint, tokens)) + b"\x00" * (s - n)  # [PAD] = 0: one byte each
        segments = b"\x00" * (len_a + 2) + b"\x01" * (n - len_a - 2) + b"\x00" * (s - n)
        pos = b"".join(map(varint, positions)) + b"\x00" * (p - m)
        lab = b"".join(map(varint, labels)) + b"\x00" * (p - m)
        body = b"".join((
            self._ids_head[len(ids)], ids,
            self._input_mask[n],
            self._seg_head, segments,
            self._pos_head[len(pos)], pos,
            self._lab_head[len(lab)], lab,
            self._weights[m],
            self._label[1 if is_random_next else 0],
        ))
        size = len(body)
        head = varint(size) if size < len(self._varint) else tfrecord.varint(size)
        return b"\x0a" + head + body  # Example.features: field 1, length-delimited

    def encode_packed(self, tokens: List[int], candidates: Sequence[int], positions: List[int],
                      labels: List[int]) -> bytes:
        """A packed record (``norbert.data.packing``): one segment (every segment id 0),
        next-sentence label 0 (a placeholder)."""
        return self.encode(tokens, len(tokens) - 2, positions, labels, False)


def _int64_header(name: str, payload_length: int) -> bytes:
    """The bytes of a Features map entry for an int64 feature up to its packed payload."""
    entry = tfrecord.encode_example_entry(name, tfrecord.INT64, b"\x00" * payload_length)
    if payload_length:
        return entry[:-payload_length]
    return entry  # an empty list: no payload, and no packed field either


class UnmaskedEncoder(ExampleEncoder):
    """Instances of ``--masking=dynamic`` to serialised ``tf.train.Example`` bytes: the pair
    unmasked with its ``maskable`` marks (see the module's second table), no masked_lm_*."""

    def __init__(self, max_seq_length: int, max_predictions_per_seq: int, vocab_size: int,
                 continuation: Sequence[bool]):
        super().__init__(max_seq_length, max_predictions_per_seq, vocab_size)
        self.continuation = bytes(bool(c) for c in continuation)  # id -> 0/1
        self._maskable_head = _int64_header("maskable", max_seq_length)  # 0/1/2: a byte each

    def encode(self, tokens: List[int], len_a: int, positions: List[int], labels: List[int],
               is_random_next: bool) -> bytes:
        """Serialised ``tf.train.Example`` of one unmasked instance (``positions`` and
        ``labels`` are empty: nothing was masked)."""
        s, n = self.max_seq_length, len(tokens)
        if n > s or positions:
            raise ValueError("not an unmasked instance of the schema: %d tokens, %d predictions"
                             % (n, len(positions)))
        marks = maskable_marks(tokens, len_a, self.continuation)
        return self._encode(tokens, len_a, marks, is_random_next)

    def encode_packed(self, tokens: List[int], candidates: Sequence[int], positions: List[int],
                      labels: List[int]) -> bytes:
        """An unmasked packed record: one segment, ``maskable`` 0 on [CLS] and every [SEP]."""
        if positions:
            raise ValueError("not an unmasked record: %d predictions" % len(positions))
        marks = candidate_marks(tokens, candidates, self.continuation)
        return self._encode(tokens, len(tokens) - 2, marks, False)

    def _encode(self, tokens: List[int], len_a: int, marks: bytes, is_random_next: bool) -> bytes:
        s, n = self.max_seq_length, len(tokens)
        ids = b"".join(map(self._varint.__getitem__, tokens)) + b"\x00" * (s - n)
        segments = b"\x00" * (len_a + 2) + b"\x01" * (n - len_a - 2) + b"\x00" * (s - n)
        marks = marks + b"\x00" * (s - n)
        body = b"".join((
            self._ids_head[len(ids)], ids,
            self._input_mask[n],
            self._seg_head, segments,
            self._maskable_head, marks,
            self._label[1 if is_random_next else 0],
        ))
        return b"\x0a" + tfrecord.varint(len(body)) + body
