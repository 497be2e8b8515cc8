"""``Draws`` consumes a ``random.Random`` exactly as its own methods do."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from norbert.data.draws import Draws, _StdlibDraws, matches_stdlib


def test_matches_this_pythons_random():
    assert matches_stdlib()
    assert type(Draws.for_rng(random.Random(0))) is Draws


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), lengths=st.lists(st.integers(0, 600), max_size=6))
def test_shuffle_is_random_shuffle(seed, lengths):
    ours, theirs = random.Random(seed), random.Random(seed)
    draws = Draws(ours)
    for n in lengths:
        a, b = list(range(n)), list(range(n))
        draws.shuffle(a)
        theirs.shuffle(b)
        assert a == b
    assert ours.getstate() == theirs.getstate()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), bounds=st.lists(st.tuples(st.integers(-5, 40000),
                                                             st.integers(0, 40000)), max_size=20))
def test_randint_and_random_interleave_like_random(seed, bounds):
    ours, theirs = random.Random(seed), random.Random(seed)
    draws = Draws(ours)
    for a, width in bounds:
        assert draws.randint(a, a + width) == theirs.randint(a, a + width)
        assert draws.random() == theirs.random()
        assert draws.below(width + 1) == theirs.randrange(width + 1)
    assert ours.getstate() == theirs.getstate()


def test_the_fallback_uses_the_methods_themselves():
    ours, theirs = random.Random(5), random.Random(5)
    draws = _StdlibDraws(ours)
    x, y = list(range(50)), list(range(50))
    draws.shuffle(x)
    theirs.shuffle(y)
    assert x == y
    assert draws.randint(0, 0) == theirs.randint(0, 0)  # still draws, as the reference does
    assert ours.getstate() == theirs.getstate()
