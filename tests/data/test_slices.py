"""The input's slices (norbert.data.slices): every document in exactly one slice and in order,
whatever the files (plain, gzip, JSON-lines, mixed); slices about equal in bytes; a plan that
thins its document starts; documents longer than a block cut between sentences."""

import gzip
import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from norbert.data.documents import CorpusStats, read_documents
from norbert.data.slices import SliceReader, documents, plan_shards


def encode(text):
    """A stand-in tokeniser: one id per whitespace word (its length), none for symbols only."""
    return [len(w) for w in text.split() if any(c.isalnum() for c in w)]


def slice_documents(paths, start, end):
    stats = CorpusStats()
    return [d for d, _ in documents(iter(SliceReader(paths, start, end)), encode, stats) if d]


def documents_by_slices(paths, k):
    plan = plan_shards(paths, k)
    assert len(plan.cuts) == k + 1
    out = []
    for i in range(k):
        out.append(slice_documents(paths, plan.cuts[i], plan.cuts[i + 1]))
    return out


# -- the plan: every document in exactly one slice, in order --------------------------------


def _write_corpus(tmp_path, files):
    paths = []
    for i, (kind, text) in enumerate(files):
        path = tmp_path / ("f%02d.%s" % (i, kind))
        data = text.encode("utf-8")
        if kind.endswith("gz"):
            data = gzip.compress(data)
        path.write_bytes(data)
        paths.append(str(path))
    return paths


_LINE = st.sampled_from(
    ["", "", "alpha beta", "gamma", "delta epsilon zeta", " \u00a0 ", "\x1c", "\x01 !",
     "a\rbb", "x y z w", "\u4e2d\u6587 text", "\r"]
)


@settings(max_examples=60, deadline=None)
@given(files=st.lists(st.tuples(st.sampled_from(["txt", "txt", "txt.gz"]),
                                st.lists(_LINE, max_size=30), st.booleans()),
                      min_size=1, max_size=4),
       k=st.integers(1, 7))
def test_slices_cover_every_document_once_in_order(tmp_path_factory, files, k):
    tmp = tmp_path_factory.mktemp("corpus")
    texts = [(kind, "\n".join(lines) + ("\n" if newline else "")) for kind, lines, newline in files]
    paths = _write_corpus(tmp, texts)
    want = read_documents(paths, encode)
    got = documents_by_slices(paths, k)
    assert [d for shard in got for d in shard] == want


def test_jsonl_and_plain_files_mix(tmp_path):
    jsonl = "\n".join(json.dumps({"text": t}) for t in
                      ["One doc. Two sentences here.", "", "Another one? Yes."]) + "\n"
    paths = _write_corpus(tmp_path, [("txt", "a b\nc\n\nd e"), ("jsonl", jsonl),
                                     ("txt", "f g\n\nh\n"), ("jsonl.gz", jsonl)])
    want = read_documents(paths, encode)
    for k in (1, 2, 3, 5, 9):
        got = documents_by_slices(paths, k)
        assert [d for shard in got for d in shard] == want


def test_shards_are_about_equal_in_bytes(corpus_paths):
    plan = plan_shards(corpus_paths, 4)
    sizes = [b - a for a, b in zip(plan.cut_bytes, plan.cut_bytes[1:])]
    assert sum(sizes) == plan.total_bytes == sum(os.path.getsize(p) for p in corpus_paths)
    assert max(sizes) < 1.1 * plan.total_bytes / 4


def test_cuts_inside_lines_still_give_each_slice_its_documents(tmp_path):
    text = "".join("doc %d\nline\n\n" % i for i in range(5000))
    paths = _write_corpus(tmp_path, [("txt", text)])
    plan = plan_shards(paths, 8)
    assert len(set(plan.cuts)) == 9
    got = [slice_documents(paths, a, b) for a, b in zip(plan.cuts, plan.cuts[1:])]
    assert [d for s in got for d in s] == read_documents(paths, encode)
    assert all(len(s) > 400 for s in got)


# -- documents: long ones cut between sentences ---------------------------------------------


def test_a_document_longer_than_a_block_is_cut_between_sentences():
    lines = [("s%d word" % i, 10) for i in range(100)] + [("", 1), ("tail doc", 9)]
    stats = CorpusStats()
    docs = [d for d, _ in documents(iter(lines), encode, stats, max_bytes=95) if d]
    assert [len(d) for d in docs] == [10] * 10 + [1]
    assert [s for d in docs for s in d] == [encode(t) for t, _ in lines if t]
    assert stats.documents == 11 and stats.sentences == 101
