"""The feature schema, and instances encoded as tf.train.Example without TensorFlow."""

import random

import numpy as np
import pytest

from norbert.data import tfrecord
from norbert.data.features import (
    DYNAMIC, FEATURE_NAMES, ExampleEncoder, UnmaskedEncoder, feature_schema, instance_arrays,
    maskable_marks, parse_spec,
)


def test_schema_is_googles():
    schema = feature_schema(128, 20)
    assert list(schema) == list(FEATURE_NAMES) == [
        "input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
        "masked_lm_weights", "next_sentence_labels",
    ]
    assert schema["input_ids"] == ("int64", 128)
    assert schema["masked_lm_weights"] == ("float32", 20)
    assert schema["next_sentence_labels"] == ("int64", 1)


def random_instance(rng, s, p, vocab_size):
    n = rng.randint(5, s)
    len_a = rng.randint(1, n - 4)
    tokens = [rng.randrange(vocab_size) for _ in range(n)]
    m = rng.randint(1, min(p, n - 3))
    positions = sorted(rng.sample(range(1, n - 1), m))
    labels = [rng.randrange(vocab_size) for _ in positions]
    return tokens, len_a, positions, labels, rng.random() < 0.5


def test_instance_arrays_are_padded():
    arrays = instance_arrays([2, 7, 3, 8, 9, 3], 1, [2, 4], [70, 90], True, 8, 3)
    assert arrays["input_ids"].tolist() == [2, 7, 3, 8, 9, 3, 0, 0]
    assert arrays["input_mask"].tolist() == [1] * 6 + [0] * 2
    assert arrays["segment_ids"].tolist() == [0, 0, 0, 1, 1, 1, 0, 0]
    assert arrays["masked_lm_positions"].tolist() == [2, 4, 0]
    assert arrays["masked_lm_ids"].tolist() == [70, 90, 0]
    assert arrays["masked_lm_weights"].dtype == np.float32
    assert arrays["masked_lm_weights"].tolist() == [1.0, 1.0, 0.0]
    assert arrays["next_sentence_labels"].tolist() == [1]


@pytest.mark.parametrize("s, p, vocab_size", [(128, 20, 30522), (512, 80, 119547), (16, 4, 50)])
def test_encoder_gives_the_generic_encoding(s, p, vocab_size):
    encoder = ExampleEncoder(s, p, vocab_size)
    rng = random.Random(s)
    for _ in range(200):
        inst = random_instance(rng, s, p, vocab_size)
        arrays = instance_arrays(*inst, s, p)
        generic = tfrecord.encode_example({
            name: (tfrecord.FLOAT if a.dtype.kind == "f" else tfrecord.INT64, a)
            for name, a in arrays.items()
        })
        assert encoder.encode(*inst) == generic
        decoded = tfrecord.decode_example(generic)
        assert {k: list(v) for k, v in arrays.items()} == decoded


def test_encoder_rejects_what_does_not_fit():
    encoder = ExampleEncoder(8, 2, 100)
    with pytest.raises(ValueError):
        encoder.encode([1] * 9, 1, [1], [1], False)
    with pytest.raises(ValueError):
        encoder.encode([1] * 8, 1, [1, 2, 3], [1, 2, 3], False)


def test_tensorflow_parses_the_records_with_the_schemas_spec():
    tf = pytest.importorskip("tensorflow")
    s, p = 128, 20
    encoder = ExampleEncoder(s, p, 30522)
    rng = random.Random(1)
    spec = parse_spec(s, p)
    assert spec["input_ids"] == tf.io.FixedLenFeature([s], tf.int64)
    assert spec["masked_lm_weights"] == tf.io.FixedLenFeature([p], tf.float32)
    for _ in range(20):
        inst = random_instance(rng, s, p, 30522)
        parsed = tf.io.parse_single_example(encoder.encode(*inst), spec)
        for name, array in instance_arrays(*inst, s, p).items():
            np.testing.assert_array_equal(parsed[name].numpy(), array)


def test_unmasked_records_mark_words_and_parse_with_the_dynamic_spec():
    tf = pytest.importorskip("tensorflow")
    vocab_size, s = 60, 16
    continuation = [i >= 40 for i in range(vocab_size)]  # ids 40.. are "##" pieces
    # [CLS] 7 41 42 8 [SEP] 43 9 44 [SEP]: a "##" piece opening segment B starts a word
    tokens, len_a = [1, 7, 41, 42, 8, 2, 43, 9, 44, 2], 4
    marks = maskable_marks(tokens, len_a, bytes(continuation))
    assert list(marks) == [0, 1, 2, 2, 1, 0, 1, 1, 2, 0]
    assert list(feature_schema(s, 3, DYNAMIC)) == [
        "input_ids", "input_mask", "segment_ids", "maskable", "next_sentence_labels"]
    encoder = UnmaskedEncoder(s, 3, vocab_size, continuation)
    parsed = tf.io.parse_single_example(encoder.encode(tokens, len_a, [], [], True),
                                        parse_spec(s, 3, DYNAMIC))
    pad = [0] * (s - len(tokens))
    assert parsed["input_ids"].numpy().tolist() == tokens + pad
    assert parsed["input_mask"].numpy().tolist() == [1] * len(tokens) + pad
    assert parsed["segment_ids"].numpy().tolist() == [0] * 6 + [1] * 4 + pad
    assert parsed["maskable"].numpy().tolist() == list(marks) + pad
    assert parsed["next_sentence_labels"].numpy().tolist() == [1]
    with pytest.raises(ValueError):
        encoder.encode(tokens, len_a, [2], [41], False)  # a masked instance is not for it
