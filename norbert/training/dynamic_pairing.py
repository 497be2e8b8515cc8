"""Sentence pairs drawn at training time from chunks of documents, with stateless TF ops.

Records for this mode (``--pairing=dynamic``) hold a chunk each: consecutive sentences of one
document, cut where the reference cuts them (``norbert.data.instances``: a target length per
document, sentences gathered until they reach it or the document ends), unsplit and unmasked:
``input_ids`` [S] (the chunk's tokens, no [CLS]/[SEP], 0-padded), ``input_mask``, ``maskable``
(1 a word's first piece, 2 a later piece), ``sentence_starts`` (1 on each sentence's first token)
and ``target_length`` [1] (the document's target). ``pair_batch`` makes a fresh pair of each
chunk every time it is read, by the reference's rules:

1. ``a_end`` = ``randint(1, n - 1)`` of the chunk's ``n`` sentences (1 for a one-sentence
   chunk): segment A is the first ``a_end`` sentences;
2. B is the rest of the chunk, or -- always for a one-sentence chunk, else with probability
   0.5 -- sentences of another chunk of the batch (a uniformly random other row; its start a
   uniformly random sentence of it) until B reaches the target minus A, or that chunk ends
   (the input pipeline passes windows of 256 shuffled chunks of one group as the batch);
3. the pair is truncated to ``S - 3`` tokens as the reference truncates: tokens come off the
   longer segment (B on a tie), each from its front or back with probability 0.5;
4. ``[CLS] A [SEP] B [SEP]``, padded: the unmasked-pair features that ``dynamic_masking``
   masks.

Where this differs from the reference, by design: a random B comes from a chunk of the same
window (shuffled records, so almost always another document), and stops at that chunk's
end rather than running on through its document; the sentences of a chunk that a random B
leaves unused are not put back into the next chunk (the next read splits the chunk afresh).

Every shape is static but the batch's. Legend: ``B`` batch, ``S`` max_seq_length.
"""

import dataclasses

from norbert.errors import NorbertError

# Sub-seeds, one per kind of draw.
_SPLIT, _COIN, _PARTNER, _B_START, _CUT_A, _CUT_B, _SUB_SEEDS = range(7)


@dataclasses.dataclass(frozen=True)
class DynamicPairing:
    """How pairs are made of chunks at training time (the reference's rules)."""

    cls_id: int
    sep_id: int

    def __post_init__(self) -> None:
        for name in ("cls_id", "sep_id"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise NorbertError("%s must be a token id (got %r): the vocab needs [CLS] and "
                                   "[SEP]" % (name, value))


def pair_batch(features, config: DynamicPairing, seed):
    """A batch of chunks as a batch of unmasked sentence pairs.

    ``features``: int32 ``input_ids``, ``input_mask``, ``maskable``, ``sentence_starts``
    [B, S] and ``target_length`` [B, 1]. ``seed``: int32/int64 [2] for the stateless random
    ops. Returns ``input_ids``, ``input_mask``, ``segment_ids``, ``maskable`` [B, S] and
    ``next_sentence_labels`` [B, 1] (1: B is from another chunk), all int32.
    """
    import tensorflow.compat.v1 as tf

    ids = features["input_ids"]  # [B, S]
    if ids.shape.ndims != 2 or tf.compat.dimension_value(ids.shape[1]) is None:
        raise ValueError("input_ids needs a static [B, S] shape, got %s" % ids.shape)
    s = tf.compat.dimension_value(ids.shape[1])
    max_tokens = s - 3  # room for [CLS] A [SEP] B [SEP]
    batch = tf.shape(ids)[0]
    draws = _Draws(tf, seed, batch)
    length, n, bounds, target = _chunks(tf, features, s)  # [B], [B], [B, S + 1], [B]

    # 1. Segment A: the first a_end sentences, tokens [0, len_a).
    a_end = draws.randint(_SPLIT, tf.ones_like(n), tf.maximum(n - 1, 1))  # [B]
    len_a = tf.gather(bounds, a_end, batch_dims=1)  # [B]
    # 2. Segment B: where it is taken from, and how long it is.
    is_random, row, b_row, b_start, len_b = _segment_b(tf, draws, n, bounds, length, len_a,
                                                       target, s)  # [B] each
    # 3. Truncation to max_tokens, and where each segment then begins in its chunk.
    slots, a_start, b_start, len_a, len_b = _truncate(tf, draws, len_a, len_b, b_start,
                                                      max_tokens, s)  # [1, S], [B] x4
    # 4. [CLS] A [SEP] B [SEP] and padding.
    pair_ids, real, segment, marks = _assemble(
        tf, features, config, slots, row, (a_start, len_a), (b_row, b_start, len_b))  # [B, S]

    def fixed(t, width):
        t.set_shape(ids.shape[:1].concatenate([width]))
        return t

    return {
        "input_ids": fixed(pair_ids, s),
        "input_mask": fixed(tf.cast(real, tf.int32), s),
        "segment_ids": fixed(segment, s),
        "maskable": fixed(marks, s),
        "next_sentence_labels": fixed(tf.cast(is_random, tf.int32)[:, None], 1),
    }


class _Draws:
    """The batch's random draws: one independent sub-seed per kind of draw, from ``seed``."""

    def __init__(self, tf, seed, batch):
        self.tf = tf
        self.batch = batch  # B, a scalar tensor
        self.seeds = tf.random.stateless_uniform([_SUB_SEEDS, 2], seed=seed, minval=-2 ** 31,
                                                 maxval=2 ** 31 - 1, dtype=tf.int32)  # [7, 2]

    def uniform(self, kind, shape):
        """``shape`` floats in [0, 1)."""
        return self.tf.random.stateless_uniform(shape, seed=self.seeds[kind])

    def randint(self, kind, low, high):
        """[B] uniform integers in [low, high] (each [B]), high >= low."""
        tf = self.tf
        u = self.uniform(kind, [self.batch])
        return low + tf.minimum(tf.cast(u * tf.cast(high - low + 1, tf.float32), tf.int32),
                                high - low)


def _chunks(tf, features, s):
    """The chunks' tokens ``length`` [B], sentences ``n`` [B], sentence ``bounds`` [B, S + 1]
    (see ``_sentence_bounds``) and ``target`` length [B]."""
    length = tf.reduce_sum(tf.cast(features["input_mask"], tf.int32), axis=1)  # [B] tokens
    starts = tf.cast(features["sentence_starts"], tf.int32) * tf.cast(
        features["input_mask"], tf.int32)  # [B, S]
    n = tf.reduce_sum(starts, axis=1)  # [B] sentences
    bounds = _sentence_bounds(tf, starts, n, length, s)  # [B, S + 1]: sentence k is [b_k, b_k+1)
    target = tf.cast(features["target_length"][:, 0], tf.int32)  # [B]
    return length, n, bounds, target


def _segment_b(tf, draws, n, bounds, length, len_a, target, s):
    """Step 2: segment B, the rest of the chunk, or sentences of another row's chunk.

    Returns, each [B]: ``is_random`` (B from another chunk), ``row`` (each row's index),
    ``b_row`` (the chunk B is taken from), ``b_start`` (its first token there), ``len_b``.
    """
    batch = draws.batch
    is_random = tf.equal(n, 1) | (draws.uniform(_COIN, [batch]) < 0.5)  # [B]
    row = tf.range(batch)
    other = tf.maximum(batch - 1, 1)  # the other rows (a batch of one pairs with itself)
    partner = (row + 1 + draws.randint(_PARTNER, tf.zeros_like(row), other - 1)) % batch  # [B]
    p_n = tf.gather(n, partner)  # [B]
    p_bounds = tf.gather(bounds, partner)  # [B, S + 1]
    first = draws.randint(_B_START, tf.zeros_like(p_n), tf.maximum(p_n - 1, 0))  # [B]
    b_from = tf.gather(p_bounds, first, batch_dims=1)  # [B]
    # The first sentence k >= first at whose end B holds target - len_a tokens, else the last.
    k = tf.range(s)[None, :]  # [1, S]
    reached = (p_bounds[:, 1:] - b_from[:, None]) >= (target - len_a)[:, None]  # [B, S]
    ok = (k >= first[:, None]) & (k < p_n[:, None]) & reached
    last = tf.reduce_min(tf.where_v2(ok, k, (p_n - 1)[:, None]), axis=1)  # [B]
    random_len = tf.gather(p_bounds, last + 1, batch_dims=1) - b_from  # [B]
    b_row = tf.where_v2(is_random, partner, row)  # [B]
    b_start = tf.where_v2(is_random, b_from, len_a)  # [B]
    len_b = tf.where_v2(is_random, random_len, length - len_a)  # [B]
    return is_random, row, b_row, b_start, len_b


def _truncate(tf, draws, len_a, len_b, b_start, max_tokens, s):
    """Step 3: the pair cut to ``max_tokens``, as the reference cuts it.

    The longer loses tokens down to the shorter's length, then they take turns, B first; how
    many of each segment's come off its front is binomial(cut, 0.5). Returns ``slots`` [1, S]
    (0 .. S - 1), and [B] each: ``a_start`` (A's first token in its chunk), ``b_start``,
    ``len_a``, ``len_b``, after the cut.
    """
    excess = tf.maximum(len_a + len_b - max_tokens, 0)  # [B]
    gap = tf.abs(len_a - len_b)
    even = tf.maximum(excess - gap, 0)  # removed in turns once the two are level
    alone = excess - even  # removed from the longer alone
    a_longer = len_a > len_b
    cut_a = tf.where_v2(a_longer, alone, 0) + even // 2
    cut_b = tf.where_v2(a_longer, 0, alone) + (even + 1) // 2
    slots = tf.range(s)[None, :]  # [1, S]

    def fronts(kind, cut):
        heads = draws.uniform(kind, [draws.batch, s]) < 0.5  # [B, S]
        return tf.reduce_sum(tf.cast(heads & (slots < cut[:, None]), tf.int32), axis=1)

    a_start = fronts(_CUT_A, cut_a)  # [B]: A begins at token a_start of its own chunk
    b_start = b_start + fronts(_CUT_B, cut_b)
    return slots, a_start, b_start, len_a - cut_a, len_b - cut_b


def _assemble(tf, features, config: DynamicPairing, slots, row, segment_a, segment_b):
    """Step 4: ``[CLS] A [SEP] B [SEP]`` and padding, from A = (``a_start``, ``len_a``) of each
    ``row`` and B = (``b_row``, ``b_start``, ``len_b``), each [B].

    Returns ``pair_ids`` [B, S], ``real`` [B, S] bool (not padding), ``segment`` [B, S] and the
    word marks [B, S] that come with the tokens.
    """
    (a_start, len_a), (b_row, b_start, len_b) = segment_a, segment_b
    s = tf.compat.dimension_value(slots.shape[1])
    # For each output slot, the chunk row and token it comes from.
    j = slots  # [1, S]
    in_a = (j >= 1) & (j <= len_a[:, None])  # [B, S]
    b_first = len_a[:, None] + 2
    in_b = (j >= b_first) & (j < b_first + len_b[:, None])
    sep = tf.equal(j, len_a[:, None] + 1) | tf.equal(j, b_first + len_b[:, None])
    src_row = tf.where_v2(in_b, b_row[:, None], row[:, None])  # [B, S]
    src_pos = tf.where_v2(in_a, a_start[:, None] + j - 1,
                          tf.where_v2(in_b, b_start[:, None] + j - b_first, 0))
    src = tf.stack([src_row, tf.clip_by_value(src_pos, 0, s - 1)], axis=-1)  # [B, S, 2]
    token = in_a | in_b
    pair_ids = tf.where_v2(token, tf.gather_nd(tf.cast(features["input_ids"], tf.int32), src),
                           tf.where_v2(tf.equal(j, 0), config.cls_id,
                                       tf.where_v2(sep, config.sep_id, 0)))
    marks = tf.where_v2(token, tf.gather_nd(tf.cast(features["maskable"], tf.int32), src), 0)
    # A "##" piece that opens a segment starts a word there (as the static builder marks it).
    opens = tf.equal(j, 1) | tf.equal(j, b_first)
    marks = tf.where_v2(opens & (marks > 1), 1, marks)
    real = tf.equal(j, 0) | token | sep
    segment = tf.cast(real & (j >= b_first), tf.int32)
    return pair_ids, real, segment, marks


def _sentence_bounds(tf, starts, n, length, s):
    """[B, S + 1]: the first token of each sentence k < n, then ``length`` (so sentence k is
    tokens [bounds[k], bounds[k + 1]))."""
    number = tf.cumsum(starts, axis=1) - 1  # [B, S] the sentence of each token
    index = tf.where_v2(tf.equal(starts, 1), number, s)  # starts at their number, else S
    batch = tf.shape(starts)[0]
    offsets = tf.range(batch)[:, None] * (s + 1)
    first = tf.math.unsorted_segment_sum(
        tf.reshape(tf.range(s)[None, :] * starts, [-1]), tf.reshape(index + offsets, [-1]),
        batch * (s + 1))
    first = tf.reshape(first, [-1, s + 1])  # [B, S + 1]
    k = tf.range(s + 1)[None, :]
    return tf.where_v2(k < n[:, None], first, length[:, None])
