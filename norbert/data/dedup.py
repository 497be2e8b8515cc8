"""Exact deduplication of documents (``--dedup=exact``): which documents repeat an earlier one.

A document here is a run of non-blank lines of a slice (``norbert.data.slices``), as the
builders read it; its identity is a 16-byte BLAKE2b digest of its normalised text: each line in
Unicode NFC with its whitespace runs as one space, the lines joined by newlines. Case and
punctuation count: "exact" means the same text, give or take spacing and Unicode composition.

A document is dropped when a document with the same digest comes earlier in the input (files
in the order given, then lines in order), so the first copy is kept wherever it is. Two passes,
the same in every mode:

1. each slice's digests, in order (``slice_digests``: one ``bytes`` of 16 per document);
2. the documents to drop, by (slice, ordinal in the slice): ``dropped`` walks the slices in
   order with the set of digests seen (the local sharded mode; about 100 bytes of memory per
   distinct document); a Beam pipeline groups by digest and drops all but the earliest
   (slice, ordinal) of each group, the same answer without one machine's memory.

The builders then skip those ordinals when they read the slice (``slices.documents``).
"""

import hashlib
import itertools
import operator
import unicodedata
from typing import Iterable, Iterator, List, Sequence, Tuple

from norbert.data import slices

DIGEST_BYTES = 16


def normalise(line: str) -> str:
    """A line as deduplication compares it: NFC, whitespace runs as one space, no ends."""
    return " ".join(unicodedata.normalize("NFC", line).split())


def runs(lines: Iterable[Tuple[str, int]]) -> Iterator[List[str]]:
    """The documents of a slice's lines as lists of normalised non-blank lines, in order.

    ``lines`` are ``SliceReader``'s ``(line, bytes)`` pairs, numbered into documents as the
    builders read them (``slices.numbered_lines``).
    """
    numbered = ((ordinal, line) for ordinal, line, _ in slices.numbered_lines(iter(lines))
                if ordinal >= 0)
    for _, run in itertools.groupby(numbered, key=operator.itemgetter(0)):
        yield [normalise(line) for _, line in run]


def digest(run: Sequence[str]) -> bytes:
    return hashlib.blake2b("\n".join(run).encode("utf-8"), digest_size=DIGEST_BYTES).digest()


def slice_digests(lines: Iterable[Tuple[str, int]]) -> bytes:
    """The digests of a slice's documents, in order, concatenated (16 bytes each)."""
    return b"".join(digest(run) for run in runs(lines))


def split(digests: bytes) -> List[bytes]:
    """``slice_digests``' output as one digest per document."""
    n = DIGEST_BYTES
    return [digests[i:i + n] for i in range(0, len(digests), n)]


def dropped(per_slice: Iterable[bytes]) -> List[List[int]]:
    """For each slice in order, the ordinals of its documents that repeat an earlier one."""
    seen = set()
    out = []
    for digests in per_slice:
        drop = []
        for i, d in enumerate(split(digests)):
            if d in seen:
                drop.append(i)
            else:
                seen.add(d)
        out.append(drop)
    return out
