"""Pairs made of chunks in the input pipeline: the reference's split, random next sentence and
truncation rules, per batch."""

import random

import numpy as np
import pytest

from norbert.data.draws import Draws
from norbert.data.instances import truncate_pair
from norbert.errors import NorbertError
from norbert.training.dynamic_pairing import DynamicPairing, pair_batch
from op_runner import OpRunners

tf = pytest.importorskip("tensorflow").compat.v1

CLS, SEP = 2, 3
S = 32
M = S - 3  # tokens of A and B together
BASE = 1000  # token id = BASE + row * S + position: every output token names its source


def make_chunks(rng, count, s=S, lengths=(1, 2, 3, 5, 8, 13), targets=(M,)):
    """[count, s] chunk features of random sentences, and each chunk's sentence starts."""
    ids = np.zeros((count, s), np.int32)
    starts = np.zeros((count, s), np.int32)
    maskable = np.zeros((count, s), np.int32)
    target = np.zeros((count, 1), np.int32)
    bounds = []
    for row in range(count):
        total = int(rng.integers(1, s + 1))
        cuts = [0]
        while cuts[-1] < total:
            cuts.append(min(total, cuts[-1] + int(rng.choice(lengths))))
        ids[row, :total] = BASE + row * s + np.arange(total)
        starts[row, cuts[:-1]] = 1
        maskable[row, :total] = rng.integers(1, 3, total)
        maskable[row, 0] = 1
        target[row, 0] = int(rng.choice(targets))
        bounds.append(cuts)
    features = dict(input_ids=ids, input_mask=(ids != 0).astype(np.int32), maskable=maskable,
                    sentence_starts=starts, target_length=target)
    return features, bounds


_RUNNERS = OpRunners()
PAIRING = DynamicPairing(cls_id=CLS, sep_id=SEP)


def runner(batch, s=S):
    """``pair_batch`` on [batch, s] chunks."""
    shapes = {k: [batch, s] for k in ("input_ids", "input_mask", "maskable", "sentence_starts")}
    shapes["target_length"] = [batch, 1]
    return _RUNNERS.get((batch, s), lambda inputs, seed: pair_batch(inputs, PAIRING, seed),
                        shapes)


@pytest.fixture(scope="module", autouse=True)
def _close_sessions():
    yield
    _RUNNERS.close()


def source(token, s=S):
    """(row, position) of a chunk token."""
    return divmod(int(token) - BASE, s)


def parse(out, row):
    """(A's sources, B's sources, label) of one output row; checks the frame around them."""
    n = int(out["input_mask"][row].sum())
    ids = out["input_ids"][row]
    assert ids[0] == CLS and ids[n - 1] == SEP and not ids[n:].any()
    seps = [i for i in range(n) if ids[i] == SEP]
    assert len(seps) == 2, ids
    a = [source(t) for t in ids[1:seps[0]]]
    b = [source(t) for t in ids[seps[0] + 1:n - 1]]
    assert a and b  # the reference's truncation keeps a token of each
    segments = out["segment_ids"][row]
    assert list(segments[:n]) == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    assert not segments[n:].any() and not out["input_mask"][row][n:].any()
    return a, b, int(out["next_sentence_labels"][row][0])


def consecutive(sources):
    """Whether sources are one row's consecutive positions."""
    return all(r == sources[0][0] for r, _ in sources) and all(
        q == p + 1 for (_, p), (_, q) in zip(sources, sources[1:]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_pair_is_cut_by_the_references_rules(seed):
    rng = np.random.default_rng(seed)
    batch = 64
    targets = (M, M, 5, 12)  # a short target for some documents
    features, bounds = make_chunks(rng, batch, targets=targets)
    out = runner(batch).run(features, [seed, 0])
    truncated = 0
    for row in range(batch):
        a, b, label = parse(out, row)
        cuts = bounds[row]
        n_sentences = len(cuts) - 1
        assert consecutive(a) and consecutive(b) and a[0][0] == row
        if n_sentences == 1:
            assert label == 1  # a one-sentence chunk always takes a random next sentence
        if len(a) + len(b) < M:  # nothing was cut off: the pair is exactly as drawn
            assert a[0][1] == 0 and a[-1][1] + 1 in cuts[1:-1] + ([cuts[-1]] if label else [])
            if label == 0:
                assert b[0] == (row, a[-1][1] + 1) and b[-1][1] + 1 == cuts[-1]
            else:
                other, first = b[0]
                assert other != row
                other_cuts = bounds[other]
                assert first in other_cuts[:-1]  # B starts on a sentence of the other chunk
                end = b[-1][1] + 1
                assert end in other_cuts[1:]
                # ... and ends at the first sentence end that reaches the target minus A, or
                # at the other chunk's end.
                need = int(features["target_length"][row, 0]) - len(a)
                ends = [c for c in other_cuts[1:] if c > first]
                reaching = [c for c in ends if c - first >= need]
                assert end == (reaching[0] if reaching else other_cuts[-1])
        else:
            truncated += 1
            assert len(a) + len(b) == M
    assert truncated  # the batch exercised truncation too


def test_truncation_keeps_the_references_lengths_and_cuts_either_end_evenly():
    # Two-sentence chunks of a known pair of lengths: a label-0 row is exactly (A, B) cut.
    batch = 128
    cases = [(16, 16), (26, 6), (3, 29), (20, 12)]  # chunks hold S tokens at most
    front_share = {}
    for la, lb in cases:
        ids = np.zeros((batch, S), np.int32)
        ids[:, :la + lb] = BASE + np.arange(batch)[:, None] * S + np.arange(la + lb)[None, :]
        starts = np.zeros((batch, S), np.int32)
        starts[:, [0, la]] = 1
        features = dict(input_ids=ids, input_mask=(ids != 0).astype(np.int32),
                        maskable=np.ones((batch, S), np.int32), sentence_starts=starts,
                        target_length=np.full((batch, 1), M, np.int32))
        kept_a, kept_b = truncate_pair(list(range(la)), list(range(lb)), M,
                                       Draws.for_rng(random.Random(0)))
        fronts_a, cuts = 0, 0
        for seed in range(10):
            out = runner(batch).run(features, [7, seed])
            for row in range(batch):
                a, b, label = parse(out, row)
                if label:
                    continue
                assert (len(a), len(b)) == (len(kept_a), len(kept_b))
                fronts_a += a[0][1]
                cuts += la - len(a)
        front_share[la, lb] = fronts_a / cuts if cuts else None
    # Each token that comes off A does so at its front with probability 0.5.
    for case in ((16, 16), (26, 6), (20, 12)):
        assert 0.45 < front_share[case] < 0.55, front_share
    assert front_share[3, 29] is None  # A, the shorter, was never cut


def test_the_split_the_coin_and_the_other_chunk_are_uniform():
    batch = 32
    # Every chunk four sentences of 3 tokens: A takes 1, 2 or 3 of them.
    ids = BASE + np.arange(batch)[:, None] * S + np.arange(12)[None, :]
    features = dict(
        input_ids=np.pad(ids, [(0, 0), (0, S - 12)]).astype(np.int32),
        input_mask=np.pad(np.ones((batch, 12)), [(0, 0), (0, S - 12)]).astype(np.int32),
        maskable=np.ones((batch, S), np.int32),
        sentence_starts=np.tile(np.isin(np.arange(S), [0, 3, 6, 9]), (batch, 1)).astype(np.int32),
        target_length=np.full((batch, 1), M, np.int32))
    sentences_in_a, labels, others, b_starts = [], [], [], []
    for seed in range(60):
        out = runner(batch).run(features, [11, seed])
        for row in range(batch):
            a, b, label = parse(out, row)
            sentences_in_a.append(len(a) // 3)
            labels.append(label)
            if label:
                others.append((b[0][0] - row) % batch)
                b_starts.append(b[0][1] // 3)
    n = len(labels)  # 1920 pairs
    assert abs(np.mean(labels) - 0.5) < 4 * np.sqrt(0.25 / n)
    for counts, k in ((np.bincount(sentences_in_a, minlength=4)[1:], 3),
                      (np.bincount(others, minlength=batch)[1:], batch - 1),
                      (np.bincount(b_starts, minlength=4), 4)):
        # chi-square against uniform over k values, well inside its 0.999 quantile
        expected = counts.sum() / k
        chi2 = ((counts - expected) ** 2 / expected).sum()
        assert len(counts) == k and chi2 < k + 6 * np.sqrt(2 * k), (counts, chi2)
    assert np.bincount(others, minlength=batch)[0] == 0  # never its own chunk


def test_word_marks_travel_with_their_tokens_and_a_segment_opens_with_a_word():
    rng = np.random.default_rng(3)
    batch = 64
    features, _ = make_chunks(rng, batch)
    out = runner(batch).run(features, [3, 3])
    marks = features["maskable"]
    for row in range(batch):
        n = int(out["input_mask"][row].sum())
        got = out["maskable"][row]
        assert got[0] == 0 and not got[n - 1:].any()
        for j in range(1, n - 1):
            token = out["input_ids"][row][j]
            if token == SEP:
                assert got[j] == 0
                continue
            r, p = source(token)
            want = marks[r, p]
            if out["input_ids"][row][j - 1] in (CLS, SEP):
                want = 1  # a "##" piece that opens a segment starts a word there
            assert got[j] == want


def test_same_seed_same_pairs_other_seed_other_pairs_and_static_shapes():
    rng = np.random.default_rng(4)
    features, _ = make_chunks(rng, 16)
    r = runner(16)
    first, again, other = (r.run(features, seed) for seed in ([1, 2], [1, 2], [1, 3]))
    for k in first:
        np.testing.assert_array_equal(first[k], again[k])
    assert not np.array_equal(first["input_ids"], other["input_ids"])
    with tf.Graph().as_default():
        inputs = {k: tf.placeholder(tf.int32, [None, S]) for k in
                  ("input_ids", "input_mask", "maskable", "sentence_starts")}
        inputs["target_length"] = tf.placeholder(tf.int32, [None, 1])
        outputs = pair_batch(inputs, DynamicPairing(CLS, SEP), tf.constant([1, 2], tf.int64))
        assert {k: v.shape.as_list() for k, v in outputs.items()} == {
            "input_ids": [None, S], "input_mask": [None, S], "segment_ids": [None, S],
            "maskable": [None, S], "next_sentence_labels": [None, 1]}


def test_a_batch_of_one_pairs_a_chunk_with_itself():
    features, _ = make_chunks(np.random.default_rng(1), 1)
    out = runner(1).run(features, [1, 1])
    a, b, _ = parse(out, 0)
    assert {r for r, _ in a + b} == {0}


@pytest.mark.parametrize("cls_id, sep_id", [(-1, 3), (2, None)])
def test_bad_ids_are_errors(cls_id, sep_id):
    with pytest.raises(NorbertError, match="the vocab needs \\[CLS\\] and \\[SEP\\]"):
        DynamicPairing(cls_id, sep_id)
