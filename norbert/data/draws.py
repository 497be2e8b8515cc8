"""Random draws that follow ``random.Random``'s own methods call for call, with less overhead.

The reference data builder hands one ``random.Random`` through every choice, so reproducing its
records means reproducing its exact sequence of draws. ``Random.shuffle`` and ``Random.randint``
are Python code on top of two C primitives, ``getrandbits(k)`` and ``random()``:

- ``_randbelow(n)`` draws ``getrandbits(n.bit_length())`` until the value is below ``n``
  (rejection sampling; ``n == 1`` still draws, one bit at a time, until it gets a 0);
- ``randint(a, b)`` is ``a + _randbelow(b - a + 1)``;
- ``shuffle(x)`` swaps ``x[i]`` with ``x[_randbelow(i + 1)]`` for ``i`` from ``len(x) - 1``
  down to 1.

``Draws`` calls the same primitives in the same order without the method layers, which matters
in the masking hot path (one shuffle of every sequence's ~125 candidate positions). Should a
future Python change those algorithms, ``Draws.for_rng`` notices (``matches_stdlib``) and falls
back to the ``random.Random`` methods themselves, which is what the reference calls.
"""

import functools
import random
from typing import Dict, Iterator, MutableSequence, Sequence, Tuple

_STEPS_CACHE = 4096  # shuffle schedules kept for lists up to this length


def _schedule(n: int) -> Tuple[Tuple[int, int], ...]:
    """``(i, bit_length(i + 1))`` for each step of a Fisher-Yates shuffle of ``n`` items."""
    return tuple((i, (i + 1).bit_length()) for i in range(n - 1, 0, -1))


class Draws:
    """The draws of one ``random.Random``: ``random()``, ``below(n)``, ``randint``, ``shuffle``.

    Every method consumes exactly what the same-named ``random.Random`` method would, so the
    wrapped generator can be used directly before, between and after calls.
    """

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.random = rng.random  # bound C method: one 53-bit float from two 32-bit words
        self._getrandbits = rng.getrandbits
        self._schedules: Dict[int, Tuple[Tuple[int, int], ...]] = {}

    @classmethod
    def for_rng(cls, rng: random.Random) -> "Draws":
        """The fast draws when they agree with this Python's ``random``, else the stdlib's own."""
        return cls(rng) if matches_stdlib() else _StdlibDraws(rng)

    def below(self, n: int) -> int:
        """Uniform in ``[0, n)``, as ``Random._randbelow(n)`` (``n >= 1``)."""
        k = n.bit_length()
        r = self._getrandbits(k)
        while r >= n:
            r = self._getrandbits(k)
        return r

    def randint(self, a: int, b: int) -> int:
        """Uniform in ``[a, b]``, as ``Random.randint(a, b)``."""
        return a + self.below(b - a + 1)

    def schedule(self, n: int) -> Tuple[Tuple[int, int], ...]:
        """The shuffle steps for ``n`` items, cached: the hot path shuffles the same lengths."""
        steps = self._schedules.get(n)
        if steps is None:
            steps = _schedule(n)
            if n <= _STEPS_CACHE:
                self._schedules[n] = steps
        return steps

    def shuffle(self, x: MutableSequence) -> None:
        """Shuffles ``x`` in place exactly as ``Random.shuffle(x)``."""
        getrandbits = self._getrandbits
        for i, k in self.schedule(len(x)):
            j = getrandbits(k)
            while j > i:
                j = getrandbits(k)
            x[i], x[j] = x[j], x[i]

    def shuffled_prefix(self, x: MutableSequence) -> Iterator:
        """The items of ``x`` in a uniformly random order, drawn lazily (changes ``x``).

        Fisher-Yates from the front, one step per item taken: a caller that needs only the
        first ``k`` of ``n`` items pays ``k`` draws rather than a whole shuffle's ``n - 1``.
        Not ``Random.shuffle``'s order: for the modes that are not reference-exact.
        """
        below = self.below
        n = len(x)
        for i in range(n - 1):
            j = i + below(n - i)
            x[i], x[j] = x[j], x[i]
            yield x[i]
        if n:
            yield x[n - 1]


class _StdlibDraws(Draws):
    """The same interface through ``random.Random``'s public methods (the safe fallback)."""

    def below(self, n: int) -> int:
        return self.rng.randrange(n)

    def randint(self, a: int, b: int) -> int:
        return self.rng.randint(a, b)

    def shuffle(self, x: MutableSequence) -> None:
        self.rng.shuffle(x)


@functools.lru_cache(maxsize=None)
def matches_stdlib() -> bool:
    """Whether ``Draws`` reproduces this interpreter's ``random.Random`` (checked once)."""
    return _same_draws(seed=20240601)


def _same_draws(seed: int) -> bool:
    ours, theirs = random.Random(seed), random.Random(seed)
    draws = Draws(ours)
    for n in (1, 2, 3, 5, 7, 8, 9, 100, 127, 128, 129, 30522, 1 << 20):
        for _ in range(20):
            if draws.randint(0, n - 1) != theirs.randint(0, n - 1):
                return False
            if draws.randint(2, n + 2) != theirs.randint(2, n + 2):
                return False
    for n in (0, 1, 2, 3, 17, 64, 125, 509):
        a, b = list(range(n)), list(range(n))
        draws.shuffle(a)
        theirs.shuffle(b)
        if a != b:
            return False
    return draws.random() == theirs.random() and ours.getstate() == theirs.getstate()


def shuffled(items: Sequence, draws: Draws) -> list:
    """A shuffled copy of ``items``."""
    out = list(items)
    draws.shuffle(out)
    return out
