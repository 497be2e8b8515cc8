"""CoNLL-U, as Universal Dependencies defines it: sentences of words, and the label of each word
in a chosen column.

A sentence is a run of lines ended by a blank line; ``#`` lines are comments. Each other line
has ten tab-separated fields, ``ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC``, and
``ID`` says what the line is:

- an integer (``1``, ``2``, ...): a syntactic word, the unit annotated: these are the words;
- a range (``1-2``): a multiword token, the surface form of the words it spans (Norwegian
  ``dens`` or Spanish ``del`` = ``de el``); its annotation is on the words, so the line is
  passed over and the words themselves are read;
- a decimal (``1.1``): an empty node of the enhanced graph, not part of the basic annotation,
  passed over.

Labels (``label_column``): ``UPOS``, ``XPOS``, ``DEPREL``, or ``MISC:key`` for a value kept in
the MISC column as ``key=value`` (NorNE keeps its entity tags as ``name=B-PER``); a word whose
MISC lacks the key is labelled ``O`` (outside any entity). A malformed line is a one-line
``NorbertError`` naming the file and line number. No TensorFlow.
"""

import dataclasses
import re
from typing import List, Sequence, Tuple

from norbert import fileio
from norbert.errors import NorbertError

COLUMNS = ("ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC")
LABEL_COLUMNS = ("UPOS", "XPOS", "DEPREL")  # and MISC:key
OUTSIDE = "O"  # the label of a word whose MISC lacks the key

_WORD_ID = re.compile(r"^[1-9][0-9]*$")
_RANGE_ID = re.compile(r"^([1-9][0-9]*)-([1-9][0-9]*)$")
_EMPTY_ID = re.compile(r"^(0|[1-9][0-9]*)\.[1-9][0-9]*$")


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One sentence's words and their labels in the column read."""

    words: Tuple[str, ...]  # the FORM of each syntactic word, in order
    labels: Tuple[str, ...]  # one per word
    line: int  # the line number of its first word line, for messages


def check_label_column(column: str, flag: str = "--label_column") -> str:
    """``column`` if it names a label column (``UPOS``, ``XPOS``, ``DEPREL``, ``MISC:key``);
    otherwise a ``NorbertError`` naming ``flag``."""
    if column in LABEL_COLUMNS:
        return column
    if column.startswith("MISC:") and len(column) > len("MISC:") and "|" not in column:
        return column
    raise NorbertError("%s=%s is not a label column: use UPOS, XPOS, DEPREL or MISC:key (a "
                       "key=value kept in MISC, e.g. MISC:name for NorNE's entity tags)"
                       % (flag, column))


def misc_value(misc: str, key: str) -> str:
    """The value of ``key`` in a MISC field (``a=1|name=B-PER``), or ``OUTSIDE``."""
    if misc != "_":
        for item in misc.split("|"):
            name, _, value = item.partition("=")
            if name == key:
                return value
    return OUTSIDE


def _label(fields: Sequence[str], column: str) -> str:
    if column.startswith("MISC:"):
        return misc_value(fields[9], column[len("MISC:"):])
    return fields[COLUMNS.index(column)]


def _bad(path: str, number: int, what: str) -> NorbertError:
    return NorbertError("%s:%d: %s; CoNLL-U lines are ten tab-separated fields "
                        "(ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC)"
                        % (path, number, what))


def parse_lines(lines: Sequence[str], column: str, path: str = "<text>") -> List[Sentence]:
    """The sentences of CoNLL-U ``lines`` (without line ends), labelled from ``column``.

    Words are the integer-ID lines; multiword-token ranges and empty nodes are checked for
    shape and passed over. Word IDs must count 1, 2, ... within a sentence.
    """
    sentences: List[Sentence] = []
    words: List[str] = []
    labels: List[str] = []
    first = 0
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        if not line.strip():
            if words:
                sentences.append(Sentence(tuple(words), tuple(labels), first))
            words, labels = [], []
            continue
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != len(COLUMNS):
            raise _bad(path, number, "%d fields where 10 are expected" % len(fields))
        ident = fields[0]
        if _RANGE_ID.match(ident) or _EMPTY_ID.match(ident):
            continue  # a multiword token's surface form, or an empty node
        if not _WORD_ID.match(ident):
            raise _bad(path, number, "the ID %r is not a word number, a range (1-2) or an "
                                     "empty node (1.1)" % ident)
        if int(ident) != len(words) + 1:
            raise _bad(path, number, "word %s follows word %d (a blank line must end each "
                                     "sentence)" % (ident, len(words)))
        label = _label(fields, column)
        if not fields[1] or not label:
            raise _bad(path, number, "an empty FORM or label field")
        if not words:
            first = number
        words.append(fields[1])
        labels.append(label)
    if words:
        sentences.append(Sentence(tuple(words), tuple(labels), first))
    return sentences


def read_conllu(path: str, column: str, flag: str) -> List[Sentence]:
    """The sentences of the CoNLL-U file at ``path`` (``flag`` gave it), labelled from
    ``column``; a file without any sentence is a ``NorbertError``."""
    reader = fileio.LineReader()
    sentences = parse_lines(list(reader.lines(path)), column, path)
    if not sentences:
        raise NorbertError("%s=%s holds no sentence: give a CoNLL-U file with annotated "
                           "sentences" % (flag, path))
    return sentences
