"""Masked-LM selection: which positions of a sequence to predict, and what the model sees there.

Works on token ids. Randomness comes in as a ``Draws`` (``norbert.data.draws``) over the one
``random.Random`` that the whole data build uses, so a seed fixes every record.

The selection is the reference's (Google's ``create_masked_lm_predictions``), draw for draw:

1. candidates are all positions but ``[CLS]`` and the two ``[SEP]``; with whole-word masking a
   ``##`` piece joins the candidate before it (so a ``##`` piece right after the middle
   ``[SEP]`` joins the last word of segment A, as in the reference);
2. the candidates are shuffled (``Random.shuffle``);
3. ``num_to_predict = min(max_predictions_per_seq, max(1, round(len(tokens) * masked_lm_prob)))``;
   candidates are taken in shuffled order until that many positions are chosen; a whole word
   that would overshoot it is skipped;
4. each chosen position is replaced by ``[MASK]`` (``random() < 0.8``), else kept
   (``random() < 0.5``), else replaced by a random vocab id (``randint(0, vocab_size - 1)``):
   BERT's 80/10/10 (``MASK_SHARE``, ``KEEP_SHARE``, ``RANDOM_SHARE``), drawn as the reference
   draws it, in two conditional steps.

With whole-word masking the reference (Google's ``--do_whole_word_mask``, which the
bert-tensorflow 1.0.4 package lacks) still makes the step-4 choice per piece: the reference's
known bug, which leaves some pieces of a "masked" word visible (kept, or a random id, beside
[MASK]ed pieces), and which reference-exact mode copies. ``MaskingConfig.per_word`` fixes it
with one choice per word (all its pieces masked, all kept, or all random) and leaves
reference-exact mode.

``Masker(..., exact=False)`` (the sharded builder) draws the same distribution with fewer draws:
the candidates are put in random order lazily, only as far as the budget needs (a partial
Fisher-Yates shuffle, ``Draws.shuffled_prefix``), rather than shuffled whole; the records then
differ from the reference's.
"""

import dataclasses
from typing import List, NamedTuple, Sequence

from norbert.data import defaults
from norbert.data.draws import Draws
from norbert.errors import NorbertError

# What becomes of a chosen position, as shares of all chosen positions (BERT's 80/10/10); the
# masks drawn at training time (norbert.training.dynamic_masking) use them as they are.
MASK_SHARE = 0.8  # replaced by [MASK]
KEEP_SHARE = 0.1  # kept as it is
RANDOM_SHARE = 0.1  # replaced by a random vocab id
# The reference draws the same shares in two steps: [MASK] when random() < MASK_SHARE; else
# kept when random() < this (0.1 / 0.2 = 0.5, exactly as the reference writes it), else random.
_KEEP_IF_NOT_MASKED = KEEP_SHARE / (KEEP_SHARE + RANDOM_SHARE)


@dataclasses.dataclass(frozen=True)
class MaskingConfig:
    """How masked-LM targets are chosen."""

    # Share of each sequence's tokens (special ones included, as in the reference) to predict.
    masked_lm_prob: float = defaults.MASKED_LM_PROB
    # Cap on predictions per sequence: the length of the masked_lm_* features.
    max_predictions_per_seq: int = defaults.MAX_PREDICTIONS_PER_SEQ
    # Mask all WordPiece pieces of a word together (a "##" piece belongs to the one before it).
    whole_word: bool = False
    # With whole_word: one [MASK]/keep/random choice per word rather than per piece, fixing
    # the reference's bug (its choice per piece leaves pieces of a masked word visible). Not
    # reference-exact.
    per_word: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.masked_lm_prob < 1.0:
            raise NorbertError(
                "--masked_lm_prob must be between 0 and 1 (got %r): 0.15 is BERT's"
                % self.masked_lm_prob
            )
        if self.max_predictions_per_seq <= 0:
            raise NorbertError(
                "--max_predictions_per_seq must be positive (got %d): use about "
                "max_seq_length * masked_lm_prob, e.g. 20 for 128 tokens"
                % self.max_predictions_per_seq
            )
        if self.per_word and not self.whole_word:
            raise NorbertError(
                "--whole_word_mask_per_word needs --do_whole_word_mask: pass both, or neither"
            )


class MaskedSequence(NamedTuple):
    """The masked-LM view of one sequence (``tokens`` was changed in place)."""

    tokens: List[int]  # [n] ids the model sees: chosen positions replaced
    positions: List[int]  # [m] chosen positions, ascending, m <= max_predictions_per_seq
    labels: List[int]  # [m] the original ids at those positions


class Masker:
    """Chooses and replaces masked-LM positions for one vocabulary and config."""

    def __init__(
        self,
        config: MaskingConfig,
        vocab_size: int,
        mask_id: int,
        continuation: Sequence[bool] = (),
        exact: bool = True,
    ):
        """``continuation[id]`` says whether token ``id`` is a ``##`` piece (whole-word only).

        ``exact=False`` orders the candidates lazily (fewer draws, not reference-exact).
        """
        if config.whole_word and len(continuation) != vocab_size:
            raise ValueError("whole-word masking needs continuation flags for every vocab id")
        self.config = config
        self.vocab_size = vocab_size
        self.mask_id = mask_id
        self.continuation = bytes(bool(c) for c in continuation)  # id -> 0/1
        self.exact = exact

    @classmethod
    def for_vocab(
        cls, config: MaskingConfig, vocab_words: Sequence[str], exact: bool = True
    ) -> "Masker":
        """A masker for a vocab given as its token list (list index = id)."""
        return cls(
            config,
            vocab_size=len(vocab_words),
            mask_id=list(vocab_words).index("[MASK]"),
            continuation=[w.startswith("##") for w in vocab_words],
            exact=exact,
        )

    def num_to_predict(self, length: int) -> int:
        """How many positions a sequence of ``length`` tokens gets (the reference's rounding)."""
        c = self.config
        return min(c.max_predictions_per_seq, max(1, int(round(length * c.masked_lm_prob))))

    def mask_pair(self, tokens: List[int], len_a: int, draws: Draws) -> MaskedSequence:
        """Masks ``[CLS] a.. [SEP] b.. [SEP]`` (``len_a`` tokens in a) in place."""
        n = len(tokens)
        candidates = list(range(1, len_a + 1))
        candidates.extend(range(len_a + 2, n - 1))
        return self.mask(tokens, candidates, draws)

    def mask(self, tokens: List[int], candidates: List[int], draws: Draws) -> MaskedSequence:
        """Masks ``tokens`` in place; ``candidates``: maskable positions, ascending (consumed)."""
        if self.config.whole_word:
            return self._mask_words(tokens, candidates, draws)
        return self._mask_pieces(tokens, candidates, draws)

    def _mask_pieces(self, tokens, candidates, draws) -> MaskedSequence:
        count = self.num_to_predict(len(tokens))
        if self.exact:
            draws.shuffle(candidates)
            chosen = candidates[:count]  # distinct: the reference's "covered" test is moot
        else:  # the first ``count`` steps of a front-to-back Fisher-Yates shuffle, inlined
            getrandbits = draws.rng.getrandbits
            n = len(candidates)
            count = min(count, n)
            for i in range(count):
                left = n - i
                k = left.bit_length()
                j = getrandbits(k)
                while j >= left:
                    j = getrandbits(k)
                j += i
                candidates[i], candidates[j] = candidates[j], candidates[i]
            chosen = candidates[:count]
        positions = sorted(chosen)
        labels = [tokens[p] for p in positions]  # read before any replacement
        random, below = draws.random, draws.below
        mask_id, vocab_size = self.mask_id, self.vocab_size
        for p in chosen:  # the draws go in shuffled order, as in the reference
            if random() < MASK_SHARE:
                tokens[p] = mask_id
            elif random() >= _KEEP_IF_NOT_MASKED:
                tokens[p] = below(vocab_size)  # randint(0, vocab_size - 1)
        return MaskedSequence(tokens, positions, labels)

    def _mask_words(self, tokens, candidates, draws) -> MaskedSequence:
        count = self.num_to_predict(len(tokens))
        continuation = self.continuation
        words: List[List[int]] = []
        for p in candidates:
            if words and continuation[tokens[p]]:
                words[-1].append(p)
            else:
                words.append([p])
        if self.exact:
            draws.shuffle(words)
            order = words
        else:
            order = draws.shuffled_prefix(words)
        chosen: List[List[int]] = []
        taken = 0
        for word in order:
            if taken >= count:
                break
            if taken + len(word) > count:
                continue  # a whole word would overshoot the budget: try a shorter one
            chosen.append(word)
            taken += len(word)
        # Words are disjoint, so the reference's "already covered" test never fires.
        positions = sorted(p for word in chosen for p in word)
        labels = [tokens[p] for p in positions]
        random, below = draws.random, draws.below
        mask_id, vocab_size = self.mask_id, self.vocab_size
        if self.config.per_word:
            for word in chosen:
                if random() < MASK_SHARE:
                    for p in word:
                        tokens[p] = mask_id
                elif random() >= _KEEP_IF_NOT_MASKED:
                    for p in word:
                        tokens[p] = below(vocab_size)
        else:
            for word in chosen:
                for p in word:
                    if random() < MASK_SHARE:
                        tokens[p] = mask_id
                    elif random() >= _KEEP_IF_NOT_MASKED:
                        tokens[p] = below(vocab_size)
        return MaskedSequence(tokens, positions, labels)


def leave_unmasked(tokens: List[int], len_a: int, draws: Draws) -> MaskedSequence:
    """``Masker.mask_pair``'s stand-in for ``--masking=dynamic``: nothing chosen, no draws
    (the masks are drawn at training time)."""
    return MaskedSequence(tokens, [], [])
