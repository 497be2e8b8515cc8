"""Corpus reading: documents of tokenised sentences, by the reference's rules."""

import gzip
import json

import pytest

from norbert.data.documents import (
    CorpusStats, documents_from_lines, read_documents, split_sentences,
)
from norbert.errors import NorbertError


def encode(text):
    """A stand-in tokeniser: one id per whitespace word (its length), none for symbols only."""
    return [len(w) for w in text.split() if any(c.isalnum() for c in w)]


def test_blank_lines_separate_documents_and_empty_ones_are_dropped():
    lines = ["", "a bb", "ccc", "", "", "dddd", ""]
    stats = CorpusStats()
    docs = documents_from_lines(lines, encode, stats)
    assert docs == [[[1, 2], [3]], [[4]]]
    assert (stats.lines, stats.documents, stats.sentences, stats.tokens) == (7, 2, 3, 4)


def test_whitespace_only_lines_break_and_tokenless_lines_do_not():
    # U+00A0 and spaces strip to nothing: a break. "\x01 !" has no tokens: no break.
    docs = documents_from_lines(["a", " \u00a0 ", "bb", "\x01 !", "ccc"], encode)
    assert docs == [[[1]], [[2], [3]]]


def test_carriage_returns_are_dropped_anywhere():
    # As TensorFlow's reader: "a\rbb" reads as "abb", one word.
    assert documents_from_lines(["a\rbb", "cc\r"], encode) == [[[3], [2]]]
    assert documents_from_lines(["\r"], encode) == []


def test_documents_run_on_across_plain_files(tmp_path):
    one = tmp_path / "one.txt"
    one.write_text("a\n\nbb\nccc", encoding="utf-8")  # no blank line at the end
    two = tmp_path / "two.txt.gz"
    with gzip.open(str(two), "wt", encoding="utf-8") as f:
        f.write("dddd\n\neeeee\n")
    stats = CorpusStats()
    docs = read_documents([str(one), str(two)], encode, stats)
    assert docs == [[[1]], [[2], [3], [4]], [[5]]]
    assert stats.files == 2 and stats.documents == 3


def test_bad_utf8_is_replaced_and_counted(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good line\nbad \xff\xfe line\n")
    stats = CorpusStats()
    docs = read_documents([str(path)], lambda t: [ord(c) for c in t], stats)
    assert stats.bad_lines == 1
    assert 0xFFFD in docs[0][1]


def test_jsonl_is_one_document_per_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(
        json.dumps({"text": "First one here. Second one! Third?"}) + "\n\n"
        + json.dumps({"text": "Other doc.", "id": 3}) + "\n",
        encoding="utf-8",
    )
    plain = tmp_path / "p.txt"
    plain.write_text("runs on", encoding="utf-8")  # a JSONL file never continues it
    docs = read_documents([str(plain), str(path)], lambda t: t.split())
    assert docs == [
        [["runs", "on"]],
        [["First", "one", "here."], ["Second", "one!"], ["Third?"]],
        [["Other", "doc."]],
    ]


@pytest.mark.parametrize("line", ['{"txt": "x"}', "not json", '{"text": 3}', "[1]"])
def test_bad_jsonl_names_file_and_line(tmp_path, line):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "fine."}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(NorbertError, match=r"c\.jsonl line 2"):
        read_documents([str(path)], str.split)


def test_split_sentences():
    assert split_sentences("Hello there. How are you? I'm fine!") == [
        "Hello there.", "How are you?", "I'm fine!"]
    assert split_sentences("Pi is 3.14 today. \"Quoted.\" Next") == [
        "Pi is 3.14 today.", "\"Quoted.\"", "Next"]
    assert split_sentences("line one\ncontinues.\n\nNew paragraph") == [
        "line one continues.", "New paragraph"]
    assert split_sentences("第一句。第二句！") == ["第一句。", "第二句！"]
    assert split_sentences("  \n\n ") == []
