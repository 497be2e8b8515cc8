"""Masks drawn in the input pipeline: the static masker's rules and distribution, per batch."""

import random

import numpy as np
import pytest

from norbert.data.draws import Draws
from norbert.data.masking import Masker, MaskingConfig
from norbert.errors import NorbertError
from norbert.training.dynamic_masking import DynamicMasking, mask_batch
from op_runner import OpRunners

tf = pytest.importorskip("tensorflow").compat.v1

VOCAB_SIZE = 1000
PAD, CLS, SEP, MASK = 0, 2, 3, 4
FIRST_PIECE = 5  # ids [5, 800) start a word ...
CONTINUATION = 800  # ... ids [800, 1000) are "##" pieces
S, P = 64, 10


def make_pairs(seed, count, s=S, min_len=8, pieces=(1, 1, 1, 2, 2, 3)):
    """``count`` pairs ``[CLS] a.. [SEP] b.. [SEP]`` of words of ``pieces`` pieces, padded to
    ``s``.

    (features as numpy [count, s] / [count, 1], [(tokens, len_a)] for the static masker). A
    segment B may open with a "##" piece (the cut fell inside a word: it joins A's last word);
    one body in ten opens with one (it starts a word of its own).
    """
    rng = np.random.default_rng(seed)
    ids = np.zeros((count, s), np.int32)
    segments = np.zeros((count, s), np.int32)
    pairs = []
    for row in range(count):
        n = int(rng.integers(min_len, s + 1))
        body = [] if rng.random() > 0.1 else [int(rng.integers(CONTINUATION, VOCAB_SIZE))]
        while len(body) < n - 3:
            length = int(rng.choice(pieces))
            body.append(int(rng.integers(FIRST_PIECE, CONTINUATION)))
            body.extend(int(i) for i in rng.integers(CONTINUATION, VOCAB_SIZE, length - 1))
        body = body[:n - 3]
        len_a = int(rng.integers(1, n - 3))
        tokens = [CLS] + body[:len_a] + [SEP] + body[len_a:] + [SEP]
        ids[row, :n] = tokens
        segments[row, len_a + 2:n] = 1
        pairs.append((tokens, len_a))
    special = (ids == PAD) | (ids == CLS) | (ids == SEP)
    maskable = np.where(special, 0, np.where(ids >= CONTINUATION, 2, 1)).astype(np.int32)
    features = dict(input_ids=ids, input_mask=(ids != PAD).astype(np.int32),
                    segment_ids=segments, maskable=maskable,
                    next_sentence_labels=rng.integers(0, 2, (count, 1)).astype(np.int32))
    return features, pairs


def repeated(features, times):
    """Every row ``times`` times over (row-major: row 0's copies first)."""
    return {k: np.repeat(v, times, axis=0) for k, v in features.items()}


_RUNNERS = OpRunners()


def runner(config, batch, s=S):
    """``mask_batch`` with ``config`` on [batch, s] features."""
    shapes = {k: [batch, s] for k in ("input_ids", "input_mask", "segment_ids", "maskable")}
    shapes["next_sentence_labels"] = [batch, 1]
    return _RUNNERS.get((config, batch, s),
                        lambda inputs, seed: mask_batch(inputs, config, seed), shapes)


@pytest.fixture(scope="module", autouse=True)
def _close_sessions():
    yield
    _RUNNERS.close()


def config(whole_word=False, per_word=False, prob=0.15, p=P):
    return DynamicMasking(max_predictions_per_seq=p, vocab_size=VOCAB_SIZE, mask_id=MASK,
                          masked_lm_prob=prob, whole_word=whole_word, per_word=per_word)


def static_masker(cfg):
    return Masker(MaskingConfig(cfg.masked_lm_prob, cfg.max_predictions_per_seq,
                                cfg.whole_word, cfg.per_word),
                  vocab_size=VOCAB_SIZE, mask_id=MASK,
                  continuation=[i >= CONTINUATION for i in range(VOCAB_SIZE)])


def budgets(features, cfg):
    """[N] the reference's num_to_predict per row (Python's round)."""
    masker = static_masker(cfg)
    return np.array([masker.num_to_predict(int(n)) for n in features["input_mask"].sum(1)])


def words_of(maskable_row, whole_word=True):
    """Index lists of the words of one row: a 2 joins the word of the 1 before it."""
    words = []
    for i, m in enumerate(maskable_row):
        if m == 0:
            continue
        if whole_word and m == 2 and words:
            words[-1].append(i)
        else:
            words.append([i])
    return words


def chosen_of(out):
    """[N, S] bool: the chosen positions, read from masked_lm_positions and weights."""
    chosen = np.zeros(out["input_ids"].shape, bool)
    rows, slots = np.nonzero(out["masked_lm_weights"] > 0)
    chosen[rows, out["masked_lm_positions"][rows, slots]] = True
    return chosen


def check_rules(features, out, cfg):
    """The invariants every masked batch keeps; returns [N, S] chosen."""
    ids, maskable = features["input_ids"], features["maskable"]
    positions, labels = out["masked_lm_positions"], out["masked_lm_ids"]
    weights = out["masked_lm_weights"]
    assert set(weights.ravel()) <= {0.0, 1.0}
    real = weights > 0
    count = real.sum(1)
    # Real predictions first, then 0 padding; positions strictly ascending.
    assert (real == (np.arange(positions.shape[1]) < count[:, None])).all()
    assert (positions[~real] == 0).all() and (labels[~real] == 0).all()
    for row in range(len(ids)):
        assert (np.diff(positions[row, :count[row]]) > 0).all()
    rows = np.nonzero(real)[0]
    at = positions[real]
    assert (maskable[rows, at] != 0).all()  # never [CLS], [SEP] or padding
    assert (features["input_mask"][rows, at] == 1).all()
    assert (labels[real] == ids[rows, at]).all()  # the original ids
    chosen = chosen_of(out)
    assert (out["input_ids"][~chosen] == ids[~chosen]).all()
    assert ((out["input_ids"] >= 0) & (out["input_ids"] < VOCAB_SIZE)).all()
    for k in ("input_mask", "segment_ids", "next_sentence_labels"):
        np.testing.assert_array_equal(out[k], features[k])
    assert "maskable" not in out
    assert (count <= budgets(features, cfg)).all()
    if cfg.whole_word:
        for row in range(len(ids)):
            for word in words_of(maskable[row]):
                assert chosen[row, word].all() or not chosen[row, word].any()
    return chosen


def fates(features, out, chosen):
    """(mask, kept, random) booleans over the chosen positions, flattened."""
    before, after = features["input_ids"][chosen], out["input_ids"][chosen]
    mask = after == MASK
    kept = ~mask & (after == before)
    return mask, kept, ~mask & ~kept


def within(observed, expected, n, sigmas=5.0):
    """Whether a share over ``n`` trials is within ``sigmas`` binomial stds of ``expected``."""
    return abs(observed - expected) <= sigmas * np.sqrt(expected * (1 - expected) / n)


# --- the config ---------------------------------------------------------------------------


@pytest.mark.parametrize("changes, flag", [
    (dict(masked_lm_prob=0.0), "--masked_lm_prob"),
    (dict(masked_lm_prob=1.5), "--masked_lm_prob"),
    (dict(max_predictions_per_seq=0), "--max_predictions_per_seq"),
    (dict(per_word=True), "--whole_word_mask_per_word needs --do_whole_word_mask"),
    (dict(vocab_size=0), "vocab_size"),
    (dict(vocab_size=None), "vocab_size"),  # a sidecar without it
    (dict(mask_id=VOCAB_SIZE), "mask_id"),
    (dict(mask_id=-1), "mask_id"),
])
def test_bad_settings_are_one_line_errors_naming_the_flag(changes, flag):
    values = dict(max_predictions_per_seq=P, vocab_size=VOCAB_SIZE, mask_id=MASK)
    values.update(changes)
    with pytest.raises(NorbertError) as caught:
        DynamicMasking(**values)
    assert flag in str(caught.value) and "\n" not in str(caught.value)


# --- the rules, batch by batch -------------------------------------------------------------


@pytest.mark.parametrize("whole_word, per_word", [(False, False), (True, False), (True, True)])
def test_shapes_and_the_rules_every_batch_keeps(whole_word, per_word):
    cfg = config(whole_word, per_word)
    features, _ = make_pairs(1, 256)
    with tf.Graph().as_default():
        out = mask_batch({k: tf.constant(v) for k, v in features.items()}, cfg, [5, 6])
        for k in ("input_ids", "input_mask", "segment_ids"):
            assert out[k].shape.as_list() == [256, S] and out[k].dtype == tf.int32
        for k, dtype in (("masked_lm_positions", tf.int32), ("masked_lm_ids", tf.int32),
                         ("masked_lm_weights", tf.float32)):
            assert out[k].shape.as_list() == [256, P] and out[k].dtype == dtype
        assert out["next_sentence_labels"].shape.as_list() == [256, 1]
        with tf.Session() as sess:
            got = sess.run(out)
    chosen = check_rules(features, got, cfg)
    count = chosen.sum(1)
    want = np.minimum(budgets(features, cfg), (features["maskable"] > 0).sum(1))
    if whole_word:
        assert (count <= want).all() and count.mean() > 0.9 * want.mean()
    else:
        np.testing.assert_array_equal(count, want)


@pytest.mark.parametrize("prob, p", [(0.15, 20), (0.5, 40), (0.3, 3), (0.9, S + 6)])
def test_the_count_is_the_references_rounding_and_cap(prob, p):
    # Lengths from 5 up: 0.5 * odd lengths hits .5, which rounds half to even, as Python does.
    cfg = config(prob=prob, p=p)
    features, _ = make_pairs(2, 120, min_len=5)
    n = features["input_mask"].sum(1)
    got = runner(cfg, 120).run(features, [0, 1])
    count = check_rules(features, got, cfg).sum(1)
    want = np.minimum([min(p, max(1, round(int(k) * prob))) for k in n],
                      (features["maskable"] > 0).sum(1))
    np.testing.assert_array_equal(count, want)
    if prob == 0.5:
        assert any(round(k * 0.5) != int(k * 0.5 + 0.5) for k in n.tolist())  # half-up differs


def test_a_batch_size_known_only_when_run():
    cfg = config(True)
    features, _ = make_pairs(11, 24)
    with tf.Graph().as_default():
        inputs = {k: tf.placeholder(tf.int32, [None, v.shape[1]]) for k, v in features.items()}
        out = mask_batch(inputs, cfg, tf.constant([3, 4], tf.int64))
        assert out["input_ids"].shape.as_list() == [None, S]
        assert out["masked_lm_positions"].shape.as_list() == [None, P]
        with tf.Session() as sess:
            got = sess.run(out, {inputs[k]: v for k, v in features.items()})
    check_rules(features, got, cfg)
    assert got["masked_lm_weights"].shape == (24, P)


def test_an_all_padding_row_gets_no_predictions():
    features, _ = make_pairs(3, 4)
    for k in ("input_ids", "input_mask", "segment_ids", "maskable"):
        features[k][2] = 0
    got = runner(config(True), 4).run(features, [1, 2])
    check_rules(features, got, config(True))
    assert got["masked_lm_weights"].sum(1).tolist()[2] == 0
    assert (got["masked_lm_weights"][[0, 1, 3]].sum(1) > 0).all()


# --- the distribution ------------------------------------------------------------------------


def test_80_10_10_and_uniform_random_ids():
    cfg = config()
    features, _ = make_pairs(4, 1024)
    mask, kept, rand, replaced = [], [], [], []
    for step in range(4):  # ~21k chosen positions
        got = runner(cfg, 1024).run(features, [11, step])
        chosen = check_rules(features, got, cfg)
        m, k, r = fates(features, got, chosen)
        mask.append(m)
        kept.append(k)
        rand.append(r)
        replaced.append(got["input_ids"][chosen][r])
    mask, kept, rand = (np.concatenate(x) for x in (mask, kept, rand))
    n = len(mask)
    assert n > 20000
    # A random id lands on [MASK] or the original 1 time in 1000: within the tolerance.
    assert within(mask.mean(), 0.8, n) and within(kept.mean(), 0.1, n)
    assert within(rand.mean(), 0.1, n)
    # Random ids uniform over [0, 1000): ten buckets of 100 ids, chi-square with 9 dof.
    replaced = np.concatenate(replaced)
    counts = np.bincount(replaced // 100, minlength=10)
    expected = len(replaced) / 10
    assert ((counts - expected) ** 2 / expected).sum() < 40  # p < 1e-5 when uniform


def test_each_candidate_is_equally_likely():
    # One pair, 4000 times: each of its c candidates is chosen with chance k / c.
    features, _ = make_pairs(5, 1, min_len=S)
    cfg = config()
    batch = repeated(features, 4000)
    got = runner(cfg, 4000).run(batch, [3, 3])
    chosen = check_rules(batch, got, cfg)
    candidates = features["maskable"][0] > 0
    k = budgets(features, cfg)[0]
    hits = chosen.sum(0)
    assert (hits[~candidates] == 0).all()
    expected = 4000 * k / candidates.sum()
    dof = candidates.sum() - 1
    chi2 = ((hits[candidates] - expected) ** 2 / expected).sum()
    assert chi2 < dof + 6 * np.sqrt(2 * dof)


@pytest.mark.parametrize("whole_word", [False, True])
def test_same_distribution_as_the_static_masker(whole_word):
    """Per-position selection rates and mean counts of both maskers on the same pairs."""
    reps, cfg = 1500, config(whole_word)
    # Long words in short pairs: whole words then often leave the budget short, by chance.
    features, pairs = make_pairs(6, 8, s=32, pieces=(1, 2, 3, 3, 4))
    features = {k: np.pad(v, [(0, 0), (0, S - 32)]) if v.shape[1] == 32 else v
                for k, v in features.items()}
    batch = repeated(features, reps)
    ours = chosen_of(runner(cfg, 8 * reps).run(batch, [9, 9])).reshape(8, reps, S)
    theirs = np.zeros_like(ours)
    masker, draws = static_masker(cfg), Draws(random.Random(9))
    for row, (tokens, len_a) in enumerate(pairs):
        for rep in range(reps):
            theirs[row, rep, masker.mask_pair(list(tokens), len_a, draws).positions] = True
    # Mean predictions per pair.
    a, b = ours.sum(2), theirs.sum(2)  # [8, reps]
    spread = np.sqrt((a.var(1) + b.var(1)) / reps)
    assert (np.abs(a.mean(1) - b.mean(1)) <= 5 * spread + 1e-9).all()
    # Per-position rates: binomial over reps each.
    rate_a, rate_b = ours.mean(1), theirs.mean(1)  # [8, S]
    both = (rate_a + rate_b) / 2
    tolerance = 5 * np.sqrt(both * (1 - both) * 2 / reps) + 1e-9
    assert (np.abs(rate_a - rate_b) <= tolerance).all()  # exactly 0 where one never picks


# --- whole words ------------------------------------------------------------------------------


def _greedy_word_by_word(lengths, budget):
    taken, left = [], budget
    for length in lengths:
        taken.append(length <= left)
        left -= length if length <= left else 0
    return taken


def test_rounds_take_what_the_word_by_word_greedy_takes():
    from norbert.training.dynamic_masking import _greedy

    rng = np.random.default_rng(7)
    lengths = rng.choice([1, 1, 1, 2, 2, 3, 4, 6], (2000, 24)).astype(np.int32)
    lengths[rng.random((2000, 24)) < 0.1] = 21  # non-words: longer than any budget (P + 1)
    budget = rng.integers(1, 21, 2000).astype(np.int32)
    with tf.Graph().as_default(), tf.Session() as sess:
        got = sess.run(_greedy(tf.constant(lengths), tf.constant(budget), 20))
    want = [_greedy_word_by_word(row, b) for row, b in zip(lengths.tolist(), budget.tolist())]
    np.testing.assert_array_equal(got, np.array(want))


@pytest.mark.parametrize("tokens, maskable, prob, always, shared, share", [
    # [CLS] w ##x ##y a [SEP] b c [SEP]: budget round(9 * 0.25) = 2; w never fits. Stopping at
    # the first word that overshoots would leave 0 or 1 chosen whenever w came first or second.
    ([CLS, 10, 900, 901, 11, SEP, 12, 13, SEP], [0, 1, 2, 2, 1, 0, 1, 1, 0], 0.25, [], [4, 6, 7],
     2 / 3),
    # [CLS] a ##x b ##y [SEP] c [SEP]: budget round(8 * 0.4) = 3. After one two-piece word the
    # other overshoots; c still fits, in any order. Stopping there would leave 2 in a third.
    ([CLS, 10, 900, 11, 901, SEP, 12, SEP], [0, 1, 2, 1, 2, 0, 1, 0], 0.4, [6], [1, 3], 1 / 2),
], ids=["longer than the budget", "longer than what is left"])
def test_a_word_that_overshoots_is_skipped_and_later_ones_still_fill_the_budget(
        tokens, maskable, prob, always, shared, share):
    n = len(tokens)
    features = dict(input_ids=np.zeros((1, S), np.int32), maskable=np.zeros((1, S), np.int32),
                    segment_ids=np.zeros((1, S), np.int32),
                    next_sentence_labels=np.zeros((1, 1), np.int32))
    features["input_ids"][0, :n] = tokens
    features["maskable"][0, :n] = maskable
    features["input_mask"] = (features["input_ids"] > 0).astype(np.int32)
    cfg = config(True, prob=prob)
    batch = repeated(features, 600)
    chosen = check_rules(batch, runner(cfg, 600).run(batch, [4, 4]), cfg)
    budget = budgets(features, cfg)[0]
    assert (chosen.sum(1) == budget).all()
    assert chosen[:, always].all()
    # The words that share what is left, each as often: two of three, or one of two.
    for rate in chosen[:, shared].mean(0):
        assert within(rate, share, 600)


@pytest.mark.parametrize("per_word", [False, True])
def test_per_word_gives_a_whole_word_one_fate(per_word):
    cfg = config(True, per_word)
    features, _ = make_pairs(8, 1024)
    got = runner(cfg, 1024).run(features, [8, 8])
    chosen = check_rules(features, got, cfg)
    mask, kept, rand = fates(features, got, np.ones_like(chosen))
    kind = np.where(mask, 0, np.where(kept, 1, 2)).reshape(chosen.shape)
    split, word_fates = 0, []
    for row in range(len(chosen)):
        for word in words_of(features["maskable"][row]):
            if chosen[row, word[0]] and len(word) > 1:
                split += len(set(kind[row, word])) > 1
                word_fates.append(kind[row, word[0]])
    assert len(word_fates) > 800
    if per_word:
        # Only a random id that happens to be [MASK] or the original (2 in 1000) splits one.
        assert split <= 0.01 * len(word_fates)
        shares = np.bincount(word_fates, minlength=3) / len(word_fates)
        for share, want in zip(shares, (0.8, 0.1, 0.1)):
            assert within(share, want, len(word_fates))
    else:  # per piece, as the reference does: many words partly masked
        assert split > 0.2 * len(word_fates)


# --- seeds and the pipeline -------------------------------------------------------------------


def test_same_seed_same_masks_other_seed_other_masks():
    cfg = config(True)
    features, _ = make_pairs(9, 64)
    run = runner(cfg, 64).run
    first, again, other = run(features, [1, 2]), run(features, [1, 2]), run(features, [1, 3])
    for k in first:
        np.testing.assert_array_equal(first[k], again[k])
    changed = (first["masked_lm_positions"] != other["masked_lm_positions"]).any(1)
    assert changed.mean() > 0.9


def test_in_a_tf_data_pipeline_after_batching():
    cfg = config(True, True)
    features, _ = make_pairs(10, 96)
    with tf.Graph().as_default(), tf.Session() as sess:
        data = tf.data.Dataset.from_tensor_slices(features).batch(32, drop_remainder=True)
        data = data.enumerate().map(
            lambda i, f: mask_batch(f, cfg, tf.stack([tf.constant(7, tf.int64), i])))
        shapes = tf.data.get_output_shapes(data)
        assert shapes["input_ids"].as_list() == [32, S]
        assert shapes["masked_lm_positions"].as_list() == [32, P]
        assert shapes["masked_lm_weights"].as_list() == [32, P]
        assert "maskable" not in shapes
        batch = tf.data.make_one_shot_iterator(data).get_next()
        got = [sess.run(batch) for _ in range(3)]
    direct = runner(cfg, 32)
    for i, out in enumerate(got):
        part = {k: v[32 * i:32 * (i + 1)] for k, v in features.items()}
        check_rules(part, out, cfg)
        want = direct.run(part, [7, i])  # the same seed outside tf.data: the same masks
        for k in want:
            np.testing.assert_array_equal(out[k], want[k])


def test_the_defaults_are_the_static_builders():
    from norbert.data import defaults

    assert DynamicMasking(max_predictions_per_seq=20, vocab_size=10,
                          mask_id=4).masked_lm_prob == defaults.MASKED_LM_PROB
