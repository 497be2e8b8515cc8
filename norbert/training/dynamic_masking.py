"""Masked-LM masks drawn at training time, in the input pipeline, with stateless TF ops.

Records for this mode hold the unmasked pair (``input_ids``, ``input_mask``, ``segment_ids``,
``next_sentence_labels``) and ``maskable`` [S]: 0 where a token is never masked ([CLS], [SEP],
padding), 1 on the first piece of a word, 2 on a later (``##``) piece. ``mask_batch`` draws a
fresh selection for every batch: the same distribution as the static builder's
(``norbert.data.masking``), not its draws.

1. ``num_to_predict = min(P, max(1, round(n * masked_lm_prob)))``, ``n`` the real tokens
   (specials included, as the reference counts them; ``tf.round`` rounds half to even, as
   Python's ``round`` does);
2. the candidates (``maskable != 0``) are grouped into words: every candidate is its own word,
   or with ``whole_word`` a 2 joins the word of the last 1 before it (across a [SEP], as in the
   reference; a 2 with no 1 before it starts a word);
3. the words get a uniformly random order (an independent key each, sorted), and are taken in
   that order while they fit the budget; a word that would overshoot it is skipped and later,
   shorter ones are still tried (the reference's greedy);
4. each chosen position becomes [MASK] (80%), stays (10%) or becomes a uniformly random id
   (10%); with ``per_word`` one choice per word.

The greedy of step 3 is sequential, but in rounds, not word by word: a word longer than the
budget left can never fit later either (the budget only shrinks), so each round takes, over the
words that could still fit, the longest run that does, and skips the first that does not. Each
round takes at least one word, and after the first the budget left is below the longest word's
length: a handful of [B, S]-wide rounds per batch, never a loop per example or per word.
Without whole words every word is one piece and the greedy is the first ``budget`` in order.

Every shape is static but the batch's: TPU hosts get the fixed [B, S] and [B, P] they need.
Legend: ``B`` batch, ``S`` max_seq_length, ``P`` max_predictions_per_seq.
"""

import dataclasses

from norbert.data import defaults
from norbert.data.masking import KEEP_SHARE, MASK_SHARE, MaskingConfig
from norbert.errors import NorbertError

# Sub-seeds, one per kind of draw: keys that order the words, the 80/10/10 fates, random ids.
_ORDER, _FATE, _RANDOM_ID, _SUB_SEEDS = 0, 1, 2, 3


@dataclasses.dataclass(frozen=True)
class DynamicMasking:
    """How masks are drawn at training time (the static builder's rules)."""

    # P: the length of the masked_lm_* outputs, and the cap on predictions per sequence.
    max_predictions_per_seq: int
    # Random replacements are uniform over [0, vocab_size).
    vocab_size: int
    # The [MASK] token's id.
    mask_id: int
    # Share of each sequence's tokens (specials included, as in the reference) to predict.
    masked_lm_prob: float = defaults.MASKED_LM_PROB
    # Mask all pieces of a word together (a 2 in ``maskable`` joins the 1 before it).
    whole_word: bool = False
    # With whole_word: one [MASK]/keep/random choice per word rather than per piece (the
    # static builder's --whole_word_mask_per_word, fixing the reference's bug).
    per_word: bool = False

    def __post_init__(self) -> None:
        # The flags it shares with the static builder are checked, and worded, as there.
        MaskingConfig(self.masked_lm_prob, self.max_predictions_per_seq, self.whole_word,
                      self.per_word)
        if not isinstance(self.vocab_size, int) or self.vocab_size <= 0:
            raise NorbertError("vocab_size must be a positive number of tokens (got %r): give the "
                               "vocab.txt the records were built with" % (self.vocab_size,))
        if not isinstance(self.mask_id, int) or not 0 <= self.mask_id < self.vocab_size:
            raise NorbertError("mask_id %r is not an id of the %d-token vocab: the vocab needs a "
                               "[MASK] token" % (self.mask_id, self.vocab_size))


def mask_batch(features, config: DynamicMasking, seed):
    """A batch of unmasked pairs, masked: the features a pretraining model_fn takes.

    ``features``: int32 ``input_ids``, ``input_mask``, ``segment_ids``, ``maskable`` [B, S] and
    ``next_sentence_labels`` [B, 1] (other keys pass through). ``seed``: int32/int64 [2], for the
    stateless random ops: the same seed and batch give the same masks, bit for bit.

    Returns a new dict without ``maskable``: ``input_ids`` [B, S] with the chosen positions
    replaced, ``masked_lm_positions`` [B, P] int32 (ascending, 0-padded), ``masked_lm_ids``
    [B, P] int32 (the original ids, 0-padded), ``masked_lm_weights`` [B, P] float32 (1.0 real,
    0.0 padding); the rest unchanged.
    """
    import tensorflow.compat.v1 as tf

    ids = features["input_ids"]  # [B, S]
    maskable = tf.cast(features["maskable"], tf.int32)  # [B, S]
    p = config.max_predictions_per_seq
    if ids.shape.ndims != 2 or tf.compat.dimension_value(ids.shape[1]) is None:
        raise ValueError("input_ids needs a static [B, S] shape, got %s" % ids.shape)
    s = tf.compat.dimension_value(ids.shape[1])
    shape = tf.shape(ids)  # [2]: B may be known only when run

    # Independent sub-seeds from the one given: a seed's neighbours (say [base, step] and
    # [base, step + 1]) then share no draws, as seed + k would make them.
    seeds = tf.random.stateless_uniform([_SUB_SEEDS, 2], seed=seed, minval=-2 ** 31,
                                        maxval=2 ** 31 - 1, dtype=tf.int32)  # [3, 2]

    budget = _budget(features["input_mask"], config)  # [B]
    candidate, cand_int, word, num_words = _words(maskable, config.whole_word)  # [B, S] x3, [B]
    slot = tf.range(s)[None, :]  # [1, S]
    chosen = _chosen(seeds, shape, slot, candidate, cand_int, word, num_words, budget,
                     config)  # [B, S]
    new_ids = _replaced(ids, chosen, word, seeds, shape, config)  # [B, S]
    positions, labels, real = _targets(ids, chosen, slot, p)  # [B, P] x3

    out = {k: v for k, v in features.items() if k != "maskable"}
    batch = ids.shape[:1]
    out["input_ids"] = _with_shape(new_ids, batch.concatenate([s]))
    out["masked_lm_positions"] = _with_shape(positions, batch.concatenate([p]))
    out["masked_lm_ids"] = _with_shape(tf.cast(labels, tf.int32), batch.concatenate([p]))
    out["masked_lm_weights"] = _with_shape(tf.cast(real, tf.float32), batch.concatenate([p]))
    return out


def _budget(input_mask, config: DynamicMasking):
    """Step 1, [B]: positions to predict, ``min(P, max(1, round(n * prob)))`` in float64, as
    Python computes it (``input_mask`` [B, S])."""
    import tensorflow.compat.v1 as tf

    n = tf.reduce_sum(tf.cast(input_mask, tf.float64), axis=1)  # [B]
    budget = tf.cast(tf.round(n * config.masked_lm_prob), tf.int32)  # [B]
    return tf.minimum(config.max_predictions_per_seq, tf.maximum(1, budget))  # [B]


def _words(maskable, whole_word):
    """Step 2: the candidates of ``maskable`` [B, S] grouped into words.

    A word starts on every candidate, or (whole words) on a 1, or on a 2 with no candidate
    before it (the reference opens a word for a "##" piece only when there is none yet).
    Returns ``candidate`` [B, S] bool, the same as int32, ``word`` [B, S] (the word of each
    position, 0 off the candidates) and ``num_words`` [B].
    """
    import tensorflow.compat.v1 as tf

    candidate = tf.not_equal(maskable, 0)  # [B, S]
    cand_int = tf.cast(candidate, tf.int32)
    if whole_word:
        before = tf.cumsum(cand_int, axis=1, exclusive=True)  # [B, S] candidates before
        start = candidate & (tf.equal(maskable, 1) | tf.equal(before, 0))
    else:
        start = candidate
    word = tf.cumsum(tf.cast(start, tf.int32), axis=1) - 1  # [B, S] word of each position
    word = tf.maximum(word, 0) * cand_int  # [B, S] 0 off the candidates (masked out later)
    num_words = tf.reduce_sum(tf.cast(start, tf.int32), axis=1)  # [B]
    return candidate, cand_int, word, num_words


def _chosen(seeds, shape, slot, candidate, cand_int, word, num_words, budget,
            config: DynamicMasking):
    """Step 3, [B, S] bool: the positions to predict, whole words in a random order taken
    while they fit the ``budget`` [B] (``seeds`` [3, 2], ``shape`` [2], ``slot`` [1, S])."""
    import tensorflow.compat.v1 as tf

    s = tf.compat.dimension_value(slot.shape[1])
    p = config.max_predictions_per_seq
    # A random order over the words: a key each; the slots past the last word sort last.
    is_word = slot < num_words[:, None]  # [B, S]
    keys = tf.random.stateless_uniform(shape, seed=seeds[_ORDER], minval=0,
                                       maxval=2 ** 31 - 1, dtype=tf.int32)  # [B, S]
    keys = tf.where_v2(is_word, keys, -1)  # 31-bit keys: ties (lower slot first) too rare to tell
    if config.whole_word:
        order = tf.nn.top_k(keys, k=s).indices  # [B, S] word ids, in random order
        length = _scatter_rows(cand_int, word, s)  # [B, S] pieces per word, 0 past the last
        # Lengths in that order; the non-words get one that never fits.
        ordered = tf.where_v2(tf.gather(is_word, order, batch_dims=1),
                              tf.gather(length, order, batch_dims=1), p + 1)  # [B, S]
        taken = _greedy(ordered, budget, p)  # [B, S] bool, in word order
    else:
        # One piece per word: the first ``budget`` words in order, so only P need ordering.
        k = min(p, s)
        order = tf.nn.top_k(keys, k=k).indices  # [B, K]
        taken = (tf.range(k)[None, :] < budget[:, None]) & tf.gather(is_word, order, batch_dims=1)
    chosen_word = _scatter_rows(tf.cast(taken, tf.int32), order, s)  # [B, S] by word id
    return candidate & (tf.gather(chosen_word, word, batch_dims=1) > 0)  # [B, S] by position


def _replaced(ids, chosen, word, seeds, shape, config: DynamicMasking):
    """Step 4, [B, S]: ``ids`` with each ``chosen`` position made [MASK] (80%), kept (10%) or
    a random id (10%); with ``per_word`` one draw per ``word``."""
    import tensorflow.compat.v1 as tf

    # Fates: [MASK] below 0.8, kept below 0.9, else a random id; per word or per piece.
    fate = tf.random.stateless_uniform(shape, seed=seeds[_FATE])  # [B, S] in [0, 1)
    if config.per_word:
        fate = tf.gather(fate, word, batch_dims=1)  # the word's draw on each of its pieces
    random_ids = tf.random.stateless_uniform(shape, seed=seeds[_RANDOM_ID], minval=0,
                                             maxval=config.vocab_size, dtype=tf.int32)
    # One draw against the absolute shares (norbert.data.masking's): [MASK], kept, random id.
    masked = tf.where_v2(fate < MASK_SHARE, config.mask_id,
                         tf.where_v2(fate < MASK_SHARE + KEEP_SHARE, ids,
                                     tf.cast(random_ids, ids.dtype)))
    return tf.where_v2(chosen, tf.cast(masked, ids.dtype), ids)  # [B, S]


def _targets(ids, chosen, slot, p):
    """The masked-LM targets of the ``chosen`` [B, S] positions: ``positions`` [B, P]
    (ascending, 0-padded), their original ``ids`` [B, P] (0-padded) and ``real`` [B, P] bool.

    Each chosen position goes to its rank among them; the others to an extra column P,
    dropped. At most P are chosen (budget <= P), so none is cut off.
    """
    import tensorflow.compat.v1 as tf

    chosen_int = tf.cast(chosen, tf.int32)
    rank = tf.where_v2(chosen, tf.cumsum(chosen_int, axis=1, exclusive=True), p)  # [B, S]
    positions = _scatter_rows(chosen_int * slot, rank, p + 1)[:, :p]  # [B, P]
    real = tf.range(p)[None, :] < tf.reduce_sum(chosen_int, axis=1)[:, None]  # [B, P]
    labels = tf.where_v2(real, tf.gather(ids, positions, batch_dims=1), 0)  # [B, P]
    return positions, labels, real


def _greedy(lengths, budget, p):
    """[B, S] bool: which words (``lengths`` [B, S], in the order tried) the greedy takes.

    Word by word it would take each word that fits the budget left and skip the others. In
    rounds: the words still ahead that fit the budget left (no other can fit later: the budget
    only shrinks) are taken up to the first whose running total overshoots; that one is
    skipped, and the next round starts after it.
    """
    import tensorflow.compat.v1 as tf

    s = tf.compat.dimension_value(lengths.shape[1])
    slot = tf.range(s)[None, :]  # [1, S]

    def round_(taken, left, start):
        # taken [B, S] bool; left [B] budget left; start [B] first word not yet decided.
        fits = (slot >= start[:, None]) & (lengths <= left[:, None])  # [B, S]
        total = tf.cumsum(tf.where_v2(fits, lengths, 0), axis=1)  # [B, S] running total
        take = fits & (total <= left[:, None])  # a prefix of the words that fit
        over = tf.reduce_min(tf.where_v2(fits & (total > left[:, None]), slot, s), axis=1)
        left = left - tf.reduce_sum(tf.where_v2(take, lengths, 0), axis=1)
        return taken | take, left, over + 1  # [B]: past the skipped word (S + 1: done)

    def more(taken, left, start):
        return tf.reduce_any(start <= s)

    taken = tf.zeros_like(lengths, dtype=tf.bool)
    start = tf.zeros_like(budget)
    # Each round but an example's last takes a word, so at most budget + 1 <= P + 1 rounds.
    taken, _, _ = tf.while_loop(more, round_, (taken, budget, start), maximum_iterations=p + 1)
    return taken


def _scatter_rows(values, index, width):
    """[B, width]: ``out[b, w]``, the sum of ``values[b, j]`` over the ``j`` where
    ``index[b, j] == w`` (``values``, ``index`` [B, K]; every index in [0, width))."""
    import tensorflow.compat.v1 as tf

    batch = tf.shape(index)[0]
    rows = tf.range(batch)[:, None] * width  # [B, 1] each row's offset
    flat = tf.math.unsorted_segment_sum(tf.reshape(values, [-1]), tf.reshape(index + rows, [-1]),
                                        batch * width)  # [B * width]
    return tf.reshape(flat, [-1, width])


def _with_shape(t, shape):
    """``t`` with the static shape it has when run (lost through reshapes and loops)."""
    t.set_shape(shape)
    return t
