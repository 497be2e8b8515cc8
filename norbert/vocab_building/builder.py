"""Learning a WordPiece vocabulary from text, or filling the ``[unusedN]`` slots of one.

The learner works on the words ``FullTokenizer`` sees (``norbert.vocab_building.word_counts``), so everything
it learns can be produced at tokenisation time. It starts from single characters (bare at the
start of a word, ``##c`` inside one) and repeatedly merges the best adjacent pair of tokens into
a new token, until the vocab is full or no pair is seen ``min_frequency`` times. Two scores:

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

Efficiency: pair counts are kept up to date incrementally, with an index from each pair to the
words that contain it, so a merge rewrites only those words (and for ``likelihood``, from each
token to its pairs, whose scores change with the token's count). The best pair comes from a
heap with lazy invalidation: a popped entry whose score is stale goes back with its current
score. Ties are broken by the tokens' strings, so the result depends only on the counts.

The vocab file lists ``[PAD] [UNK] [CLS] [SEP] [MASK]`` (ids 0-4), then ``[unused0]`` ..
``[unusedN-1]``, then the alphabet (the kept characters bare, then as ``##c``), then learned
pieces in the order they were learned. Google's English vocabs put ``[unused0..98]`` between
``[PAD]`` and ``[UNK]``; nothing depends on that layout, and the simpler one keeps the five
specials at ids 0-4. CJK ideographs and punctuation get no ``##`` form: the tokenizer always
makes them words of their own, so such a token could never be produced.
"""

import collections
import dataclasses
import heapq
import logging
import math
import os
import re
import sys
import time
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from norbert import fileio
from norbert.tokenization import text as textlib
from norbert.tokenization import vocab as vocablib
from norbert.vocab_building import word_counts
from norbert.tokenization import wordpiece as wplib
from norbert.errors import NorbertError
from norbert.settings import one_config

CONTINUATION = wplib.CONTINUATION
FREQUENCY, LIKELIHOOD = "frequency", "likelihood"
MERGE_SCORES = (FREQUENCY, LIKELIHOOD)
_UNUSED_RE = re.compile(r"^\[unused\d+\]$")


@dataclasses.dataclass(frozen=True)
class VocabConfig:
    """What to learn from, and how; every field is a flag of ``scripts/build_vocab.py``."""

    # Comma-separated files or globs: plain text, .gz, or gs:// paths, read in the order given.
    input_file: str
    # Where vocab.txt goes; written atomically, so a failed run leaves nothing behind.
    output_file: str
    # Lines in the vocab, specials and [unusedN] included (BERT-base has 30,522). Fewer when
    # the corpus runs out of pairs seen min_frequency times. Ignored with extend_vocab.
    vocab_size: int = 30522
    # Lower-case and strip accents as the tokenizer will: an uncased vocab when True.
    do_lower_case: bool = True
    # A pair seen fewer times than this is never merged; with extend_vocab, a word seen fewer
    # times is never added. Pieces made from one rare word rarely help on new text.
    min_frequency: int = 2
    # [unusedN] slots after the specials: room for tokens added later without resizing the
    # model (see extend_vocab). Ignored with extend_vocab, which fills the existing slots.
    num_unused: int = 100
    # Share of character occurrences that the alphabet must cover, most frequent characters
    # first. Rarer characters get no token, so words that contain them become [UNK]; this keeps
    # a stray emoji or a few foreign-script letters from taking vocabulary space. 1.0 keeps all.
    character_coverage: float = 0.9999
    # How the next pair to merge is chosen: "frequency" (the most frequent pair, as BPE and
    # Hugging Face's WordPiece trainer do) or "likelihood" (the largest gain in unigram
    # likelihood, as Schuster & Nakajima's WordPiece). See the module docstring.
    merge_score: str = "frequency"
    # Read only lines that start before this many bytes of text (decompressed); 0 reads all.
    max_input_bytes: int = 0
    # Processes counting words (over byte ranges of plain files, whole .gz/remote files). The
    # counts, and so the vocab, do not depend on it.
    num_workers: int = 1
    # An existing vocab.txt (for example multilingual BERT's) whose [unusedN] slots are filled
    # with the corpus words that it splits into the most pieces; every other id stays.
    extend_vocab: Optional[str] = None
    # A progress bar (tqdm, or log lines without it) on stderr while reading and learning.
    progress: bool = False

    def __post_init__(self) -> None:
        """Raises ``NorbertError`` naming the flag for settings that cannot work."""
        if not self.input_file or not self.input_file.strip(","):
            raise NorbertError(
                "--input_file is required: give text files or globs, comma-separated"
            )
        if not self.output_file:
            raise NorbertError("--output_file is required: where to write vocab.txt")
        if self.vocab_size < 1:
            raise NorbertError("--vocab_size=%d must be positive" % self.vocab_size)
        if self.min_frequency < 1:
            raise NorbertError("--min_frequency=%d must be at least 1" % self.min_frequency)
        if self.num_unused < 0:
            raise NorbertError("--num_unused=%d must be 0 or more" % self.num_unused)
        if not 0.0 < self.character_coverage <= 1.0:
            raise NorbertError(
                "--character_coverage=%r must be in (0, 1], for example 0.9999"
                % self.character_coverage
            )
        if self.max_input_bytes < 0:
            raise NorbertError(
                "--max_input_bytes=%d must be 0 (no limit) or more" % self.max_input_bytes
            )
        if self.merge_score not in MERGE_SCORES:
            raise NorbertError(
                "--merge_score=%s must be one of: %s" % (self.merge_score, ", ".join(MERGE_SCORES))
            )
        if self.num_workers < 1:
            raise NorbertError("--num_workers=%d must be at least 1" % self.num_workers)


@dataclasses.dataclass(frozen=True)
class VocabStats:
    """What a run read and wrote."""

    files: int  # input files read
    bytes_read: int  # bytes of text read
    lines: int  # lines read
    words: int  # words counted (running words, not distinct)
    distinct_words: int  # distinct words
    vocab_size: int  # lines written
    alphabet: int  # distinct characters with tokens (learning only)
    dropped_characters: int  # distinct characters left out by character_coverage
    learned: int  # tokens learned by merging, or words added by extend_vocab
    tokens_per_word: float  # WordPiece tokens per word on the corpus, with the written vocab
    unk_words: int  # running words that become [UNK] with the written vocab
    seconds: float  # wall time of the whole run
    requested_size: int = 0  # --vocab_size (learning only)
    tokens_before: int = 0  # extend_vocab: tokens of the corpus with the old vocab
    tokens_after: int = 0  # extend_vocab: tokens of the corpus with the new vocab
    added: Tuple[str, ...] = ()  # extend_vocab: the words put into [unusedN] slots, in id order

    @property
    def shortened_percent(self) -> float:
        """extend_vocab: how much shorter the tokenized corpus became, in percent."""
        if not self.tokens_before:
            return 0.0
        return 100.0 * (self.tokens_before - self.tokens_after) / self.tokens_before

    def summary(self) -> str:
        lines = [
            "read %d files, %.1f MB, %d lines, %d words (%d distinct)"
            % (self.files, self.bytes_read / 1e6, self.lines, self.words, self.distinct_words),
        ]
        if self.tokens_before:
            lines.append(
                "filled %d [unusedN] slots; corpus tokens %d -> %d (%.2f%% shorter)"
                % (self.learned, self.tokens_before, self.tokens_after, self.shortened_percent)
            )
        else:
            lines.append(
                "wrote %d tokens: %d characters (%d rarer ones left out), %d learned pieces"
                % (self.vocab_size, self.alphabet, self.dropped_characters, self.learned)
            )
            if self.vocab_size < self.requested_size:
                lines.append(
                    "fewer than --vocab_size=%d: no pair left is seen --min_frequency times "
                    "(more text, or a lower --min_frequency, gives more)" % self.requested_size
                )
        lines.append(
            "%.3f tokens per word on the training text, %d words [UNK] (%.3f%%); %.1f s"
            % (self.tokens_per_word, self.unk_words,
               100.0 * self.unk_words / max(1, self.words), self.seconds)
        )
        return "\n".join(lines)


# -- progress ---------------------------------------------------------------------------------


class _Progress:
    """tqdm when it is installed, else a log line every 10 seconds; silent when disabled."""

    def __init__(self, enabled: bool, total: Optional[int], unit: str, desc: str):
        self._bar = None
        self._enabled = enabled
        self._count = 0
        self._extra = 0
        self._desc = desc
        self._unit = unit
        self._last = time.monotonic()
        if not enabled:
            return
        try:
            import tqdm
        except ImportError:
            return
        scale = unit == "B"
        self._bar = tqdm.tqdm(
            total=total, unit=unit, unit_scale=scale, unit_divisor=1024 if scale else 1000,
            desc=desc, file=sys.stderr, dynamic_ncols=True, mininterval=0.5,
        )

    def update(self, n: int, lines: int = 0, total: Optional[int] = None) -> None:
        if not self._enabled:
            return
        if total is not None and self._bar is not None and self._bar.total != total:
            self._bar.total = total
        self._count += n
        self._extra += lines
        if self._bar is not None:
            self._bar.update(n)
            if lines:
                self._bar.set_postfix_str("%d lines" % self._extra, refresh=False)
        elif time.monotonic() - self._last >= 10:
            self._last = time.monotonic()
            logging.info("%s: %d %s%s", self._desc, self._count, self._unit,
                         ", %d lines" % self._extra if self._extra else "")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# -- the learner ------------------------------------------------------------------------------


def _xlogx(x: float) -> float:
    return x * math.log(x) if x > 0 else 0.0


def can_continue(char: str) -> bool:
    """Whether ``##char`` can ever be produced: never for CJK ideographs and punctuation,
    which the tokenizer always makes words of their own, so their ``##`` forms would waste
    vocabulary slots."""
    return not (textlib.is_cjk(char) or textlib.is_punctuation(char))


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


def learn_pieces(
    word_counts_: Mapping[str, int],
    alphabet: Sequence[str],
    num_pieces: int,
    min_frequency: int = 2,
    merge_score: str = FREQUENCY,
    on_merge: Optional[Callable[[int], None]] = None,
) -> List[str]:
    """Up to ``num_pieces`` new tokens learned by merging pairs, in learned order.

    ``word_counts_`` maps normalised words to counts; words with a character outside
    ``alphabet`` or over the tokenizer's length limit are skipped (they are [UNK] anyway).
    ``merge_score`` is ``"frequency"`` or ``"likelihood"`` (see the module docstring).
    ``on_merge(num_pieces)`` is called once per learned token. Pure apart from that callback.
    """
    if merge_score not in MERGE_SCORES:
        raise NorbertError(
            "--merge_score=%s is not one of %s" % (merge_score, ", ".join(MERGE_SCORES))
        )
    likelihood = merge_score == LIKELIHOOD
    allowed = set(alphabet)
    continues = {c for c in alphabet if can_continue(c)}
    tokens: List[str] = []  # id -> string
    ids: Dict[str, int] = {}

    def token_id(s: str) -> int:
        i = ids.get(s)
        if i is None:
            i = ids[s] = len(tokens)
            tokens.append(s)
        return i

    for c in alphabet:
        token_id(c)
        if c in continues:
            token_id(CONTINUATION + c)

    # Words in a fixed order (most frequent first, then by string): ids and index order, and so
    # every tie, are the same for the same counts however they were gathered.
    segs: List[List[int]] = []
    freqs: List[int] = []
    for word, n in sorted(word_counts_.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(word) > wplib.MAX_CHARS_PER_WORD or not allowed.issuperset(word):
            continue
        if not continues.issuperset(word[1:]):
            continue  # a CJK or punctuation character inside a word: not a tokenizer word
        segs.append([ids[word[0]]] + [ids[CONTINUATION + c] for c in word[1:]])
        freqs.append(n)

    unigram = [0] * len(tokens)  # occurrences of each token in the current segmentation
    pair_count: Dict[Tuple[int, int], int] = {}
    # pair -> indices of the words that contain it. Entries are added, never removed while the
    # pair lives: a word that no longer holds the pair is skipped when the pair is merged.
    where: Dict[Tuple[int, int], set] = {}
    for w, seq in enumerate(segs):
        f = freqs[w]
        for t in seq:
            unigram[t] += f
        for key in zip(seq, seq[1:]):
            pair_count[key] = pair_count.get(key, 0) + f
            ws = where.get(key)
            if ws is None:
                where[key] = {w}
            else:
                ws.add(w)
    # Likelihood only: token -> pairs it is part of (pruned lazily), because the score of each
    # of those changes with the token's count.
    partners: List[set] = [set() for _ in tokens] if likelihood else []
    if likelihood:
        for key in pair_count:
            partners[key[0]].add(key)
            partners[key[1]].add(key)

    total = sum(unigram)
    n_log_n = _xlogx(total)
    xlogx = _xlogx

    def score(key: Tuple[int, int], c_ab: int) -> float:
        if not likelihood:
            return c_ab
        a, b = key
        c_a = unigram[a]
        if a == b:  # "aa": both halves come out of the same count
            g = xlogx(c_ab) + xlogx(max(0, c_a - 2 * c_ab)) - xlogx(c_a)
        else:
            c_b = unigram[b]
            g = xlogx(c_ab) + xlogx(c_a - c_ab) + xlogx(c_b - c_ab) - xlogx(c_a) - xlogx(c_b)
        return g + n_log_n - xlogx(total - c_ab)

    # Heap of (-score, string a, string b, a, b): best score first, ties by the strings.
    # pushed[key] is the score of the key's latest entry, which is still in the heap and is at
    # least the key's current score; a popped entry whose score is stale is pushed back.
    heap = []
    pushed: Dict[Tuple[int, int], float] = {}
    for key, c in pair_count.items():
        if c >= min_frequency:
            s = score(key, c)
            pushed[key] = s
            heap.append((-s, tokens[key[0]], tokens[key[1]], key[0], key[1]))
    heapq.heapify(heap)

    learned: List[str] = []
    heappush, heappop = heapq.heappush, heapq.heappop
    cut = len(CONTINUATION)
    while len(learned) < num_pieces and heap:
        neg, sa, sb, a, b = heappop(heap)
        key = (a, b)
        c = pair_count.get(key, 0)
        if c < min_frequency:
            pushed.pop(key, None)
            continue
        s = score(key, c)
        if s != -neg:  # stale: back with its current score
            pushed[key] = s
            heappush(heap, (-s, sa, sb, a, b))
            continue
        pushed.pop(key, None)

        merged_string = sa + sb[cut:]
        if merged_string in ids:  # another pair spelled it already: no new vocab entry
            t = ids[merged_string]
        else:
            t = token_id(merged_string)
            unigram.append(0)
            if likelihood:
                partners.append(set())
            learned.append(merged_string)
            if on_merge is not None:
                on_merge(num_pieces)

        # Rewrite every word that holds (a, b), left to right and non-overlapping, as if in
        # place: the left neighbour is the rewritten one, the right neighbour the old one.
        # Each occurrence turns (x, a) (a, b) (b, y) into (x, t) (t, y).
        delta: Dict[Tuple[int, int], int] = {}
        grown: Dict[Tuple[int, int], List[int]] = {}  # new pairs -> words that gained them
        merged = 0
        for w in where.pop(key, ()):
            seq = segs[w]
            if a not in seq:
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
        del pair_count[key]  # every occurrence was merged
        for k, d in delta.items():
            if k == key:  # (a, a) around a run of a: already gone
                continue
            c = pair_count.get(k, 0) + d
            if c > 0:
                if k not in pair_count and likelihood:
                    partners[k[0]].add(k)
                    partners[k[1]].add(k)
                pair_count[k] = c
            else:
                pair_count.pop(k, None)
                where.pop(k, None)  # no word holds it any more
        for k, ws in grown.items():
            if k in pair_count:
                where.setdefault(k, set()).update(ws)

        unigram[a] -= merged
        unigram[b] -= merged
        unigram[t] += merged
        if likelihood:
            # Token counts changed for a, b and t, and with them the score of every pair
            # they are part of; the score of a pair whose own count fell may rise too.
            changed = set(delta)
            for token in {a, b, t}:
                live = {k for k in partners[token] if k in pair_count}
                partners[token] = live
                changed |= live
        else:
            # A frequency falls only where a count fell: stale entries are fixed when popped.
            changed = [k for k, d in delta.items() if d > 0]
        for k in changed:
            c = pair_count.get(k, 0)
            if c < min_frequency:
                continue
            s = score(k, c)
            if s > pushed.get(k, -math.inf):
                pushed[k] = s
                heappush(heap, (-s, tokens[k[0]], tokens[k[1]], k[0], k[1]))
    return learned


# -- measuring --------------------------------------------------------------------------------


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


# -- the two jobs -----------------------------------------------------------------------------


def special_tokens(num_unused: int) -> List[str]:
    return list(vocablib.SPECIAL_TOKENS) + ["[unused%d]" % i for i in range(num_unused)]


def alphabet_tokens(alphabet: Sequence[str]) -> List[str]:
    """Every character bare, then as ``##c`` where the tokenizer can ever produce that."""
    return list(alphabet) + [CONTINUATION + c for c in alphabet if can_continue(c)]


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
) -> "LearnedVocab":
    """The vocab learned from word counts. Pure; ``build_vocab`` adds reading and writing."""
    alphabet, dropped = choose_alphabet(word_counts_, character_coverage)
    if not alphabet:
        raise NorbertError(
            "the corpus has no words: check --input_file (empty or only whitespace?)"
        )
    head = special_tokens(num_unused) + alphabet_tokens(alphabet)
    if len(head) > vocab_size:
        raise NorbertError(
            "--vocab_size=%d is too small: the specials and %d [unusedN] slots (%d) and the "
            "alphabet (%d characters, %d tokens with their ## forms) need %d: raise --vocab_size, "
            "or lower --character_coverage or --num_unused"
            % (vocab_size, num_unused, 5 + num_unused, len(alphabet),
               len(head) - 5 - num_unused, len(head))
        )
    pieces = learn_pieces(
        word_counts_, alphabet, vocab_size - len(head), min_frequency, merge_score, on_merge
    )
    return LearnedVocab(head + pieces, len(alphabet), dropped, len(pieces))


def _write_vocab(path: str, tokens: Sequence[str]) -> None:
    with fileio.atomic_output(path, "wb") as f:
        f.write(("\n".join(tokens) + "\n").encode("utf-8"))


def _check_output(path: str) -> None:
    """Fails before the reading and learning on an output path that cannot be written."""
    if os.path.isdir(path):
        raise NorbertError("--output_file %s is a folder: name a file in it" % path)
    fileio.check_writable_dir(os.path.dirname(os.path.abspath(path)), "--output_file")


def _count(config: VocabConfig):
    paths = fileio.expand_inputs(config.input_file, flag="--input_file")
    total = None
    if all(word_counts.splittable(p) for p in paths):
        total = sum(word_counts.file_size(p) for p in paths)
        if config.max_input_bytes:
            total = min(total, config.max_input_bytes)
    bar = _Progress(config.progress, total, "B", "reading")
    try:
        counts, read = word_counts.count_words(
            paths, config.do_lower_case, config.num_workers, config.max_input_bytes,
            on_progress=bar.update,
        )
    finally:
        bar.close()
    if not counts:
        raise NorbertError(
            "no words in --input_file=%s (%d bytes read): the files are empty or hold only "
            "whitespace; give the text files to learn from" % (config.input_file, read.bytes_read)
        )
    return counts, read


def build_vocab(config: Optional[VocabConfig] = None, **settings) -> VocabStats:
    """Reads the corpus, learns (or with ``extend_vocab`` fills) a vocab, writes it atomically.

    Takes a ``VocabConfig`` or its fields as keywords: ``build_vocab(input_file=...,
    output_file=..., vocab_size=8000)``.

    Raises ``NorbertError`` naming the flag or file for unusable settings or input; then
    nothing is written.
    """
    config = one_config("build_vocab", config, settings, VocabConfig)
    start = time.perf_counter()
    _check_output(config.output_file)
    if config.extend_vocab:
        return _extend(config, start)
    counts, read = _count(config)
    bar = _Progress(config.progress, None, "tok", "learning")
    try:
        learned = learn_vocab(
            counts, config.vocab_size, config.min_frequency, config.num_unused,
            config.character_coverage, config.merge_score,
            on_merge=lambda total: bar.update(1, total=total),
        )
    finally:
        bar.close()
    tokens = learned.tokens
    vocab = {t: i for i, t in enumerate(tokens)}
    n_tokens, unk = corpus_tokens(counts, vocab)
    n_words = sum(counts.values())
    _write_vocab(config.output_file, tokens)
    return VocabStats(
        files=read.files,
        bytes_read=read.bytes_read,
        lines=read.lines,
        words=n_words,
        distinct_words=len(counts),
        vocab_size=len(tokens),
        alphabet=learned.alphabet,
        dropped_characters=learned.dropped_characters,
        learned=learned.learned,
        requested_size=config.vocab_size,
        tokens_per_word=n_tokens / n_words,
        unk_words=unk,
        seconds=time.perf_counter() - start,
    )


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


def _extend(config: VocabConfig, start: float) -> VocabStats:
    old = vocablib.load_vocab(config.extend_vocab)
    reason = vocablib.casing_mismatch(old, config.do_lower_case)
    if reason:
        raise NorbertError("--extend_vocab=%s: %s" % (config.extend_vocab, reason))
    tokens = list(old)  # id order: load_vocab keeps the file's
    slots = [i for i, t in enumerate(tokens) if _UNUSED_RE.match(t)]
    if not slots:
        raise NorbertError(
            "--extend_vocab=%s has no [unusedN] lines to fill: growing the vocab would change "
            "the model's embedding size; build a new vocab instead" % config.extend_vocab
        )
    counts, read = _count(config)
    added = choose_additions(counts, old, len(slots), config.min_frequency)
    for slot, word in zip(slots, added):
        tokens[slot] = word
    new = {t: i for i, t in enumerate(tokens)}
    before, _ = corpus_tokens(counts, old)
    after, unk = corpus_tokens(counts, new)
    _write_vocab(config.output_file, tokens)
    n_words = sum(counts.values())
    return VocabStats(
        files=read.files,
        bytes_read=read.bytes_read,
        lines=read.lines,
        words=n_words,
        distinct_words=len(counts),
        vocab_size=len(tokens),
        alphabet=0,
        dropped_characters=0,
        learned=len(added),
        tokens_per_word=after / n_words,
        unk_words=unk,
        seconds=time.perf_counter() - start,
        tokens_before=before,
        tokens_after=after,
        added=tuple(added),
    )
