"""Length buckets (``--length_buckets``): batches cut to the length their examples need.

Records are padded to ``--max_seq_length``; the model's cost is per position, so padding costs
what real tokens cost. With buckets, each batch is cut to the shortest bucket boundary that
holds its longest example: the real tokens, masked positions, segment ids and next-sentence
labels stay as they were, only padding goes (the attention over padding is zero either way,
so each example's outputs are the full-length batch's). Its masked-LM predictions are padded
too, to ``--max_predictions_per_seq`` (weight 0), and each costs the output layer over the
whole vocabulary: they are cut as well, to the fewest of ``prediction_sizes`` that holds the
batch's last real one (``cut``), so that no padded prediction is scored beyond those.

While training, examples are first grouped by length (``grouped``): the stream is read a
window of at least ``WINDOW_EXAMPLES`` examples (and ``WINDOW_BATCHES`` batches) at a time,
each window sorted by real length (stable: ties
keep the stream's order) and cut into batches, which come out in an order drawn from (the
run's seed, the window's number). Every example of a window is in exactly one of its batches,
so the examples trained by the end of each window are exactly those of the stream without
buckets, none lost in a bucket's remainder. The order does not depend on the worker: each
worker's windows come out in the same order of short and long batches, so workers mostly want
the same length at the same step, and the loop makes them agree exactly (``agreed_length``).

Evaluation reads its batches as they are and only cuts them: the same batches, so the same
metrics (Google's mean ``loss`` over batches included).

TPUEstimator feeds its cores through an infeed of one fixed shape, so there a batch is not cut:
it keeps ``--max_seq_length`` and carries its bucket's number (``tagged``), and the model_fn
runs one branch per bucket (``switch``), each with the static shape [B, L] of its bucket (its
predictions not cut: [B, P]): XLA
compiles every branch once, in the one program, and only the batch's branch runs. A step lasts
as long as its slowest core, and a host's cores take its consecutive batches at one step, so
there a window's batches come out in runs of ``TPU_RUN`` neighbours in length.

Boundaries: ``auto`` is 8 equal steps up to ``--max_seq_length`` (64, 128, ..., 512 at 512;
16, 32, ..., 128 at 128), so that at most 8 shapes are ever compiled (XLA compiles each once);
``none`` is today's one fixed shape; a list such as ``64,128,256`` gets ``--max_seq_length``
added as its last bucket.
"""

from typing import Callable, Dict, Tuple

from norbert.errors import NorbertError

AUTO = "auto"
NONE = "none"
# Buckets of auto: at most this many, equal steps up to --max_seq_length (multiples of 8).
AUTO_BUCKETS = 8
# Examples grouped at a time while training, at least: the more, the fewer batches straddle
# two buckets (at most one per boundary per window), so the less padding is computed (at
# batch 8, a window of 64 examples left most short ones beside long ones). The window is part
# of the data position, so it is bounded: at most this many examples or WINDOW_BATCHES batches.
WINDOW_EXAMPLES = 1024
WINDOW_BATCHES = 8
# The features of one position each ([B, S]), cut to the batch's bucket.
TOKEN_FEATURES = ("input_ids", "input_mask", "segment_ids")
# The features of one masked-LM prediction each ([B, P]), cut to the fewest of
# prediction_sizes(P) that holds the batch's last real one (weight > 0); every other feature
# keeps its shape.
PREDICTION_FEATURES = ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights")
# Sizes predictions are cut to: at most this many equal steps (of at least
# PREDICTION_STEP_MIN) up to --max_predictions_per_seq (4, 8, ..., 20 at 20; 10, 20, ..., 76
# at 76). Predictions follow length (15% of the real tokens), so a batch's length bucket mostly
# goes with one size: the shapes run stay about the buckets', at most their product.
PREDICTION_SIZES = 8
PREDICTION_STEP_MIN = 4
# TPUEstimator's feature of a batch's bucket (``tagged``): int32 [B], every row the number of
# the batch's bucket among the boundaries.
BUCKET = "length_bucket"
# TPUEstimator: a window's batches (sorted by length) come out in runs of this many neighbours,
# so that a host's cores, which take its consecutive batches at one step, get batches of about
# one length. 8: the cores of a TPU v2/v3 host, a multiple of the 4 of a v4 or v5e host.
TPU_RUN = 8

Boundaries = Tuple[int, ...]  # ascending, the last one --max_seq_length; (): no buckets


def parse(spec: str, max_seq_length: int, flag: str = "--length_buckets") -> Boundaries:
    """The boundaries ``spec`` names: ``auto``, ``none`` (()) or ``64,128,...``."""
    text = (spec or "").strip().lower()
    if text == NONE:
        return ()
    if text == AUTO:
        step = max(8, max_seq_length // AUTO_BUCKETS // 8 * 8)
        return tuple(range(step, max_seq_length, step)) + (max_seq_length,)
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise NorbertError("%s=%s: use auto, none or ascending lengths such as 64,128,256"
                           % (flag, spec))
    if any(b <= a for a, b in zip(values, values[1:])) or values[0] < 1:
        raise NorbertError("%s=%s: the lengths must be positive and ascending, such as "
                           "64,128,256" % (flag, spec))
    if values[-1] > max_seq_length:
        raise NorbertError("%s=%s: %d is longer than --max_seq_length=%d: drop it (the records "
                           "hold no more)" % (flag, spec, values[-1], max_seq_length))
    return tuple(values) if values[-1] == max_seq_length else tuple(values) + (max_seq_length,)


def prediction_sizes(max_predictions: int) -> Boundaries:
    """The sizes a batch's masked-LM predictions are cut to (``PREDICTION_SIZES``), ascending,
    the last one ``max_predictions``."""
    step = max(PREDICTION_STEP_MIN, -(-max_predictions // PREDICTION_SIZES))
    return tuple(range(step, max_predictions, step)) + (max_predictions,)


def describe(boundaries: Boundaries, max_predictions: int = 0) -> str:
    """The run plan's words for the boundaries (and, given ``max_predictions``, the sizes
    predictions are cut to)."""
    if len(boundaries) <= 1:
        return "none: every batch at its full length"
    words = ("batches cut to the shortest of %s that holds their longest example"
             % ",".join(str(b) for b in boundaries))
    sizes = prediction_sizes(max_predictions) if max_predictions else ()
    if len(sizes) > 1:
        words += (", their masked-LM predictions to the fewest of %s that holds the last real "
                  "one" % ",".join(str(n) for n in sizes))
    return words


def window_batches(batch_size: int) -> int:
    """Batches in a grouping window: ``WINDOW_BATCHES``, or more to hold ``WINDOW_EXAMPLES``
    examples (128 batches of 8, 8 of 128 and up)."""
    return max(WINDOW_BATCHES, -(-WINDOW_EXAMPLES // batch_size))


def grouped(examples, batch_size: int, seed, batches_per_window: int = 0, together: int = 1):
    """Batches ``[batch_size, ...]`` of ``examples`` (a dataset of single examples, each
    ``input_mask`` [S]), grouped by real length a window at a time (see the module's text).
    ``seed``: int64 [2] tensor function of the window's number, the same on every worker;
    ``batches_per_window``: 0 for ``window_batches(batch_size)``; ``together``: the batches
    come out in runs of this many neighbours in length (the window rounded up to hold whole
    runs; 1: the batches' order drawn one by one)."""
    import tensorflow.compat.v1 as tf

    window_batches_ = batches_per_window or window_batches(batch_size)
    window_batches_ = -(-window_batches_ // together) * together
    runs = window_batches_ // together
    window = batch_size * window_batches_

    # Plain TF ops, traced as written: autograph has nothing to convert.
    @tf.autograph.experimental.do_not_convert
    def sort(number, batch):
        length = tf.reduce_sum(tf.cast(batch["input_mask"], tf.int32), axis=1)  # [W]
        order = tf.argsort(length, stable=True)  # [W], shortest first
        draws = tf.random.stateless_uniform([runs], seed=seed(number))
        first = tf.argsort(draws) * together  # [K / T]: the order the runs come out in
        # [K]: the order the window's batches come out in, each run's T in a row
        batches = tf.reshape(first[:, None] + tf.range(together)[None, :], [-1])

        def arrange(value):  # [W, ...] -> [K, B, ...]
            value = tf.gather(value, order)
            shape = value.shape.as_list()[1:]
            return tf.gather(tf.reshape(value, [window_batches_, batch_size] + shape), batches)

        return {name: arrange(value) for name, value in batch.items()}

    d = examples.batch(window, drop_remainder=True).enumerate()
    return d.map(sort).unbatch()


def cut(batch: Dict[str, object], boundaries: Boundaries) -> Dict[str, object]:
    """``batch`` with its token features cut to its bucket: the shortest boundary that holds
    its longest example ([B, S] -> [B, L]); masked positions lie in the real tokens. Its
    prediction features (when their size P is static) cut to the fewest of
    ``prediction_sizes(P)`` that holds its last real prediction ([B, P] -> [B, M]): what is cut
    is padding of weight 0. Every other feature stays as it is."""
    import tensorflow.compat.v1 as tf

    if len(boundaries) <= 1:
        return batch
    length = tf.constant(boundaries, tf.int32)[_bucket(batch, boundaries)]
    out = dict(batch)
    for name in TOKEN_FEATURES:
        if name in batch:
            out[name] = batch[name][:, :length]  # [B, L]
    if "masked_lm_weights" not in batch or batch["masked_lm_weights"].shape[1] is None:
        return out
    sizes = prediction_sizes(int(batch["masked_lm_weights"].shape[1]))
    weights = batch["masked_lm_weights"]  # [B, P]: 1.0 real, 0.0 padding
    # [B, P] -> []: one past the last real prediction of any example (not assumed a prefix)
    needed = tf.reduce_max(tf.cast(weights > 0, tf.int32) * tf.range(1, sizes[-1] + 1)[None])
    size = tf.constant(sizes, tf.int32)[_fewest(sizes, needed)]
    for name in PREDICTION_FEATURES:
        if name in batch:
            out[name] = batch[name][:, :size]  # [B, M]
    return out


def _bucket(batch: Dict[str, object], boundaries: Boundaries):
    """int32 []: the number of ``batch``'s bucket, the shortest that holds its longest example."""
    import tensorflow.compat.v1 as tf

    return _fewest(boundaries, tf.reduce_max(tf.reduce_sum(tf.cast(batch["input_mask"],
                                                                   tf.int32), axis=1)))


def _fewest(sizes: Boundaries, needed):
    """int32 []: the number of the first of ``sizes`` (ascending) at least ``needed`` ([])."""
    import tensorflow.compat.v1 as tf

    edges = tf.constant(sizes, tf.int32)  # [N]
    return tf.searchsorted(edges, tf.reshape(needed, [1]), side="left")[0]


def tagged(batch: Dict[str, object], boundaries: Boundaries) -> Dict[str, object]:
    """``batch`` at its full length, with ``BUCKET`` [B]: its bucket's number on every row
    (TPUEstimator: a batch dimension on every feature, for the infeed to split over cores)."""
    import tensorflow.compat.v1 as tf

    out = dict(batch)
    # [B], B static where the batch's is: a TPU's infeed takes fully defined shapes only.
    out[BUCKET] = tf.zeros_like(batch["input_mask"][:, 0], tf.int32) + tf.cast(
        _bucket(batch, boundaries), tf.int32)
    return out


def switch(features: Dict[str, object], boundaries: Boundaries, branch: Callable):
    """``branch(features)`` with the token features cut to the bucket that ``features[BUCKET]``
    names (``tagged``), ``BUCKET`` left out: one branch per bucket, each built with the static
    shape [B, L] of its bucket, of which only the batch's runs (``tf.switch_case``).

    ``branch`` returns a structure of tensors (dicts, lists, tuples), the same structure,
    dtypes and shapes in every bucket; so does ``switch``. It builds the model once per
    bucket: the first creates the variables and the others reuse them (``tf.AUTO_REUSE``), so
    that every bucket trains the same variables.
    """
    import tensorflow.compat.v1 as tf

    features = dict(features)
    number = features.pop(BUCKET)[0]  # every row the same

    def cut_to(length: int) -> Callable:
        def run():
            short = dict(features)
            for name in TOKEN_FEATURES:
                if name in features:
                    short[name] = features[name][:, :length]  # [B, L], L static
            with tf.variable_scope(tf.get_variable_scope(), reuse=tf.AUTO_REUSE):
                return branch(short)
        return run

    return tf.switch_case(number, [cut_to(length) for length in boundaries])


def agreed_length(features: Dict[str, object], max_seq_length: int, total,
                  max_predictions: int = 0) -> Dict[str, object]:
    """This replica's batch padded to the longest length any replica (of any worker) holds
    now, and (given ``max_predictions``) its predictions to the most any holds, so that every
    replica runs the same shape: ``total`` sums a tensor over replicas
    (``norbert.training.replicas.total``). Padding is zeros, as in the records (a padded
    prediction has weight 0): the outputs at the real positions do not change."""
    out = _agreed(features, TOKEN_FEATURES, max_seq_length, total)
    if max_predictions:
        out = _agreed(out, PREDICTION_FEATURES, max_predictions, total)
    return out


def _agreed(features: Dict[str, object], names, most: int, total) -> Dict[str, object]:
    """``features`` with those ``names`` ([B, n], n at most ``most``) padded with zeros to the
    longest n any replica holds (one all-reduce of [most + 1])."""
    import tensorflow.compat.v1 as tf

    present = [name for name in names if name in features]
    if not present:
        return features
    own = tf.shape(features[present[0]])[1]
    held = total(tf.one_hot(own, most + 1))  # [most + 1]: replicas holding each n
    longest = tf.reduce_max(tf.where(held > 0, tf.range(most + 1), tf.zeros([most + 1], tf.int32)))
    out = dict(features)
    for name in present:
        out[name] = tf.pad(features[name], [[0, 0], [0, longest - own]])  # [B, longest]
    return out


def token_counts(features: Dict[str, object]):
    """int64 [2]: (real tokens, positions computed) in ``features``' batch; zeros for
    features without an ``input_mask`` (another model's)."""
    import tensorflow.compat.v1 as tf

    if "input_mask" not in features:
        return tf.zeros([2], tf.int64)
    mask = tf.cast(features["input_mask"], tf.int64)
    return tf.stack([tf.reduce_sum(mask), tf.size(mask, out_type=tf.int64)])


def window_seed(run_seed: int, number) -> object:
    """A window's order seed [2]: (the run's, shifted out of the masks' and pairs' seeds, the
    window's number), the same on every worker."""
    import tensorflow.compat.v1 as tf

    return tf.stack([tf.constant(run_seed + (1 << 31), tf.int64), number])
