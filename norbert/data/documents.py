"""Corpus readers: text files -> documents of tokenised sentences (lists of token ids).

Input format (the reference's): one sentence per line, a blank line between documents. The
sentence boundaries matter because next-sentence prediction pairs whole sentences, and the
document boundaries because a "next" sentence must come from the same document.

The reading rules follow Google's ``create_pretraining_data.py`` exactly, because the reference-
exact mode must see the same documents in the same order:

- a line is split at ``\\n`` only, and every ``\\r`` in it is dropped (TensorFlow's ``GFile``
  reader, which the reference uses, drops them anywhere in the line, not only before ``\\n``);
- a line that is empty after ``str.strip()`` (so also one of spaces or U+00A0) starts a new
  document;
- a line whose text yields no tokens (control characters only, say) adds nothing but does not
  end the document;
- documents run on across files: a file that does not end in a blank line continues its last
  document into the next file's first one;
- empty documents are dropped.

Unlike the reference, bytes that are not UTF-8 do not stop the run: they become U+FFFD (usually
``[UNK]``) and are counted (``CorpusStats.bad_lines``).

Running text can come as JSON lines (``.jsonl``, ``.jsonl.gz``: one document per line) or Parquet
(``.parquet``: one document per row), its text in the field or column ``text_field`` (the flag
``--text_field``) and cut into sentences by ``split_sentences``. Such a file always starts and
ends its own documents; a null or empty text is no document. Parquet needs pyarrow (imported
only when a ``.parquet`` file is met) and is read a batch of rows at a time.
"""

import dataclasses
import json
from typing import AbstractSet, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

from norbert import fileio
from norbert.errors import NorbertError

Sentence = List[int]  # token ids of one line of text
Document = List[Sentence]
Encode = Callable[[str], List[int]]  # text -> token ids, e.g. FullTokenizer.encode


@dataclasses.dataclass
class CorpusStats:
    """What reading the corpus found (for the log line and the sidecar)."""

    files: int = 0  # input files read
    lines: int = 0  # lines read, blank ones included
    bad_lines: int = 0  # lines with bytes that were not UTF-8 (replaced by U+FFFD)
    documents: int = 0  # non-empty documents kept
    sentences: int = 0  # non-empty sentences kept
    tokens: int = 0  # WordPiece tokens in the kept sentences
    duplicates: int = 0  # documents dropped as repeats of an earlier one (--dedup=exact)


def documents_from_lines(
    lines: Iterable[str], encode: Encode, stats: CorpusStats = None
) -> List[Document]:
    """Documents from lines of text in the reference format (see the module docstring).

    ``lines`` are without their ``\\n``; they may come from several files in a row.
    """
    documents: List[Document] = [[]]
    current = documents[0]
    n_lines = 0
    for line in lines:
        n_lines += 1
        if "\r" in line:
            line = line.replace("\r", "")
        line = line.strip()
        if not line:
            current = []
            documents.append(current)
            continue
        ids = encode(line)
        if ids:
            current.append(ids)
    kept = [d for d in documents if d]
    if stats is not None:
        stats.lines += n_lines
        stats.documents += len(kept)
        stats.sentences += sum(len(d) for d in kept)
        stats.tokens += sum(len(s) for d in kept for s in d)
    return kept


def without_runs(lines: Iterable[str], skip: AbstractSet[int]) -> Iterator[str]:
    """``lines`` with the lines of the runs of non-blank lines numbered in ``skip`` (0, 1, ...
    in order, as ``norbert.data.slices.numbered_lines`` numbers them) made blank: those
    documents are read as none, and every other document as before."""
    ordinal = -1
    in_run = dropping = False
    for line in lines:
        if not line.replace("\r", "").strip():
            in_run = False
            yield line
            continue
        if not in_run:
            in_run = True
            ordinal += 1
            dropping = ordinal in skip
        yield "" if dropping else line


def read_documents(
    paths: Sequence[str], encode: Encode, stats: CorpusStats = None, text_field: str = "text",
    skip: AbstractSet[int] = frozenset(),
) -> List[Document]:
    """Documents of all ``paths`` in order: plain text (``.gz`` too), JSON lines or Parquet.

    Plain-text files continue one another as in the reference (see the module docstring); a
    JSON-lines file (``.jsonl``, ``.jsonl.gz``) is one document per line and a Parquet file one
    per row, the text taken from ``text_field`` and cut into sentences by ``split_sentences``;
    such a file always starts and ends its own documents. ``skip``: ordinals of documents to
    leave out (``without_runs``; the held-out ones).
    """
    stats = stats if stats is not None else CorpusStats()
    reader = fileio.LineReader()

    def all_lines() -> Iterator[str]:
        for path in paths:
            stats.files += 1
            if is_jsonl(path):
                yield ""  # a JSONL file never continues a plain-text document
                yield from _jsonl_lines(path, reader, text_field)
                yield ""
            elif is_parquet(path):
                yield ""  # nor does a Parquet file
                for text in parquet_texts(path, text_field):
                    if text:  # not null
                        yield from split_sentences(text)
                        yield ""
                yield ""
            else:
                yield from reader.lines(path)

    lines = without_runs(all_lines(), skip) if skip else all_lines()
    documents = documents_from_lines(lines, encode, stats)
    stats.bad_lines += reader.bad_lines
    return documents


# -- JSON lines ----------------------------------------------------------------------------


def is_jsonl(path: str) -> bool:
    name = path[:-3] if path.endswith(".gz") else path
    return name.endswith(".jsonl")


def _jsonl_lines(path: str, reader: fileio.LineReader, field: str) -> Iterator[str]:
    """Reference-format lines from a JSONL file: sentences of each ``field``, blank between."""
    for number, raw in enumerate(reader.lines(path), 1):
        if not raw.strip():
            continue
        yield from split_sentences(jsonl_text(raw, "%s line %d" % (path, number), field))
        yield ""


def jsonl_text(line: str, where: str, field: str = "text") -> str:
    """The ``field`` of one JSON line; ``where`` names the line in errors."""
    try:
        text = json.loads(line)[field]
    except (ValueError, KeyError, TypeError):
        raise NorbertError(
            '%s is not a JSON object with a %s field: give one JSON object per line, like '
            '{%s: "..."}, or name the field with --text_field'
            % (where, json.dumps(field), json.dumps(field))
        ) from None
    if not isinstance(text, str):
        raise NorbertError('%s: %s must be a string' % (where, json.dumps(field)))
    return text


# -- Parquet -------------------------------------------------------------------------------

_PARQUET_BATCH = 1024  # rows per batch read: memory is this many texts, whatever the file
_TEXT_TYPES = ("string", "large_string", "string_view")  # Arrow types that read as str


def is_parquet(path: str) -> bool:
    return path.endswith(".parquet")


def parquet_texts(
    path: str, field: str, start: int = 0, stop: Optional[int] = None
) -> Iterator[Optional[str]]:
    """The ``field`` of rows ``[start, stop)`` of a Parquet file (``None`` for a null), in order.

    Row groups wholly outside the rows are not read (the file's metadata gives their sizes); the
    rest is read ``_PARQUET_BATCH`` rows at a time.
    """
    with fileio.open_binary(path) as f:
        pf = _checked_parquet(f, path, field)
        groups = []
        row = first = 0  # first: the first row of the first group read
        for g in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            if row + n <= start:
                first = row + n
            elif stop is None or row < stop:
                groups.append(g)
            row += n
        if not groups:
            return
        row = first  # of the batch at hand
        for batch in pf.iter_batches(_PARQUET_BATCH, row_groups=groups, columns=[field]):
            texts = batch.column(0).to_pylist()
            hi = len(texts) if stop is None else min(stop - row, len(texts))
            yield from texts[max(start - row, 0):hi]
            row += len(texts)
            if stop is not None and row >= stop:
                return


_PARQUET_MAGIC = b"PAR1"  # a Parquet file's first and last 4 bytes


def parquet_row_groups(path: str, field: str) -> List[Tuple[int, int]]:
    """``(rows, bytes)`` of each row group of a Parquet file, from its metadata alone (the
    footer: a few kilobytes, read alone): ``bytes`` is the uncompressed size of the ``field``
    column's chunk, a measure of its text that needs none of it read."""
    with fileio.open_binary(path) as f:
        meta = _checked_parquet(_parquet_footer(f, path), path, field).metadata
        groups = []
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            chunk = [group.column(c) for c in range(group.num_columns)
                     if group.column(c).path_in_schema in (field, field + ".list.element")]
            size = chunk[0].total_uncompressed_size if chunk else group.total_byte_size
            groups.append((group.num_rows, size))
    return groups


def _parquet_footer(f, path: str) -> bytes:
    """The smallest Parquet file that holds the open Parquet file ``f``'s metadata: its footer
    alone between the magic words (``PAR1``, the footer, its length, ``PAR1``). Reads the last
    8 bytes and then the footer, nothing else (pyarrow's own reader fetches the last 64 KB)."""
    f.seek(0, 2)
    size = f.tell()
    tail = b""
    if size >= 12:
        f.seek(size - 8)
        tail = f.read(8)
    length = int.from_bytes(tail[:4], "little") if len(tail) == 8 else 0
    if tail[4:] != _PARQUET_MAGIC or not 0 < length <= size - 12:
        raise NorbertError("cannot read %s as Parquet: it does not end as a Parquet file does "
                           "(a footer and %r): rewrite it, or give it another extension"
                           % (path, _PARQUET_MAGIC.decode()))
    f.seek(size - 8 - length)
    return _PARQUET_MAGIC + f.read(length) + tail


def _checked_parquet(f, path: str, field: str):
    """A ``pyarrow.parquet.ParquetFile`` of the open file ``f`` (or the bytes of a Parquet
    file) whose column ``field`` holds text; a missing pyarrow, a file that is not Parquet, or a
    wrong column is a ``NorbertError`` naming the file (and the flag)."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as e:
        raise NorbertError("reading Parquet (%s) needs pyarrow: pip install 'norbert[parquet]' "
                           "(%s)" % (path, e)) from None
    try:
        if isinstance(f, bytes):
            f = pyarrow.BufferReader(f)
        pf = pyarrow.parquet.ParquetFile(f if hasattr(f, "closed") else _WithClosed(f))
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid: not Parquet, or cut short
        raise NorbertError("cannot read %s as Parquet: %s" % (path, e)) from None
    schema = pf.schema_arrow
    if field not in schema.names:
        raise NorbertError("%s has no column %r (its columns: %s): name the text column "
                           "with --text_field" % (path, field, ", ".join(schema.names)))
    kind = schema.field(field).type
    values = kind.value_type if pyarrow.types.is_dictionary(kind) else kind
    if str(values) not in _TEXT_TYPES:
        raise NorbertError("%s: column %r holds %s, not text: name the text column with "
                           "--text_field" % (path, field, kind))
    return pf


class _WithClosed:
    """An open file with the ``closed`` that pyarrow asks of one (``tf.io.gfile.GFile``, for
    gs:// and other URLs, has none)."""

    closed = False

    def __init__(self, f):
        self._f = f

    def __getattr__(self, name):
        return getattr(self._f, name)


def split_sentences(text: str) -> List[str]:
    """A simple sentence splitter for running text (JSON lines and Parquet input).

    Blank lines end paragraphs; within a paragraph, lines are joined, and a sentence ends after
    ``.``, ``!``, ``?`` or ``…`` (with any closing quotes or brackets) followed by whitespace and
    an upper-case letter, a digit or an opening quote — or after the CJK full stops ``。！？``.
    Abbreviations such as "Dr. Smith" are split too: good enough for next-sentence pairs, and
    text that already has one sentence per line should be given as plain text instead.
    """
    sentences: List[str] = []
    for paragraph in text.replace("\r\n", "\n").split("\n\n"):
        flat = " ".join(paragraph.split())
        start = 0
        i = 0
        n = len(flat)
        while i < n:
            c = flat[i]
            if c in "。！？":
                end = i + 1
                while end < n and flat[end] in _CLOSERS:
                    end += 1
                sentences.append(flat[start:end].strip())
                start = i = end
                continue
            if c in ".!?…":
                end = i + 1
                while end < n and flat[end] in _CLOSERS:
                    end += 1
                if end + 1 < n and flat[end] == " " and _starts_sentence(flat[end + 1]):
                    sentences.append(flat[start:end].strip())
                    start = i = end + 1
                    continue
            i += 1
        if start < n:
            sentences.append(flat[start:].strip())
    return [s for s in sentences if s]


_CLOSERS = frozenset("\"'”’»)]}.!?…")
_OPENERS = frozenset("\"'“‘«([")


def _starts_sentence(c: str) -> bool:
    return c.isupper() or c.isdigit() or c in _OPENERS
