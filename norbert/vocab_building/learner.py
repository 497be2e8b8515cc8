"""The WordPiece learner: a vocabulary from word counts. Pure functions, no I/O.

The learner works on the words ``FullTokenizer`` sees (``norbert.vocab_building.word_counts``),
so everything it learns can be produced at tokenisation time. It starts from single characters
(bare at the start of a word, ``##c`` inside one) and repeatedly merges the best adjacent pair of
tokens into a new token, until the vocab is full or no pair is seen ``min_frequency`` times. Two
scores:

- ``frequency`` (the default): the pair seen most often. Each merge removes the most tokens from
  the training text, which is what a vocab is for: shorter sequences for the same text. It is
  also what Hugging Face's ``WordPieceTrainer`` does (it runs its BPE trainer with a ``##``
  prefix), and on held-out text it gives the fewest tokens per word of the scores we tried.
- ``likelihood``: the largest gain in the log-likelihood of the text under a unigram model of
  the tokens, Schuster & Nakajima's WordPiece criterion. For a pair (a, b) seen ``c_ab`` times,
  token counts ``c_a``, ``c_b`` and ``N`` tokens in all, with ``f(x) = x log x``::

      gain = f(c_ab) + f(c_a - c_ab) + f(c_b - c_ab) - f(c_a) - f(c_b) + f(N) - f(N - c_ab)

  (``N`` held at its starting value, so that a score changes only when its pair's or its
  tokens' counts do). It prefers cohesive pairs over merely frequent ones; on held-out text it
  gave 1-2% more tokens per word than ``frequency`` and learns several times slower
  (``benchmarks/vocab_builder.py``).

The ratio ``c_ab / (c_a * c_b)`` often quoted for WordPiece was measured too and rejected: it
ranks pairs of rare tokens first (two tokens seen once, together, score highest), spends the
vocab on rare words, and gave 2.6 times as many tokens per word on held-out text.

The steps, each a function below: ``choose_alphabet`` (the characters by coverage),
``_initial_tokens`` and ``_segment_words`` (every word as its character tokens), ``_PairCounts``
(token and pair counts, kept up to date merge by merge), ``_PairHeap`` (the best pair next),
``learn_pieces`` (the merge loop) and ``learn_vocab`` (the vocab in id order).

Efficiency: pair counts are kept up to date incrementally, with an index from each pair to the
words that contain it, so a merge rewrites only those words (and for ``likelihood``, from each
token to its pairs, whose scores change with the token's count). The best pair comes from a
heap with lazy invalidation: a popped entry whose score is stale goes back with its current
score. Ties are broken by the tokens' strings, so the result depends only on the counts.

The vocab lists ``[PAD] [UNK] [CLS] [SEP] [MASK]`` (ids 0-4), then ``[unused0]`` ..
``[unusedN-1]``, then the alphabet (the kept characters bare, then as ``##c``), then learned
pieces in the order they were learned. Google's English vocabs put ``[unused0..98]`` between
``[PAD]`` and ``[UNK]``; nothing depends on that layout, and the simpler one keeps the five
specials at ids 0-4. The tokenizer's never-split words, if any, follow the ``[unusedN]`` slots.
CJK ideographs and punctuation get no ``##`` form: the tokenizer makes them words of their own
(CJK unless ``tokenize_chinese_chars`` is off), so such a token could never be produced.

For an existing vocab, ``choose_additions`` picks the words for its ``[unusedN]`` slots, and
``corpus_tokens`` measures any vocab on the counted corpus.
"""

import collections
import heapq
import math
from typing import (AbstractSet, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional,
                    Sequence, Set, Tuple)

from norbert.errors import NorbertError
from norbert.tokenization import text as textlib
from norbert.tokenization import vocab as vocablib
from norbert.tokenization import wordpiece as wplib

CONTINUATION = wplib.CONTINUATION
FREQUENCY, LIKELIHOOD = "frequency", "likelihood"
MERGE_SCORES = (FREQUENCY, LIKELIHOOD)


def check_merge_score(merge_score: str) -> None:
    """``NorbertError`` naming the flag for a merge score the learner does not know: the one
    check, made by ``VocabConfig`` on construction and by the learner for direct callers."""
    if merge_score not in MERGE_SCORES:
        raise NorbertError("--merge_score=%s must be one of: %s"
                           % (merge_score, ", ".join(MERGE_SCORES)))


Pair = Tuple[int, int]  # (left token id, right token id), adjacent in a word
Segments = List[List[int]]  # [words][tokens of the word]: each word's current segmentation


def can_continue(char: str, split_cjk: bool = True) -> bool:
    """Whether ``##char`` can ever be produced: never for punctuation, nor for CJK ideographs
    unless the tokenizer leaves them in their words (``split_cjk=False``, Hugging Face's
    ``tokenize_chinese_chars=False``); the tokenizer makes those words of their own, so their
    ``##`` forms would waste vocabulary slots."""
    return not ((split_cjk and textlib.is_cjk(char)) or textlib.is_punctuation(char))


# -- step 1: the alphabet ---------------------------------------------------------------------


def choose_alphabet(word_counts_: Mapping[str, int], coverage: float) -> Tuple[List[str], int]:
    """The most frequent characters covering ``coverage`` of all character occurrences (ties
    by the character), sorted; and how many distinct characters were left out."""
    chars = collections.Counter()
    for word, n in word_counts_.items():
        for c in word:
            chars[c] += n
    total = sum(chars.values())
    ranked = sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = []
    covered = 0
    for c, n in ranked:
        if covered >= coverage * total:
            break
        kept.append(c)
        covered += n
    return sorted(kept), len(ranked) - len(kept)


# -- step 2: the words as character tokens ----------------------------------------------------


def _initial_tokens(alphabet: Sequence[str], continues: Set[str]) -> List[str]:
    """The tokens before any merge, by id: each character, followed by its ``##`` form where
    the tokenizer can produce that (``continues``)."""
    tokens: List[str] = []
    for c in alphabet:
        tokens.append(c)
        if c in continues:
            tokens.append(CONTINUATION + c)
    return list(dict.fromkeys(tokens))  # a character given twice still gets one id


def _segment_words(
    word_counts_: Mapping[str, int], alphabet: Set[str], continues: Set[str],
    ids: Mapping[str, int],
) -> Tuple[Segments, List[int]]:
    """Every usable word as its character tokens (``[c, ##c, ##c ...]`` ids), and its count.

    Skipped, as the tokenizer makes them [UNK] or never sees them: words over its length limit,
    with a character outside ``alphabet``, or with a character inside that cannot continue a
    word (``continues``: punctuation, and CJK when split; the tokenizer would have split
    there). Words come in a fixed order, most frequent first, then by string: word indices,
    and so every tie later, are the same for the same counts however they were gathered.
    """
    segs: Segments = []
    freqs: List[int] = []  # [words]
    for word, n in sorted(word_counts_.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(word) > wplib.MAX_CHARS_PER_WORD or not alphabet.issuperset(word):
            continue
        if not continues.issuperset(word[1:]):
            continue
        segs.append([ids[word[0]]] + [ids[CONTINUATION + c] for c in word[1:]])
        freqs.append(n)
    return segs, freqs


# -- step 3: counts kept up to date -----------------------------------------------------------


def _xlogx(x: float) -> float:
    return x * math.log(x) if x > 0 else 0.0


class _PairCounts:
    """Token and adjacent-pair counts of the current segmentation, updated merge by merge.

    ``unigram``: [tokens] occurrences of each token (word counts summed).
    ``pairs``: pair -> occurrences; only pairs that occur are present.
    ``where``: pair -> indices of the words that hold it. Entries are added, never removed
    while the pair lives: a word that no longer holds the pair is skipped when it is merged.
    ``partners`` (likelihood only): [tokens] the pairs each token is part of, pruned lazily,
    because the score of each of those changes with the token's count.
    """

    def __init__(self, segs: Segments, freqs: List[int], num_tokens: int, likelihood: bool):
        self.likelihood = likelihood
        self.unigram = [0] * num_tokens
        self.pairs: Dict[Pair, int] = {}
        self.where: Dict[Pair, Set[int]] = {}
        unigram, pairs, where = self.unigram, self.pairs, self.where
        for w, seq in enumerate(segs):
            f = freqs[w]
            for t in seq:
                unigram[t] += f
            for key in zip(seq, seq[1:]):
                pairs[key] = pairs.get(key, 0) + f
                ws = where.get(key)
                if ws is None:
                    where[key] = {w}
                else:
                    ws.add(w)
        self.partners: List[Set[Pair]] = []
        if likelihood:
            self.partners = [set() for _ in range(num_tokens)]
            for key in pairs:
                self.partners[key[0]].add(key)
                self.partners[key[1]].add(key)

    def add_token(self) -> None:
        """Room for a token just learned (its id is the next one)."""
        self.unigram.append(0)
        if self.likelihood:
            self.partners.append(set())

    def scorer(self) -> Callable[[Pair, int], float]:
        """``score(pair, count)``: the count itself for ``frequency``; for ``likelihood`` the
        gain of the module docstring, read from the current token counts. A closure rather than
        a method: it runs for every changed pair after every merge."""
        if not self.likelihood:
            return lambda key, c_ab: c_ab
        unigram = self.unigram  # grows in place as tokens are learned: the closure sees it
        total = sum(unigram)  # N held at its starting value (see the module docstring)
        n_log_n = _xlogx(total)
        xlogx = _xlogx

        def score(key: Pair, c_ab: int) -> float:
            a, b = key
            c_a = unigram[a]
            if a == b:  # "aa": both halves come out of the same count
                g = xlogx(c_ab) + xlogx(max(0, c_a - 2 * c_ab)) - xlogx(c_a)
            else:
                c_b = unigram[b]
                g = xlogx(c_ab) + xlogx(c_a - c_ab) + xlogx(c_b - c_ab) - xlogx(c_a) - xlogx(c_b)
            return g + n_log_n - xlogx(total - c_ab)

        return score

    def merge(self, segs: Segments, freqs: List[int], key: Pair, t: int) -> Iterable[Pair]:
        """Rewrites every word holding ``key`` with token ``t`` in its place and updates the
        counts; returns the pairs whose score may have risen (the others are fixed lazily,
        when popped)."""
        a, b = key
        delta, grown, merged = _rewrite_words(segs, freqs, self.where.pop(key, ()), a, b, t)
        pairs, where = self.pairs, self.where
        del pairs[key]  # every occurrence was merged
        for k, d in delta.items():
            if k == key:  # (a, a) around a run of a: already gone
                continue
            c = pairs.get(k, 0) + d
            if c > 0:
                if k not in pairs and self.likelihood:
                    self.partners[k[0]].add(k)
                    self.partners[k[1]].add(k)
                pairs[k] = c
            else:
                pairs.pop(k, None)
                where.pop(k, None)  # no word holds it any more
        for k, ws in grown.items():
            if k in pairs:
                where.setdefault(k, set()).update(ws)

        unigram = self.unigram
        unigram[a] -= merged
        unigram[b] -= merged
        unigram[t] += merged
        if not self.likelihood:
            # A frequency falls only where a count fell: stale entries are fixed when popped.
            return [k for k, d in delta.items() if d > 0]
        # Token counts changed for a, b and t, and with them the score of every pair they are
        # part of; the score of a pair whose own count fell may rise too.
        changed = set(delta)
        for token in {a, b, t}:
            live = {k for k in self.partners[token] if k in pairs}
            self.partners[token] = live
            changed |= live
        return changed


def _rewrite_words(
    segs: Segments, freqs: List[int], words: Iterable[int], a: int, b: int, t: int
) -> Tuple[Dict[Pair, int], Dict[Pair, List[int]], int]:
    """Replaces each (a, b) in the ``words`` (indices into ``segs``) by ``t``.

    Left to right and non-overlapping, as if in place: the left neighbour is the rewritten one,
    the right neighbour the old one. Each occurrence turns (x, a) (a, b) (b, y) into
    (x, t) (t, y). Returns ``delta`` (pair -> change of its count), ``grown`` (each new pair ->
    the words that gained it, for the pair index) and how many (a, b) were merged, weighted by
    the words' counts.
    """
    delta: Dict[Pair, int] = {}
    grown: Dict[Pair, List[int]] = {}
    merged = 0
    for w in words:
        seq = segs[w]
        if a not in seq:  # the index is a superset: this word lost the pair to a merge
            continue
        f = freqs[w]
        out: List[int] = []
        i = 0
        n = len(seq)
        while i < n:
            x = seq[i]
            if x == a and i + 1 < n and seq[i + 1] == b:
                if out:
                    left = out[-1]
                    k = (left, a)
                    delta[k] = delta.get(k, 0) - f
                    k = (left, t)
                    delta[k] = delta.get(k, 0) + f
                    grown.setdefault(k, []).append(w)
                if i + 2 < n:
                    right = seq[i + 2]
                    k = (b, right)
                    delta[k] = delta.get(k, 0) - f
                    k = (t, right)
                    delta[k] = delta.get(k, 0) + f
                    grown.setdefault(k, []).append(w)
                out.append(t)
                merged += f
                i += 2
            else:
                out.append(x)
                i += 1
        segs[w] = out
    return delta, grown, merged


# -- step 4: the best pair next ---------------------------------------------------------------


class _PairHeap:
    """The pairs seen ``min_frequency`` times or more, best score first, ties by the tokens'
    strings (so the result depends only on the counts, never on ids or dict order).

    Entries are (-score, string a, string b, a, b). Scores change after every merge; rather
    than finding and fixing old entries, a pair whose score rose gets a new entry (``offer``),
    and a popped entry whose score is stale goes back with its current one (``pop``).
    ``pushed[pair]`` is the score of the pair's latest entry, which is still in the heap and is
    at least the pair's current score.
    """

    def __init__(self, counts: _PairCounts, score: Callable[[Pair, int], float],
                 tokens: List[str], min_frequency: int):
        self.counts = counts
        self.score = score
        self.tokens = tokens  # grows in place as tokens are learned
        self.min_frequency = min_frequency
        self.pushed: Dict[Pair, float] = {}
        self.heap = []
        for key, c in counts.pairs.items():
            if c >= min_frequency:
                s = score(key, c)
                self.pushed[key] = s
                self.heap.append((-s, tokens[key[0]], tokens[key[1]], key[0], key[1]))
        heapq.heapify(self.heap)

    def pop(self) -> Optional[Pair]:
        """The best pair by its current score, or None when no pair is frequent enough."""
        heap, pushed, pairs = self.heap, self.pushed, self.counts.pairs
        while heap:
            neg, sa, sb, a, b = heapq.heappop(heap)
            key = (a, b)
            c = pairs.get(key, 0)
            if c < self.min_frequency:
                pushed.pop(key, None)
                continue
            s = self.score(key, c)
            if s != -neg:  # stale: back with its current score
                pushed[key] = s
                heapq.heappush(heap, (-s, sa, sb, a, b))
                continue
            pushed.pop(key, None)
            return key
        return None

    def offer(self, keys: Iterable[Pair]) -> None:
        """New entries for the ``keys`` whose current score beats their latest entry."""
        heap, pushed, pairs, tokens = self.heap, self.pushed, self.counts.pairs, self.tokens
        score, min_frequency, heappush = self.score, self.min_frequency, heapq.heappush
        for k in keys:
            c = pairs.get(k, 0)
            if c < min_frequency:
                continue
            s = score(k, c)
            if s > pushed.get(k, -math.inf):
                pushed[k] = s
                heappush(heap, (-s, tokens[k[0]], tokens[k[1]], k[0], k[1]))


# -- step 5: the merge loop -------------------------------------------------------------------


def learn_pieces(
    word_counts_: Mapping[str, int],
    alphabet: Sequence[str],
    num_pieces: int,
    min_frequency: int = 2,
    merge_score: str = FREQUENCY,
    on_merge: Optional[Callable[[int], None]] = None,
    reserved: AbstractSet[str] = frozenset(),
    split_cjk: bool = True,
) -> List[str]:
    """Up to ``num_pieces`` new tokens learned by merging pairs, in learned order.

    ``word_counts_`` maps normalised words to counts; words with a character outside
    ``alphabet`` or over the tokenizer's length limit are skipped (they are [UNK] anyway).
    ``merge_score`` is ``"frequency"`` or ``"likelihood"`` (see the module docstring).
    ``reserved`` tokens are in the vocab already: merged, they are used but not returned.
    ``split_cjk`` is the tokenizer's ``tokenize_chinese_chars`` (see ``can_continue``).
    ``on_merge(num_pieces)`` is called once per learned token. Pure apart from that callback.
    """
    continues = {c for c in alphabet if can_continue(c, split_cjk)}
    tokens = _initial_tokens(alphabet, continues)  # id -> string; learned tokens appended
    ids = {s: i for i, s in enumerate(tokens)}
    segs, freqs = _segment_words(word_counts_, set(alphabet), continues, ids)
    return _merge_loop(segs, freqs, tokens, ids, num_pieces, min_frequency, merge_score,
                       on_merge, reserved)


def _merge_loop(segs: Segments, freqs: List[int], tokens: List[str], ids: Dict[str, int],
                num_pieces: int, min_frequency: int, merge_score: str,
                on_merge: Optional[Callable[[int], None]],
                reserved: AbstractSet[str] = frozenset()) -> List[str]:
    """Merges the best pair of ``segs`` (words as token ids; ``tokens`` and ``ids`` grow in
    place) until ``num_pieces`` new tokens are learned or no pair is frequent enough."""
    check_merge_score(merge_score)
    counts = _PairCounts(segs, freqs, len(tokens), merge_score == LIKELIHOOD)
    heap = _PairHeap(counts, counts.scorer(), tokens, min_frequency)

    learned: List[str] = []
    cut = len(CONTINUATION)
    while len(learned) < num_pieces:
        key = heap.pop()
        if key is None:
            break
        a, b = key
        merged_string = tokens[a] + tokens[b][cut:]
        t = ids.get(merged_string)
        if t is None:  # else another pair spelled it already: no new vocab entry
            t = ids[merged_string] = len(tokens)
            tokens.append(merged_string)
            counts.add_token()
            if merged_string not in reserved:
                learned.append(merged_string)
                if on_merge is not None:
                    on_merge(num_pieces)
        heap.offer(counts.merge(segs, freqs, key, t))
    return learned


# -- step 6: the vocab in id order ------------------------------------------------------------


def special_tokens(num_unused: int) -> List[str]:
    return list(vocablib.SPECIAL_TOKENS) + ["[unused%d]" % i for i in range(num_unused)]


def alphabet_tokens(alphabet: Sequence[str], split_cjk: bool = True) -> List[str]:
    """Every character bare, then as ``##c`` where the tokenizer can ever produce that."""
    return list(alphabet) + [CONTINUATION + c for c in alphabet if can_continue(c, split_cjk)]


class LearnedVocab(NamedTuple):
    tokens: List[str]  # the vocab in id order
    alphabet: int  # distinct characters with tokens
    dropped_characters: int  # distinct characters left out by character_coverage
    learned: int  # tokens learned by merging


def learn_vocab(
    word_counts_: Mapping[str, int],
    vocab_size: int,
    min_frequency: int = 2,
    num_unused: int = 0,
    character_coverage: float = 1.0,
    merge_score: str = FREQUENCY,
    on_merge: Optional[Callable[[int], None]] = None,
    whole_words: Sequence[str] = (),
    split_cjk: bool = True,
) -> LearnedVocab:
    """The vocab learned from word counts: specials, ``[unusedN]``, ``whole_words`` (the
    tokenizer's never-split words), the alphabet, then as many learned pieces as ``vocab_size``
    leaves room for; ``split_cjk`` is the tokenizer's ``tokenize_chinese_chars``. Pure;
    ``build_vocab`` adds reading and writing."""
    alphabet, dropped = choose_alphabet(word_counts_, character_coverage)
    if not alphabet:
        raise NorbertError(
            "the corpus has no words: check --input_file (empty or only whitespace?)"
        )
    specials = special_tokens(num_unused)
    whole = [w for w in whole_words if w not in specials]
    head = specials + whole + [t for t in alphabet_tokens(alphabet, split_cjk) if t not in whole]
    if len(head) > vocab_size:
        raise NorbertError(
            "--vocab_size=%d is too small: the specials and %d [unusedN] slots (%d)%s and the "
            "alphabet (%d characters, %d tokens with their ## forms) need %d: raise --vocab_size, "
            "or lower --character_coverage or --num_unused"
            % (vocab_size, num_unused, len(specials),
               ", %d never-split words" % len(whole) if whole else "", len(alphabet),
               len(head) - len(specials) - len(whole), len(head))
        )
    pieces = learn_pieces(
        word_counts_, alphabet, vocab_size - len(head), min_frequency, merge_score, on_merge,
        reserved=frozenset(whole), split_cjk=split_cjk,
    )
    return LearnedVocab(head + pieces, len(alphabet), dropped, len(pieces))


# -- an existing vocab: measuring it, filling its [unusedN] slots -----------------------------


def corpus_tokens(word_counts_: Mapping[str, int], vocab) -> Tuple[int, int]:
    """(WordPiece tokens, running words that become [UNK]) of the counted corpus with ``vocab``:
    exactly what ``FullTokenizer`` would give, one word at a time."""
    bounds = wplib.piece_bounds(vocab)
    tokens = unk = 0
    for word, n in word_counts_.items():
        pieces = wplib.wordpiece(word, vocab, vocablib.UNK, bounds=bounds)
        tokens += n * len(pieces)
        if pieces == [vocablib.UNK]:
            unk += n
    return tokens, unk


def learn_additions(word_counts_: Mapping[str, int], vocab: Mapping[str, int], num_tokens: int,
                    min_frequency: int = 2, merge_score: str = FREQUENCY) -> List[str]:
    """Up to ``num_tokens`` new tokens for an existing ``vocab``, learned as ``learn_pieces``
    learns, but from each word as ``vocab``'s WordPiece splits it rather than from its
    characters: each new token joins two adjacent pieces, most frequent pair first, so that
    the corpus shortens the most. Words ``vocab`` makes [UNK] are left out (their characters
    are missing; a token for one of them would serve that word alone)."""
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]  # id -> string
    ids = {t: i for i, t in enumerate(tokens)}
    bounds = wplib.piece_bounds(vocab)
    segs: Segments = []
    freqs: List[int] = []
    for word, n in sorted(word_counts_.items(), key=lambda kv: (-kv[1], kv[0])):
        pieces = wplib.wordpiece(word, vocab, vocablib.UNK, bounds=bounds)
        if len(pieces) > 1:  # a whole word (or [UNK]) holds no pair
            segs.append([ids[p] for p in pieces])
            freqs.append(n)
    return _merge_loop(segs, freqs, tokens, ids, num_tokens, min_frequency, merge_score, None)


def choose_additions(
    word_counts_: Mapping[str, int], vocab: Mapping[str, int], slots: int, min_frequency: int
) -> List[str]:
    """The ``slots`` words that save the most tokens as whole tokens: count * (pieces - 1) with
    ``vocab``'s WordPiece, ties by the word. Words the vocab makes [UNK] are left out: their
    characters are missing, and a whole-word token would help that one word only."""
    bounds = wplib.piece_bounds(vocab)
    ranked = []
    for word, n in word_counts_.items():
        if n < min_frequency or word in vocab or len(word) > wplib.MAX_CHARS_PER_WORD:
            continue
        pieces = wplib.wordpiece(word, vocab, vocablib.UNK, bounds=bounds)
        if len(pieces) > 1:
            ranked.append((-n * (len(pieces) - 1), word))
    return [word for _, word in heapq.nsmallest(slots, ranked)]
