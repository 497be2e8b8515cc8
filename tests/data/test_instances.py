"""Sentence-pair instances and truncation, draw for draw as the reference."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

import pytest

from norbert.data.draws import Draws
from norbert.data.instances import InstanceConfig, create_instances, truncate_pair
from norbert.data.masking import MaskedSequence
from norbert.errors import NorbertError

CLS, SEP = 101, 102


def naive_truncate(a, b, max_num_tokens, rng):
    """The reference's rule on lists: one token at a time off the longer (b on a tie)."""
    a, b = list(a), list(b)
    while len(a) + len(b) > max_num_tokens:
        longer = a if len(a) > len(b) else b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()
    return a, b


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), len_a=st.integers(1, 300), len_b=st.integers(1, 300),
       max_num=st.integers(2, 509))
def test_truncation_is_the_references(seed, len_a, len_b, max_num):
    a, b = list(range(len_a)), list(range(1000, 1000 + len_b))
    ours, theirs = random.Random(seed), random.Random(seed)
    got = truncate_pair(a, b, max_num, Draws(ours))
    assert got == naive_truncate(a, b, max_num, theirs)
    assert ours.getstate() == theirs.getstate()
    assert a == list(range(len_a))  # inputs untouched


def no_mask(tokens, len_a, draws):
    return MaskedSequence(tokens, [], [])


def documents(seed, n_docs=6):
    rng = random.Random(seed)
    return [
        [[d * 1000 + s * 10 + t for t in range(rng.randint(1, 30))]
         for s in range(rng.randint(1, 12))]
        for d in range(n_docs)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_instances_are_well_formed(seed):
    docs = documents(seed)
    config = InstanceConfig(max_seq_length=64, short_seq_prob=0.3)
    draws = Draws(random.Random(seed))
    instances = list(create_instances(docs, config, no_mask, draws, CLS, SEP, dupe_factor=2))
    assert instances
    for inst in instances:
        n = len(inst.tokens)
        assert 5 <= n <= 64
        assert inst.tokens[0] == CLS and inst.tokens[-1] == SEP
        assert inst.tokens[inst.len_a + 1] == SEP
        assert inst.len_a >= 1 and n - inst.len_a - 3 >= 1
        assert inst.segment_ids == [0] * (inst.len_a + 2) + [1] * (n - inst.len_a - 2)
        a = inst.tokens[1:inst.len_a + 1]
        b = inst.tokens[inst.len_a + 2:-1]
        doc_a = {t // 1000 for t in a}
        assert len(doc_a) == 1  # segment A is one document's text
        if not inst.is_random_next:
            assert {t // 1000 for t in b} == doc_a


def test_same_seed_same_instances():
    docs = documents(7)
    config = InstanceConfig(max_seq_length=32)
    runs = [list(create_instances(docs, config, no_mask, Draws(random.Random(1)), CLS, SEP))
            for _ in range(2)]
    assert runs[0] == runs[1]


def test_single_sentence_documents_pair_with_random_ones():
    docs = [[[1, 2, 3]], [[4, 5]], [[6]]]
    insts = list(create_instances(docs, InstanceConfig(max_seq_length=16), no_mask,
                                  Draws(random.Random(0)), CLS, SEP))
    assert len(insts) == 3 and all(i.is_random_next for i in insts)


def test_config_is_checked():
    with pytest.raises(NorbertError, match="max_seq_length"):
        InstanceConfig(max_seq_length=4)
    with pytest.raises(NorbertError, match="short_seq_prob"):
        InstanceConfig(short_seq_prob=2.0)
