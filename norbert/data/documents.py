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
"""

import dataclasses
import json
from typing import Callable, Iterable, Iterator, List, Sequence

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


def read_documents(
    paths: Sequence[str], encode: Encode, stats: CorpusStats = None
) -> List[Document]:
    """Documents of all ``paths`` in order (plain text, ``.gz`` or ``.jsonl``; local or remote).

    Plain-text files continue one another as in the reference (see the module docstring); a
    JSON-lines file (``.jsonl``, ``.jsonl.gz``) is one document per line, taken from its
    ``"text"`` field and cut into sentences by ``split_sentences``, and always starts and ends
    its own documents.
    """
    stats = stats if stats is not None else CorpusStats()
    reader = fileio.LineReader()

    def all_lines() -> Iterator[str]:
        for path in paths:
            stats.files += 1
            if is_jsonl(path):
                yield ""  # a JSONL file never continues a plain-text document
                yield from _jsonl_lines(path, reader)
                yield ""
            else:
                yield from reader.lines(path)

    documents = documents_from_lines(all_lines(), encode, stats)
    stats.bad_lines += reader.bad_lines
    return documents


# -- JSON lines ----------------------------------------------------------------------------


def is_jsonl(path: str) -> bool:
    name = path[:-3] if path.endswith(".gz") else path
    return name.endswith(".jsonl")


def _jsonl_lines(path: str, reader: fileio.LineReader) -> Iterator[str]:
    """Reference-format lines from a JSONL file: sentences of each ``"text"``, blank between."""
    for number, raw in enumerate(reader.lines(path), 1):
        if not raw.strip():
            continue
        yield from split_sentences(jsonl_text(raw, "%s line %d" % (path, number)))
        yield ""


def jsonl_text(line: str, where: str) -> str:
    """The ``"text"`` of one JSON line; ``where`` names the line in errors."""
    try:
        text = json.loads(line)["text"]
    except (ValueError, KeyError, TypeError):
        raise NorbertError(
            '%s is not a JSON object with a "text" field: give one JSON object per line, like '
            '{"text": "..."}' % where
        ) from None
    if not isinstance(text, str):
        raise NorbertError('%s: "text" must be a string' % where)
    return text


def split_sentences(text: str) -> List[str]:
    """A simple sentence splitter for running text (used for JSON lines input).

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
