"""The input cut into slices, one per shard, and the reading of one slice's documents.

The sharded builder (``norbert.data.sharded``) builds shard ``k`` from slice ``k`` of the input
alone, so that a worker reads and tokenises only its slice; a later pipeline (Apache Beam, say)
can cut and read the input the same way. The input is taken as one stream of documents in file
order, with the reference's reading rules (``norbert.data.documents``):

1. **Plan** (``plan_shards``; one pass over the input, bytes only, no tokenising): the stream is
   cut into ``K`` slices of about equal bytes, each cut at a document start. Only a bounded,
   thinned list of document starts is kept, so the plan's memory does not grow with the corpus.
   A slice is given by two ``Position``s, (file index, byte offset of a line start; row index
   in a Parquet file, whose rows count the UTF-8 bytes of their text): small and picklable, so a
   job sent to another process carries only them.
2. **Reading a slice** (``SliceReader``, then ``documents``): the lines between two positions,
   each with its byte count (for block sizes and progress over input bytes), seeking to the
   slice in plain files (a compressed file is read up to it, a Parquet file from the row group
   that holds it); then the documents of those lines, each with the bytes read for it. A
   document longer than ``max_bytes`` (if given) is cut between sentences into parts of about
   that size, so that memory is bounded whatever the input.

Read one after the other (without ``max_bytes``), the slices' documents are those of
``read_documents`` on the whole input, in order: every document falls in exactly one slice.
"""

import array
import bisect
import dataclasses
from typing import AbstractSet, Callable, Iterator, List, Sequence, Tuple

from norbert import fileio
from norbert.data.documents import (CorpusStats, Document, is_jsonl, is_parquet, jsonl_text,
                                    parquet_texts, split_sentences)

# (input file index, offset in that file): the byte offset of a line start, or in a Parquet
# file the index of a row (rows are not at byte offsets one can seek to)
Position = Tuple[int, int]
_PLAN_CAP = 1 << 16  # document starts kept by the plan before it thins them (x2 at most)


# -- the plan ------------------------------------------------------------------------------


def _is_blank(raw: bytes) -> bool:
    """Whether a raw line is empty after ``str.strip()`` (a document break), decoding rarely."""
    stripped = raw.strip()
    if not stripped:
        return True
    if 0x20 < stripped[0] < 0x80:  # printable ASCII: certainly text
        return False
    return not raw.decode("utf-8", "replace").strip()  # U+00A0, U+2028, \x1c...: whitespace


@dataclasses.dataclass
class Plan:
    """Where each shard's slice of the input starts and ends."""

    total_bytes: int  # of all input (decompressed)
    cuts: List[Position]  # K + 1 positions: shard k reads [cuts[k], cuts[k + 1])
    cut_bytes: List[int]  # the stream offset of each cut (for progress)
    documents_seen: bool  # whether any line of text was found at all


def plan_shards(paths: Sequence[str], num_shards: int, cap: int = _PLAN_CAP,
                text_field: str = "text") -> Plan:
    """Cuts the input into ``num_shards`` slices of about equal bytes at document starts.

    A document starts at a non-blank line after a blank one (or at the start of the input, or
    after a JSON-lines or Parquet file), at every line of a JSON-lines file and at every row of
    a Parquet file with text (``text_field``; a row counts its text's UTF-8 bytes); plain-text
    files run on into each other as in ``norbert.data.documents``. Memory: at most ``2 * cap``
    recorded starts.
    """
    starts, files, offsets = array.array("q"), array.array("q"), array.array("q")
    granule = 0  # bytes between recorded starts at least; doubles whenever the list is thinned
    last = -1
    total = 0
    prev_blank = True

    def keep(index: int, offset: int) -> None:
        nonlocal starts, files, offsets, granule, last
        starts.append(total)
        files.append(index)
        offsets.append(offset)
        last = total
        if len(starts) >= 2 * cap:
            starts, files, offsets = starts[::2], files[::2], offsets[::2]
            granule = max(2 * granule, total // cap, 1)

    for index, path in enumerate(paths):
        if is_parquet(path):
            for row, text in enumerate(parquet_texts(path, text_field)):
                if text and (last < 0 or total - last >= granule):
                    keep(index, row)
                total += len(text.encode("utf-8")) if text else 0
            prev_blank = True
            continue
        jsonl = is_jsonl(path)
        if jsonl:
            prev_blank = True
        offset = 0
        with fileio.open_binary(path) as f:
            for raw in f:
                if jsonl:
                    start = bool(raw.strip())
                else:
                    blank = _is_blank(raw)
                    start = prev_blank and not blank
                    prev_blank = blank
                if start and (last < 0 or total - last >= granule):
                    keep(index, offset)
                n = len(raw)
                offset += n
                total += n
        if jsonl:
            prev_blank = True
    end: Position = (len(paths), 0)
    cuts: List[Position] = [(0, 0)]
    cut_bytes = [0]
    for k in range(1, num_shards):
        i = bisect.bisect_left(starts, k * total // num_shards)
        if i < len(starts) and starts[i] > 0:
            cuts.append((files[i], offsets[i]))
            cut_bytes.append(starts[i])
        else:
            cuts.append(end)
            cut_bytes.append(total)
    cuts.append(end)
    cut_bytes.append(total)
    return Plan(total, cuts, cut_bytes, bool(len(starts)))


# -- reading one slice ---------------------------------------------------------------------


class SliceReader:
    """Lines of the input between two positions, each with its byte count; counts bad lines."""

    def __init__(self, paths: Sequence[str], start: Position, end: Position,
                 text_field: str = "text"):
        self.paths, self.start, self.end = paths, start, end
        self.text_field = text_field  # of JSON lines and Parquet rows
        self.bad_lines = 0
        self.lines_read = 0
        self.files = 0

    def _decode(self, raw: bytes) -> str:
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.bad_lines += 1
            return raw.decode("utf-8", "replace")

    def __iter__(self) -> Iterator[Tuple[str, int]]:
        (f0, o0), (f1, o1) = self.start, self.end
        for index in range(f0, min(f1, len(self.paths) - 1) + 1):
            if index == f1 and o1 == 0:
                return
            path = self.paths[index]
            jsonl = is_jsonl(path)
            offset = o0 if index == f0 else 0
            stop = o1 if index == f1 else -1
            self.files += 1
            if is_parquet(path):
                yield from self._parquet(path, offset, stop)
                continue
            with fileio.open_binary(path) as f:
                lines = _lines_from(f, path, offset)
                if jsonl:
                    yield "", 0  # a JSON-lines file never continues a plain-text document
                for raw in lines:
                    if 0 <= stop <= offset:
                        break
                    n = len(raw)
                    offset += n
                    self.lines_read += 1
                    line = self._decode(raw)
                    if jsonl:
                        if line.strip():
                            for sentence in split_sentences(jsonl_text(
                                line, "%s: the line at byte %d" % (path, offset - n),
                                self.text_field)):
                                yield sentence, 0
                            yield "", 0
                        yield "", n
                    else:
                        yield line, n
                if jsonl:
                    yield "", 0

    def _parquet(self, path: str, row: int, stop: int) -> Iterator[Tuple[str, int]]:
        """Rows ``[row, stop)`` (to the end if ``stop < 0``) of a Parquet file as lines: each
        row's sentences, then a blank line that counts the UTF-8 bytes of the row's text."""
        yield "", 0  # a Parquet file never continues a plain-text document
        for text in parquet_texts(path, self.text_field, row, stop if stop >= 0 else None):
            self.lines_read += 1
            if text:  # not null
                for sentence in split_sentences(text):
                    yield sentence, 0
                yield "", len(text.encode("utf-8"))


def _lines_from(f, path: str, offset: int) -> Iterator[bytes]:
    """The raw lines of an open file from byte ``offset`` (a line start) on."""
    if offset and not path.endswith(".gz"):
        f.seek(offset)
        return iter(f)
    lines = iter(f)
    skipped = 0
    while skipped < offset:  # compressed: no seeking, read up to the slice
        skipped += len(next(lines))
    return lines


def numbered_lines(lines: Iterator[Tuple[str, int]]) -> Iterator[Tuple[int, str, int]]:
    """``(ordinal, line, bytes)`` for each of a slice's ``(line, bytes)``: the line stripped
    ("\r" dropped), and the ordinal of its run of non-blank lines (0, 1, ...), or -1 if blank.

    The one numbering of documents that reading (``documents``) and deduplication
    (``norbert.data.dedup``) share: an ordinal dropped by one is the document skipped by the other.
    """
    ordinal = -1  # of the current run of non-blank lines
    in_run = False
    for line, n in lines:
        if "\r" in line:
            line = line.replace("\r", "")
        line = line.strip()
        if not line:
            in_run = False
            yield -1, line, n
            continue
        if not in_run:
            in_run = True
            ordinal += 1
        yield ordinal, line, n


def documents(
    lines: Iterator[Tuple[str, int]], encode: Callable[[str], List[int]], stats: CorpusStats,
    max_bytes: int = 0, skip: AbstractSet[int] = frozenset(),
    heldout: AbstractSet[int] = frozenset(),
) -> Iterator[Tuple[Document, int]]:
    """Documents (with the bytes read for them) from lines, by ``norbert.data.documents``' rules.

    A document of more than ``max_bytes`` (if given) is cut, between sentences, into parts of
    about that size, each then a document of its own: memory stays bounded whatever the input.
    ``skip`` holds ordinals (``numbered_lines``) of documents to leave out untokenised (counted
    as duplicates); ``heldout`` those of held-out documents, left out too, and not counted.
    """
    document: Document = []
    nbytes = 0
    current = -1  # the ordinal of the run being read
    dropping = False
    for ordinal, line, n in numbered_lines(lines):
        if document and (ordinal < 0 or (max_bytes and nbytes >= max_bytes)):
            stats.documents += 1
            stats.sentences += len(document)
            stats.tokens += sum(map(len, document))
            yield document, nbytes
            document, nbytes = [], 0
        nbytes += n
        if ordinal < 0:
            continue
        if ordinal != current:
            current = ordinal
            duplicate = ordinal in skip
            stats.duplicates += duplicate
            dropping = duplicate or ordinal in heldout
        if not dropping:
            ids = encode(line)
            if ids:
                document.append(ids)
    if document:
        stats.documents += 1
        stats.sentences += len(document)
        stats.tokens += sum(map(len, document))
    yield document, nbytes  # possibly empty: carries the bytes of the slice's tail
