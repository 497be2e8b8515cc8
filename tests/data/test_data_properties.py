"""Properties of instances and masking over random documents and settings (hypothesis).

Whatever the documents, settings and seed, in both the reference-exact and the lazy (sharded)
draws: no exception; ids within the vocab; the sequence ``[CLS] A [SEP] B [SEP]`` within
``max_seq_length``; masked positions sorted, distinct, inside the sequence and never on
``[CLS]``/``[SEP]``, at most ``max_predictions_per_seq`` and labelled with the original ids;
every other position unchanged; and the two feature encoders agreeing on segment ids and masks.
"""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from norbert.data import tfrecord
from norbert.data.draws import Draws
from norbert.data.features import ExampleEncoder, instance_arrays
from norbert.data.instances import InstanceConfig, create_instances
from norbert.data.masking import Masker, MaskingConfig

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "##x", "##y", "d",
         "##z", "e", "f", "##g"]
CLS, SEP, MASK = 2, 3, 4
WORD_IDS = list(range(5, len(VOCAB)))  # ordinary pieces, "##" ones among them

_sentence = st.lists(st.sampled_from(WORD_IDS), min_size=1, max_size=40)
_document = st.lists(_sentence, min_size=1, max_size=8)


@st.composite
def _settings(draw):
    max_seq_length = draw(st.integers(5, 96))
    whole_word = draw(st.booleans())
    return dict(
        max_seq_length=max_seq_length,
        short_seq_prob=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
        masked_lm_prob=draw(st.sampled_from([0.01, 0.15, 0.5, 0.99])),
        max_predictions_per_seq=draw(st.integers(1, max_seq_length)),
        whole_word=whole_word,
        per_word=whole_word and draw(st.booleans()),
        exact=draw(st.booleans()),
        dupe_factor=draw(st.integers(1, 3)),
    )


@settings(max_examples=150, deadline=None)
@given(documents=st.lists(_document, min_size=1, max_size=6), setup=_settings(),
       seed=st.integers(0, 2**32))
def test_instances_and_masks_are_well_formed(documents, setup, seed):
    config = InstanceConfig(setup["max_seq_length"], setup["short_seq_prob"])
    masking = MaskingConfig(setup["masked_lm_prob"], setup["max_predictions_per_seq"],
                            whole_word=setup["whole_word"], per_word=setup["per_word"])
    masker = Masker.for_vocab(masking, VOCAB, exact=setup["exact"])
    originals = []

    def mask(tokens, len_a, draws):
        originals.append(list(tokens))
        return masker.mask_pair(tokens, len_a, draws)

    draws = Draws.for_rng(random.Random(seed))
    instances = list(create_instances(documents, config, mask, draws, CLS, SEP,
                                      dupe_factor=setup["dupe_factor"]))
    assert len(instances) >= len(documents) * setup["dupe_factor"]
    encoder = ExampleEncoder(config.max_seq_length, masking.max_predictions_per_seq, len(VOCAB))
    for inst, original in zip(instances, originals):
        tokens, len_a, positions, labels = inst[:4]
        n = len(tokens)
        assert 5 <= n <= config.max_seq_length and len(original) == n
        assert 1 <= len_a and n - len_a - 3 >= 1
        specials = {0, len_a + 1, n - 1}
        assert original[0] == CLS and original[len_a + 1] == SEP and original[-1] == SEP
        assert all(0 <= t < len(VOCAB) for t in tokens)
        # Masked positions.
        assert positions == sorted(set(positions))
        assert all(0 < p < n - 1 and p not in specials for p in positions)
        assert len(positions) <= min(masking.max_predictions_per_seq, n - 3)
        if not setup["whole_word"]:  # whole words may all overshoot a small budget
            assert len(positions) == min(masker.num_to_predict(n), n - 3)
        assert labels == [original[p] for p in positions]
        unmasked = set(range(n)) - set(positions)
        assert all(tokens[i] == original[i] for i in unmasked)
        assert tokens[0] == CLS and tokens[len_a + 1] == SEP and tokens[-1] == SEP
        # Segment ids and masks, by both encoders.
        arrays = instance_arrays(*inst, config.max_seq_length, masking.max_predictions_per_seq)
        assert arrays["input_mask"].sum() == n
        assert list(arrays["segment_ids"][:n]) == inst.segment_ids
        assert inst.segment_ids == [0] * (len_a + 2) + [1] * (n - len_a - 2)
        assert not arrays["segment_ids"][n:].any() and not arrays["input_ids"][n:].any()
        assert arrays["masked_lm_weights"].sum() == len(positions)
        decoded = tfrecord.decode_example(encoder.encode(*inst))
        assert decoded == {k: v.tolist() for k, v in arrays.items()}


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 300), take=st.integers(0, 300), seed=st.integers(0, 2**32))
def test_shuffled_prefix_is_a_lazy_permutation(n, take, seed):
    items = list(range(n))
    order = Draws(random.Random(seed)).shuffled_prefix(items)
    first = [x for _, x in zip(range(take), order)]
    assert len(first) == min(n, take) and len(set(first)) == len(first)
    assert all(0 <= x < n for x in first)
    rest = list(order)
    assert sorted(first + rest) == list(range(n))


def test_lazy_masking_is_uniform_over_positions():
    """Each maskable position is chosen about equally often (chi-square-like bound)."""
    masker = Masker.for_vocab(MaskingConfig(0.15, 20), VOCAB, exact=False)
    draws = Draws(random.Random(5))
    counts = [0] * 42
    for _ in range(3000):
        tokens = [CLS] + [5] * 20 + [SEP] + [6] * 19 + [SEP]
        for p in masker.mask_pair(tokens, 20, draws).positions:
            counts[p] += 1
    chosen = [c for i, c in enumerate(counts) if i not in (0, 21, 41)]
    mean = sum(chosen) / len(chosen)  # 3000 * 6 / 39
    assert counts[0] == counts[21] == counts[41] == 0
    assert all(abs(c - mean) < 0.15 * mean for c in chosen)
