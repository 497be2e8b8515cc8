"""Held-out documents (``--heldout_documents=N --heldout_output_file=PATH``): which documents of
the input stay out of the training records, and their records of their own.

**Which.** A document is a run of non-blank lines as the builders read it
(``norbert.data.slices.numbered_lines``). Its identity is its text: the digest of its
normalised lines (``norbert.data.dedup``: NFC, whitespace runs as one space), and its *key* a
hash of that digest keyed by ``--random_seed``. The held-out documents are the N distinct
documents with the smallest keys among those that yield tokens: exactly N, a uniform draw for
the seed, and the same in every mode (reference-exact, sharded, Beam), because a key depends
on the text and the seed alone, never on where a worker's slice starts or on which worker
reads it. Each slice keeps the N smallest keys it meets (``slice_candidates``: memory of N
documents, whatever the input), and the N smallest of all slices' are the input's
(``choose``): a key among the input's N smallest is among the N smallest of every slice that
holds it. Whether a document yields tokens is asked of the tokenizer only for the few that
come among a slice's N smallest (about ``N * (1 + ln(documents / N))`` of them).

Copies of a held-out document (the same normalised text, anywhere in the input) are left out of
the training records too, so that no held-out text is trained on; the held-out records hold
each held-out document once (its first copy in input order). With ``--dedup=exact`` the draw
is the same: it is among distinct texts either way.

**The records.** The held-out documents, in input order, go through the reference-exact
builder's steps (``norbert.data.builder``): shuffled by a ``random.Random(random_seed)``,
``--dupe_factor`` passes with the build's pairing, masking and lengths (the same settings as
the training records, so the two are read alike), all records shuffled, written to PATH (one
file) with its sidecar. So the held-out file is the same, byte for byte, in every mode.

**The sidecars.** The training records' say ``"heldout": {"role": "training", "documents": N,
"random_seed": ..., "heldout_output_file": PATH}`` (and ``heldout_documents`` /
``heldout_output_file`` among their settings, so that a sharded rerun with another split
rebuilds its shards); PATH's says ``{"role": "held-out", ..., "training_output_files": [...]}``.
"""

import dataclasses
import hashlib
import heapq
import itertools
import operator
import random
from typing import Dict, FrozenSet, Iterable, List, Sequence, Tuple

from norbert.data import dedup, sidecar, slices, tfrecord
from norbert.data.config import DataSummary
from norbert.data.documents import CorpusStats, Encode
from norbert.data.draws import Draws
from norbert.data.record_writing import collect_records
from norbert.errors import NorbertError

KEY_BYTES = 16


def key_of(seed: int, digest: bytes) -> bytes:
    """The draw's key of a document whose text has ``digest``: smaller keys are held out."""
    salt = b"norbert-heldout/%d" % seed
    return hashlib.blake2b(digest, digest_size=KEY_BYTES, key=salt).digest()


def runs(lines: Iterable[Tuple[str, int]]) -> Iterable[Tuple[int, List[str]]]:
    """``(ordinal, stripped lines)`` of each document of a slice's ``(line, bytes)`` pairs."""
    numbered = ((ordinal, line) for ordinal, line, _ in slices.numbered_lines(iter(lines))
                if ordinal >= 0)
    for ordinal, run in itertools.groupby(numbered, key=operator.itemgetter(0)):
        yield ordinal, [line for _, line in run]


@dataclasses.dataclass
class Candidates:
    """A slice's documents with the N smallest keys among those that yield tokens."""

    # key -> (the ordinals of its copies in the slice, the lines of the first copy)
    found: Dict[bytes, Tuple[List[int], List[str]]]
    documents: int  # runs of non-blank lines read in the slice


def slice_candidates(lines: Iterable[Tuple[str, int]], n: int, seed: int,
                     encode: Encode) -> Candidates:
    """The ``n`` smallest-keyed documents of a slice's lines (``SliceReader``'s pairs)."""
    found: Dict[bytes, Tuple[List[int], List[str]]] = {}
    heap: List[Tuple[int, bytes]] = []  # (-key as a number, key): the largest kept key on top
    documents = 0
    for ordinal, run in runs(lines):
        documents += 1
        key = key_of(seed, dedup.digest([dedup.normalise(line) for line in run]))
        entry = found.get(key)
        if entry is not None:
            entry[0].append(ordinal)
            continue
        if len(heap) >= n and key > heap[0][1]:
            continue
        if not any(encode(line) for line in run):
            continue  # no tokens: not a document the builders keep
        found[key] = ([ordinal], run)
        heapq.heappush(heap, (-int.from_bytes(key, "big"), key))
        if len(heap) > n:
            del found[heapq.heappop(heap)[1]]
    return Candidates(found, documents)


@dataclasses.dataclass
class Selection:
    """The held-out documents of a whole input, as the builders need them."""

    keys: FrozenSet[bytes]  # the N keys held out
    skip: List[FrozenSet[int]]  # per slice: ordinals of the held-out documents and their copies
    documents: List[List[str]]  # each held-out document's lines, once, in input order


def choose(per_slice: Sequence[Candidates], n: int, flag_input: str) -> Selection:
    """The input's ``n`` smallest keys from its slices' candidates (slices in input order)."""
    first: Dict[bytes, Tuple[int, int]] = {}  # key -> (slice, ordinal) of its first copy
    for k, candidates in enumerate(per_slice):
        for key, (ordinals, _) in candidates.found.items():
            first.setdefault(key, (k, ordinals[0]))
    keys = frozenset(sorted(first)[:n])
    if len(keys) < n:
        raise NorbertError(
            "--heldout_documents=%d: --input_file %s holds only %d distinct document(s) with "
            "text: hold out fewer" % (n, flag_input, len(keys)))
    skip = [frozenset(o for key, (ordinals, _) in c.found.items() if key in keys
                      for o in ordinals) for c in per_slice]
    if sum(map(len, skip)) >= sum(c.documents for c in per_slice):
        raise NorbertError(
            "--heldout_documents=%d holds out every document of --input_file %s: hold out "
            "fewer, or give more text" % (n, flag_input))
    ordered = sorted(keys, key=first.__getitem__)
    documents = [per_slice[first[key][0]].found[key][1] for key in ordered]
    return Selection(keys, skip, documents)


def select_whole(config, tokenizer, input_paths: List[str]) -> Selection:
    """The held-out documents of ``input_paths`` read as one slice (reference-exact mode)."""
    reader = slices.SliceReader(input_paths, (0, 0), (len(input_paths), 0), config.text_field)
    candidates = slice_candidates(reader, config.heldout_documents, config.random_seed,
                                  tokenizer.encode)
    return choose([candidates], config.heldout_documents, config.input_file)


def write(config, options, tokenizer, vocab_sha: str, input_paths: List[str],
          selection: Selection, training_outputs: List[str]):
    """Builds the held-out records (the module's docstring) into ``--heldout_output_file``
    and its sidecar; returns their ``DataSummary``."""
    stats = CorpusStats(files=len(input_paths))
    documents = []
    for lines in selection.documents:
        stats.lines += len(lines)
        document = [ids for ids in map(tokenizer.encode, lines) if ids]
        documents.append(document)
        stats.documents += 1
        stats.sentences += len(document)
        stats.tokens += sum(map(len, document))
    vocab_words = [tokenizer.inv_vocab[i] for i in range(len(tokenizer.vocab))]
    draws = Draws.for_rng(random.Random(config.random_seed))
    draws.shuffle(documents)
    summary = DataSummary(corpus=stats)
    records = collect_records(config, tokenizer, vocab_words, documents, draws, summary)
    draws.shuffle(records)
    path = config.heldout_output_file
    summary.instances = len(records)
    summary.records_per_file = tfrecord.write_round_robin(records, [path])
    meta = sidecar.build(config, options, input_paths, [path], path, vocab_sha,
                         len(tokenizer.vocab), summary, len(records), vocab=tokenizer.vocab)
    sidecar.mark_heldout(meta, config, training_outputs)
    sidecar.write(sidecar.path_for(path), meta)
    return summary
