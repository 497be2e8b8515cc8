"""The input cut into slices, one per shard, and the reading of one slice's documents.

The sharded builder (``norbert.data.sharded``) and the Beam pipeline (``norbert.data.beam``)
build shard ``k`` from slice ``k`` of the input alone, so that a worker reads and tokenises only
its slice. The input is taken as one stream of documents in file order, with the reference's
reading rules (``norbert.data.documents``):

1. **Plan** (``plan_shards``; from metadata, reading at most a few bytes per file): the input is
   weighed in units -- a plain or JSON-lines file as its size, cut anywhere; a Parquet file as
   its row groups, each weighing its text column's uncompressed bytes (the footer says); a
   ``.gz`` file, which cannot be entered in the middle, whole, weighing its decompressed size
   (the gzip trailer says; one that says more than the file can hold is a file cut short, an
   error before any output) -- and the ``K`` slices get contiguous runs of it of about equal
   weight. The cuts (``Position``: file index and byte offset, or row in a Parquet file; small
   and picklable, so a job sent to another process carries only them) depend on the files'
   sizes and ``K`` alone: never on workers or runner.
2. **Reading a slice** (``SliceReader``, then ``documents``): a slice owns the documents that
   *start* inside it. Its reader starts at the first document start at or after its start and
   reads past its end to finish its last document, stopping at the first document start at or
   after its end. A document starts at a non-blank line whose line before (across files:
   plain-text files run on into each other) is blank, or at the input's start; at every
   non-blank line of a JSON-lines file and every row of a Parquet file with text. A cut inside
   a line (inside a CRLF pair, a multi-byte UTF-8 character) means the next line start; the
   line before it is found by looking back a few kilobytes (a longer line is read back only
   until it shows a character that is not whitespace). A document longer than ``max_bytes``
   (if given) is cut between sentences into parts of about that size, so that memory is
   bounded whatever the input.

Read one after the other (without ``max_bytes``), the slices' documents are those of
``read_documents`` on the whole input, in order, and every line is read by exactly one slice:
by the slice of the document it belongs to (lines before the first document: the first slice).
"""

import bisect
import dataclasses
import itertools
from typing import AbstractSet, Callable, Iterator, List, Optional, Sequence, Tuple

from absl import logging

from norbert import fileio
from norbert.data.documents import (CorpusStats, Document, is_jsonl, is_parquet, jsonl_text,
                                    parquet_row_groups, parquet_texts, split_sentences)
from norbert.errors import NorbertError

# What the sidecars record of the planner (``settings.planner``): shards cut by another
# version are other shards. 2: cuts from metadata, slices owning the documents that start in
# them (1, unrecorded: cuts at document starts found by one pass over all the input's bytes).
PLANNER_VERSION = 2

# (input file index, offset in that file): a byte offset (anywhere: the slice starts at the
# first document start at or after it), or in a Parquet file the index of a row
Position = Tuple[int, int]
TEXT, JSONL, GZIP, PARQUET = "text", "jsonl", "gzip", "parquet"  # how a file is planned
_BACK = 4096  # bytes read at a time when looking back for the start of a line
_WRAPPED = 1 << 20  # a .gz file at least this big whose trailer says less has wrapped 2**32
# Deflate writes a match of at most 258 bytes in at least 2 bits: a gzip member holds at most
# 1032 bytes per compressed byte (a trailer's size is modulo 2**32: only more is provably
# wrong). The slack: the few bytes of a tiny file's headers, with room to spare.
_DEFLATE_MOST = 1032
_GZIP_SLACK = 1024


def kind_of(path: str) -> str:
    """How ``path`` is planned and read: ``text``, ``jsonl``, ``gzip`` (plain text or JSON
    lines, compressed: whole) or ``parquet``."""
    if is_parquet(path):
        return PARQUET
    if path.endswith(".gz"):
        return GZIP
    return JSONL if is_jsonl(path) else TEXT


# -- the plan ------------------------------------------------------------------------------


def _is_blank(raw: bytes) -> bool:
    """Whether a raw line is empty after ``str.strip()`` (a document break), decoding rarely."""
    stripped = raw.strip()
    if not stripped:
        return True
    if 0x20 < stripped[0] < 0x80:  # printable ASCII: certainly text
        return False
    return not raw.decode("utf-8", "replace").strip()  # U+00A0, U+2028, \x1c...: whitespace


@dataclasses.dataclass(frozen=True)
class Unit:
    """A piece of the input as the plan weighs it."""

    file: int  # input file index
    start: int  # byte offset (0) or, in a Parquet file, the row group's first row
    weight: int  # bytes: the file's size, a .gz file's decompressed size, a row group's text
    divisible: bool  # whether a cut may fall inside it (plain and JSON-lines files: anywhere)


@dataclasses.dataclass
class Plan:
    """Where each shard's slice of the input starts and ends."""

    total_bytes: int  # the input's weight: sizes, .gz decompressed, Parquet text uncompressed
    cuts: List[Position]  # K + 1 positions: shard k owns the documents starting in [k, k + 1)
    cut_bytes: List[int]  # the weight before each cut (for progress and the printed plan)
    documents_seen: bool  # whether the input has any bytes (the plan reads none of its text)
    kinds: List[str] = dataclasses.field(default_factory=list)  # per file: kind_of
    units: List[Unit] = dataclasses.field(default_factory=list)

    def pieces(self, k: int) -> List[Tuple[int, int, Optional[int]]]:
        """``(file index, start, stop)`` of each file slice ``k`` starts documents in (its
        start and stop as positions are; ``stop`` None: to the file's end)."""
        (f0, o0), (f1, o1) = self.cuts[k], self.cuts[k + 1]
        out = []
        for index in range(f0, min(f1, len(self.kinds) - 1) + 1):
            start = o0 if index == f0 else 0
            stop = o1 if index == f1 else None
            if stop is None or stop > start:
                out.append((index, start, stop))
        return out


def plan_shards(paths: Sequence[str], num_shards: int, text_field: str = "text") -> Plan:
    """Cuts the input into ``num_shards`` slices of about equal weight, from metadata alone:
    file sizes, Parquet footers (``text_field``'s column), .gz trailers (module docstring)."""
    units, kinds = [], []
    for index, path in enumerate(paths):
        kind = kind_of(path)
        kinds.append(kind)
        if kind == PARQUET:
            row = 0
            for rows, size in parquet_row_groups(path, text_field):
                units.append(Unit(index, row, size, False))
                row += rows
        elif kind == GZIP:
            units.append(Unit(index, 0, gzip_size(path), False))
        else:
            units.append(Unit(index, 0, fileio.size(path), True))
    gz = kinds.count(GZIP)
    if gz and num_shards > 1:
        logging.info("%d .gz file(s) in the input, each one slice read whole by one worker (a "
                     ".gz file cannot be entered in the middle): store big corpora uncompressed, "
                     "or in several files", gz)
    cuts, cut_bytes = cut_units(units, len(paths), num_shards)
    total = cut_bytes[-1]
    return Plan(total, cuts, cut_bytes, total > 0, kinds, units)


def describe(plan: Plan, paths: Sequence[str], records_per_byte: float) -> List[str]:
    """The plan as lines of text: one for the whole, then one per shard with its bytes, an
    estimate of its records (its bytes times ``records_per_byte``) and its slices (a file's
    byte range, or its rows for Parquet)."""
    shards = len(plan.cuts) - 1
    names = [path.rsplit("/", 1)[-1] for path in paths]
    lines = ["plan (planner %d): %d shard(s) of %s from %d file(s), %s byte(s); about %s "
             "record(s)" % (PLANNER_VERSION, shards, _name(paths), len(paths),
                            _figure(plan.total_bytes),
                            _figure(round(plan.total_bytes * records_per_byte)))]
    if plan.kinds.count(GZIP) and shards > 1:
        lines.append("  .gz files are one slice each, read whole: store big corpora "
                     "uncompressed, or in several files")
    for k in range(shards):
        nbytes = plan.cut_bytes[k + 1] - plan.cut_bytes[k]
        pieces = []
        for index, start, stop in plan.pieces(k):
            unit = "rows " if plan.kinds[index] == PARQUET else ""
            pieces.append("%s %s[%s, %s)" % (names[index], unit, _figure(start),
                                             "end" if stop is None else _figure(stop)))
        lines.append("  shard %05d: %s byte(s), about %s record(s): %s"
                     % (k, _figure(nbytes), _figure(round(nbytes * records_per_byte)),
                        ", ".join(pieces) or "no slice (too few bytes for this many shards)"))
    return lines


def _figure(n: int) -> str:
    return "{:,}".format(n)


def _name(paths: Sequence[str]) -> str:
    return paths[0] if len(paths) == 1 else "%s, ..." % paths[0]


def cut_units(units: Sequence[Unit], num_files: int,
              num_shards: int) -> Tuple[List[Position], List[int]]:
    """``num_shards + 1`` cuts of ``units`` (in input order) and the weight before each: cut
    ``k`` at weight ``k * total // num_shards``, inside a divisible unit, else at the nearer
    end of the unit (the earlier on a tie)."""
    starts = list(itertools.accumulate([0] + [u.weight for u in units]))
    total = starts[-1]
    end: Position = (num_files, 0)

    def position(i: int) -> Position:
        return (units[i].file, units[i].start) if i < len(units) else end

    cuts: List[Position] = [(0, 0)]
    cut_bytes = [0]
    for k in range(1, num_shards):
        target = k * total // num_shards
        i = bisect.bisect_right(starts, target) - 1
        if i >= len(units):  # nothing to cut (no input bytes)
            cuts.append(end)
            cut_bytes.append(total)
            continue
        unit, inside = units[i], target - starts[i]
        if unit.divisible:
            cuts.append((unit.file, unit.start + inside))
            cut_bytes.append(target)
        elif 2 * inside <= unit.weight:
            cuts.append(position(i))
            cut_bytes.append(starts[i])
        else:
            cuts.append(position(i + 1))
            cut_bytes.append(starts[i + 1])
    cuts.append(end)
    cut_bytes.append(total)
    return cuts, cut_bytes


def gzip_size(path: str) -> int:
    """A .gz file's decompressed size from its trailer (4 bytes read): the size modulo 2**32,
    taken up to at least the compressed size for a file over 1 MiB (text compresses).

    A trailer that says more than the file's bytes can hold (``_DEFLATE_MOST``) is no trailer:
    the file is cut short or damaged, a ``NorbertError`` naming it (its real size is unknown).
    Of a file of several gzip members the trailer is the last member's, which holds no more
    than its own bytes can: the test stands (and the size is at least the file's, so a big file
    is taken as text that compresses)."""
    size = fileio.size(path)
    if size < 4:
        return size
    with fileio.open_binary(path, decompress=False) as f:
        f.seek(size - 4)
        isize = int.from_bytes(f.read(4), "little")
    most = _DEFLATE_MOST * size + _GZIP_SLACK
    if isize > most:
        raise NorbertError(
            "%s is truncated or damaged, not a whole gzip file: its last 4 bytes, a gzip file's "
            "uncompressed size, say %s bytes, more than its %s bytes can hold (at most %s): "
            "copy or compress it again" % (path, _figure(isize), _figure(size), _figure(most)))
    if size >= _WRAPPED and isize < size:
        isize += ((size - isize + (1 << 32) - 1) >> 32) << 32
    return isize


# -- where a slice starts ------------------------------------------------------------------


def _partly_blank(tail: bytes, whole: bool) -> bool:
    """Whether ``tail`` (the end of a line, all of it if ``whole``) shows only whitespace; a
    partial tail loses the bytes of a character cut at its front first."""
    if whole:
        return _is_blank(tail)
    cut = 0
    while cut < min(3, len(tail)) and 0x80 <= tail[cut] < 0xC0:  # UTF-8 continuation bytes
        cut += 1
    return not tail[cut:].decode("utf-8", "replace").strip()


def blank_line_before(f, pos: int) -> bool:
    """Whether the line of the open, seekable file ``f`` that ends at byte ``pos`` (its
    ``\\n`` at ``pos - 1``, or ``pos`` the end of the file) is blank; ``pos`` 0: True.

    Reads back ``_BACK`` bytes at a time, and stops at the line's start or at the first
    character that is not whitespace."""
    lo, tail = pos, b""
    while lo > 0:
        step = min(_BACK, lo)
        lo -= step
        f.seek(lo)
        tail = f.read(step) + tail
        body = tail[:-1] if tail.endswith(b"\n") else tail
        newline = body.rfind(b"\n")
        if newline >= 0:
            return _is_blank(body[newline + 1:])
        if not _partly_blank(body, whole=lo == 0):
            return False
    return True


def line_start_at(f, offset: int) -> Tuple[int, bool]:
    """The first line start at or after byte ``offset`` of the open, seekable file ``f`` (its
    size if none), and whether the line before it is blank."""
    f.seek(0, 2)
    offset = min(offset, f.tell())
    if offset <= 0:
        return 0, True
    f.seek(offset - 1)
    start = offset if f.read(1) == b"\n" else offset + len(f.readline())
    return start, blank_line_before(f, start)


def blank_before_file(paths: Sequence[str], index: int) -> bool:
    """Whether the plain-text line before file ``index``'s first is blank (or there is none):
    whether that file starts a document, or continues the one before. Looks back over empty
    files; a JSON-lines or Parquet file ends its documents; a .gz file is read whole."""
    for path in reversed(paths[:index]):
        kind = kind_of(path)
        if kind in (JSONL, PARQUET) or (kind == GZIP and is_jsonl(path)):
            return True
        with fileio.open_binary(path) as f:
            if kind == GZIP:
                last = None
                for last in f:
                    pass
                if last is not None:
                    return _is_blank(last)
                continue
            f.seek(0, 2)
            size = f.tell()
            if size:
                return blank_line_before(f, size)
    return True


# -- reading one slice ---------------------------------------------------------------------


class SliceReader:
    """The lines of the documents that start in a slice (``[start, end)``; module docstring),
    each with its byte count; counts the lines, files and bad lines read."""

    def __init__(self, paths: Sequence[str], start: Position, end: Position,
                 text_field: str = "text"):
        self.paths, self.start, self.end = paths, tuple(start), tuple(end)
        self.text_field = text_field  # of JSON lines and Parquet rows
        self.bad_lines = 0
        self.lines_read = 0
        self.files = 0
        self._started = False  # whether the slice's first document was met
        self._blank = True  # whether the last plain-text line read was blank
        self._done = False  # whether a document start at or after the end was met

    def _decode(self, raw: bytes) -> str:
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.bad_lines += 1
            return raw.decode("utf-8", "replace")

    def __iter__(self) -> Iterator[Tuple[str, int]]:
        f0, o0 = self.start
        if self.start >= self.end:
            return
        # The input's start owns the lines before its first document too (read_documents').
        self._started, self._blank, self._done = (f0, o0) == (0, 0), True, False
        for index in range(f0, len(self.paths)):
            if (index, 0) >= self.end and not self._started:
                return
            offset = o0 if index == f0 else 0
            path = self.paths[index]
            kind = kind_of(path)
            before = self.lines_read
            if kind == PARQUET:
                yield from self._parquet(index, offset)
            elif is_jsonl(path):
                yield from self._jsonl(index, offset)
            else:
                yield from self._text(index, offset)
            self.files += self.lines_read > before
            if self._done:
                return

    def _text(self, index: int, offset: int) -> Iterator[Tuple[str, int]]:
        """A plain-text file's lines from the first line start at or after ``offset``."""
        path = self.paths[index]
        seek = offset > 0 and not path.endswith(".gz")
        if not seek and index == self.start[0] and not self._started:
            self._blank = blank_before_file(self.paths, index)
        with fileio.open_binary(path) as f:
            pos = 0
            if seek:
                pos, self._blank = line_start_at(f, offset)
                if pos == 0:  # an empty file: the line before is in the files before it
                    self._blank = blank_before_file(self.paths, index)
                f.seek(pos)
            for raw in f:
                n = len(raw)
                at, pos = pos, pos + n
                blank = _is_blank(raw)
                first = self._blank and not blank
                self._blank = blank
                if at < offset:  # a .gz file entered in the middle: read up to the slice
                    continue
                if first:
                    if (index, at) >= self.end:
                        self._done = True
                        return
                    self._started = True
                if self._started:
                    self.lines_read += 1
                    yield self._decode(raw), n

    def _jsonl(self, index: int, offset: int) -> Iterator[Tuple[str, int]]:
        """A JSON-lines file's documents (one a line) from the first at or after ``offset``."""
        path = self.paths[index]
        with fileio.open_binary(path) as f:
            pos = 0
            if offset > 0 and not path.endswith(".gz"):
                pos = line_start_at(f, offset)[0]
                f.seek(pos)
            if self._started:
                yield "", 0  # a JSON-lines file never continues a plain-text document
            for raw in f:
                n = len(raw)
                at, pos = pos, pos + n
                if at < offset:
                    continue
                if _is_blank(raw):
                    if self._started:
                        self.lines_read += 1
                        yield "", n
                    continue
                if (index, at) >= self.end:
                    self._done = True
                    return
                self._started = True
                self.lines_read += 1
                where = "%s: the line at byte %d" % (path, at)
                for sentence in split_sentences(jsonl_text(self._decode(raw), where,
                                                           self.text_field)):
                    yield sentence, 0
                yield "", 0
                yield "", n
            yield "", 0
        self._blank = True

    def _parquet(self, index: int, row: int) -> Iterator[Tuple[str, int]]:
        """Rows ``[row, the end's row)`` of a Parquet file (to the file's end if the end is in
        a later file) as lines: each row's sentences, then a blank line that counts the UTF-8
        bytes of the row's text. A row is a position: the slice ends at its end's row."""
        if (index, row) >= self.end:
            self._done = True
            return
        stop = self.end[1] if index == self.end[0] else None
        if self._started:
            yield "", 0  # a Parquet file never continues a plain-text document
        for text in parquet_texts(self.paths[index], self.text_field, row, stop):
            self.lines_read += 1
            if text:  # not null
                self._started = True
                for sentence in split_sentences(text):
                    yield sentence, 0
                yield "", len(text.encode("utf-8"))
        self._blank = True
        self._done = stop is not None


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
