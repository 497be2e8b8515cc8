"""Chunks of documents (``--pairing=dynamic``): cut as the reference gathers a pair's sentences,
and encoded with what the input pipeline needs to pair them."""

import random

import pytest

from norbert.data import tfrecord
from norbert.data.chunks import ChunkEncoder, chunks_from_document, create_chunks
from norbert.data.draws import Draws
from norbert.data.instances import InstanceConfig


def draws(seed):
    return Draws.for_rng(random.Random(seed))


def document(rng, sentences):
    return [[rng.randrange(5, 100) for _ in range(rng.randrange(1, 30))]
            for _ in range(sentences)]


@pytest.mark.parametrize("seed", range(5))
def test_chunks_follow_one_another_and_each_reaches_the_target_or_the_end(seed):
    rng = random.Random(seed)
    config = InstanceConfig(max_seq_length=64, short_seq_prob=0.5)
    for _ in range(20):
        doc = document(rng, rng.randrange(1, 15))
        chunks = list(chunks_from_document(doc, config, draws(rng.random())))
        assert [s for chunk, _ in chunks for s in chunk] == doc  # in order, each sentence once
        targets = {t for _, t in chunks}
        assert len(targets) == 1  # one target per document, as the reference draws it
        target = targets.pop()
        assert 2 <= target <= config.max_num_tokens
        for chunk, _ in chunks[:-1]:
            lengths = [len(s) for s in chunk]
            assert sum(lengths) >= target > sum(lengths[:-1])  # stops at the first that reaches


def test_the_target_is_drawn_as_the_reference_draws_it():
    config = InstanceConfig(max_seq_length=64, short_seq_prob=0.1)
    doc = [[7] * 5 for _ in range(40)]
    targets = []
    for seed in range(2000):
        (_, target), *_ = chunks_from_document(doc, config, draws(seed))
        # the reference's first draws for a document: random() < short_seq_prob, then randint
        reference = draws(seed)
        want = config.max_num_tokens
        if reference.random() < config.short_seq_prob:
            want = reference.randint(2, config.max_num_tokens)
        assert target == want
        targets.append(target)
    short = sum(t < config.max_num_tokens for t in targets) / len(targets)
    assert 0.07 < short < 0.13


def test_create_chunks_makes_dupe_factor_passes_with_new_targets():
    rng = random.Random(1)
    docs = [document(rng, 6) for _ in range(30)]
    config = InstanceConfig(max_seq_length=32, short_seq_prob=0.5)
    once = list(create_chunks(docs, config, draws(3), dupe_factor=1))
    twice = list(create_chunks(docs, config, draws(3), dupe_factor=2))
    assert twice[:len(once)] == once
    assert [s for c, _ in twice[len(once):] for s in c] == [s for d in docs for s in d]
    assert [t for _, t in twice[len(once):]] != [t for _, t in once]


def test_a_record_holds_the_chunk_its_sentence_starts_words_and_target():
    continuation = [False] * 50 + [True] * 50  # ids 50.. are "##" pieces
    encoder = ChunkEncoder(max_seq_length=8, continuation=continuation)
    chunk = ([[10, 60, 11], [61, 12], [13]], 5)
    features = tfrecord.decode_example(encoder.encode(chunk))
    assert features["input_ids"] == [10, 60, 11, 61, 12, 13, 0, 0]
    assert features["input_mask"] == [1, 1, 1, 1, 1, 1, 0, 0]
    assert features["sentence_starts"] == [1, 0, 0, 1, 0, 1, 0, 0]
    # a "##" piece continues the word before it, even across a sentence's start
    assert features["maskable"] == [1, 2, 1, 2, 1, 1, 0, 0]
    assert features["target_length"] == [5]
    assert list(features) == ["input_ids", "input_mask", "maskable", "sentence_starts",
                              "target_length"]
    assert encoder.tokens(chunk) == 6
    # A chunk whose last sentence overshoots the record keeps its first max_seq_length tokens.
    long = ([[10] * 6, [11] * 6], 9)
    features = tfrecord.decode_example(encoder.encode(long))
    assert features["input_ids"] == [10] * 6 + [11] * 2
    assert features["sentence_starts"] == [1, 0, 0, 0, 0, 0, 1, 0]
    assert encoder.tokens(long) == 8
