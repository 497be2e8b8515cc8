"""The input's slices (norbert.data.slices): every document in exactly one slice and in order,
whatever the files (plain, gzip, JSON-lines, mixed); slices about equal in bytes; a plan that
thins its document starts; documents longer than a block cut between sentences."""

import gzip
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from norbert.data.documents import CorpusStats, read_documents
from norbert.data.slices import SliceReader, documents, plan_shards
from norbert.errors import NorbertError


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


# -- slices from metadata: any cut, anywhere -------------------------------------------------


def cut_documents(paths, cuts):
    """The documents of the slices between ``cuts`` (positions, in order; the input's start and
    end added), concatenated; and the bytes their lines counted."""
    cuts = [(0, 0)] + list(cuts) + [(len(paths), 0)]
    docs, nbytes, counted = [], 0, 0
    for start, end in zip(cuts, cuts[1:]):
        reader = SliceReader(paths, start, end)
        lines = list(reader)
        nbytes += sum(n for _, n in lines)
        counted += reader.lines_read
        docs += [d for d, _ in documents(iter(lines), encode, CorpusStats()) if d]
    whole = SliceReader(paths, (0, 0), (len(paths), 0))
    assert sum(n for _, n in whole) == nbytes and whole.lines_read == counted  # each line once
    return docs, nbytes


def _whole_bytes(paths):
    return sum(n for _, n in SliceReader(paths, (0, 0), (len(paths), 0)))


# Files built to break slice boundaries (every one cut at every byte below): CRLF pairs,
# multi-byte UTF-8 (2, 3 and 4 bytes) and multi-byte whitespace on "blank" lines, no final
# newline, no blank line at all, an empty file, documents running on across files.
HARD_FILES = [
    ("txt", "Ünïcödé one\r\nsecond € line\r\n\r\n \u00a0\u3000 \r\nnext doc 😀\r\nmore"),
    ("txt", ""),
    ("txt", "still the doc before\n\u3000\n\n\u00a0\ndoc € two\nno final newline"),
    ("txt", "one long document with no blank line\n" * 12),
    ("jsonl", '{"text": "Json doc. Two sentences here."}\n\n{"text": "Another één."}\n'),
    ("txt", "\n\nafter json\r\n\r\n"),
]


def test_a_cut_at_any_byte_gives_every_document_once(tmp_path):
    paths = _write_corpus(tmp_path, HARD_FILES)
    want = read_documents(paths, encode)
    total = _whole_bytes(paths)
    assert len(want) == 6 and total == sum(os.path.getsize(p) for p in paths)
    for index, path in enumerate(paths):
        for offset in range(os.path.getsize(path) + 1):
            docs, nbytes = cut_documents(paths, [(index, offset)])
            assert docs == want, (index, offset)
            assert nbytes == total, (index, offset)  # every line read by exactly one slice


@pytest.mark.parametrize("offset", [0, 1, 7])
def test_a_cut_past_the_end_of_an_empty_file_inside_a_document(tmp_path, offset):
    """A document running on over an empty file: a cut in the empty file, at or past its end,
    leaves the document to the slice it starts in (the line before the cut is the file
    before's, not blank)."""
    paths = _write_corpus(tmp_path, [("txt", "word"), ("txt", ""), ("txt", "word")])
    docs, nbytes = cut_documents(paths, [(1, offset)])
    assert docs == read_documents(paths, encode) and len(docs) == 1
    assert nbytes == _whole_bytes(paths) == 8


def test_many_cut_counts_on_mixed_inputs_with_gz_and_parquet(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    files = HARD_FILES + [("txt.gz", "gz continues\nthe text file before?\n\ngz doc\n"),
                          ("txt.gz", "")]
    paths = _write_corpus(tmp_path, files)
    for name, rows, group in (("many", 40, 3), ("one", 7, None)):
        path = str(tmp_path / ("%s.parquet" % name))
        values = [None if i % 9 == 4 else "Row %d. It has text é." % i for i in range(rows)]
        pq.write_table(pa.table({"text": pa.array(values, type=pa.string())}), path,
                       row_group_size=group)
        paths.insert(3, path)
    paths.append(_write_corpus(tmp_path / "..", [("txt", "a last\n\nfile")])[0])
    want = read_documents(paths, encode)
    total = _whole_bytes(paths)
    for k in range(1, 41):
        plan = plan_shards(paths, k)
        docs, nbytes = cut_documents(paths, plan.cuts[1:-1])
        assert docs == want, k
        assert nbytes == total, k


_HARD_LINE = st.sampled_from(
    ["", "", "\r", " \u00a0", "\u3000", "word", "two words\r", "é€😀 mixed", "x" * 40,
     "\x1c", "a\rb"])


@settings(max_examples=40, deadline=None)
@given(files=st.lists(st.tuples(st.lists(_HARD_LINE, max_size=12), st.booleans()),
                      min_size=1, max_size=3),
       cuts=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 400)), max_size=5))
def test_slices_at_random_bytes_cover_every_document_once(tmp_path_factory, files, cuts):
    tmp = tmp_path_factory.mktemp("hard")
    paths = _write_corpus(tmp, [("txt", "\n".join(lines) + ("\n" if end else ""))
                                for lines, end in files])
    cuts = sorted((min(f, len(paths) - 1), o) for f, o in cuts)
    docs, nbytes = cut_documents(paths, cuts)
    assert docs == read_documents(paths, encode)
    assert nbytes == _whole_bytes(paths)


def test_a_document_far_longer_than_its_slice_is_read_by_the_slice_it_starts_in(tmp_path):
    paths = _write_corpus(tmp_path, [("txt", "short\n\n" + "long line\n" * 2000 + "\nend\n")])
    plan = plan_shards(paths, 10)
    per_slice = [slice_documents(paths, a, b) for a, b in zip(plan.cuts, plan.cuts[1:])]
    assert [len(s) for s in per_slice] == [2] + [0] * 8 + [1]  # "short" and "long...": one
    assert len(per_slice[0][1]) == 2000
    assert [d for s in per_slice for d in s] == read_documents(paths, encode)


def test_the_plan_reads_no_text_and_a_gz_trailer_only(tmp_path, monkeypatch):
    from norbert import fileio

    big = "".join("doc %d\nline é\n\n" % i for i in range(3000))
    paths = _write_corpus(tmp_path, [("txt", big), ("jsonl", '{"text": "x"}\n'),
                                     ("txt.gz", big)])
    opened = []
    real_open = fileio.open_binary

    def spy(path, decompress=True):
        opened.append((os.path.basename(path), decompress))
        return real_open(path, decompress)

    monkeypatch.setattr(fileio, "open_binary", spy)
    plan = plan_shards(paths, 4)
    assert opened == [("f02.txt.gz", False)]  # its 4-byte trailer: the decompressed size
    assert plan.units[2].weight == len(big.encode("utf-8"))
    assert plan.total_bytes == 2 * len(big.encode("utf-8")) + len('{"text": "x"}\n')
    assert plan.cuts[1] == (0, plan.total_bytes // 4)  # anywhere in a plain file
    assert plan.cuts[3] in ((2, 0), (3, 0))  # a .gz file is one slice, whole


def _cut_gzip(data):
    """``data`` gzipped, then cut short where its last 4 bytes are compressed data that, read as
    a gzip trailer, say more than the file can hold (the usual case: a trailer is a size)."""
    packed = gzip.compress(data)
    for end in range(len(packed) // 2, 0, -1):
        if int.from_bytes(packed[end - 4:end], "little") > 1032 * end + 1024:
            return packed[:end]
    raise AssertionError("no such cut")


def test_a_gz_file_cut_short_is_a_one_line_error_at_planning_naming_it(tmp_path):
    text = "".join("doc %d\nline \u00e9 %d\n\n" % (i, i * i) for i in range(3000))
    paths = _write_corpus(tmp_path, [("txt", "a b\n"), ("txt.gz", text), ("txt.gz", text)])
    with open(paths[2], "r+b") as f:  # a download cut short: its last bytes compressed data
        f.write(_cut_gzip(text.encode("utf-8")))
        f.truncate()
    assert plan_shards(paths[:2], 2).units[1].weight == len(text.encode("utf-8"))  # whole
    with pytest.raises(NorbertError) as error:
        plan_shards(paths, 2)
    message = str(error.value)
    assert message.startswith(paths[2] + " is truncated or damaged, not a whole gzip file: ")
    assert message.endswith(": copy or compress it again") and "\n" not in message


def test_gz_files_a_trailer_could_belong_to_are_planned_by_it(tmp_path):
    """The most compressible gzip file deflate can write; one of several members (its trailer
    the last one's, small); one over 1 MiB whose trailer says less (the size modulo 2**32)."""
    runs = gzip.compress(b"\n" * 20000000, 9)  # about 1030 bytes per compressed byte
    two = gzip.compress(b"x y\n" * 100000) + gzip.compress(b"z\n")
    big = gzip.compress(os.urandom(1 << 20))  # incompressible: its trailer says less than it
    for name, data in (("runs.txt.gz", runs), ("two.txt.gz", two), ("big.txt.gz", big)):
        (tmp_path / name).write_bytes(data)
    paths = [str(tmp_path / n) for n in ("runs.txt.gz", "two.txt.gz", "big.txt.gz")]
    weights = [u.weight for u in plan_shards(paths, 2).units]
    big_size = os.path.getsize(paths[2])
    assert weights[:2] == [20000000, 2] and big_size <= weights[2] == (1 << 20) + (1 << 32)


def test_a_big_gz_file_is_logged_once_with_the_advice(tmp_path, caplog):
    paths = _write_corpus(tmp_path, [("txt.gz", "a\n\nb\n"), ("txt.gz", "c\n")])
    with caplog.at_level("INFO"):
        plan_shards(paths, 3)
    said = [r.getMessage() for r in caplog.records if ".gz" in r.getMessage()]
    assert len(said) == 1 and "store big corpora uncompressed, or in several files" in said[0]


def test_cuts_depend_on_sizes_and_k_only(tmp_path):
    a = _write_corpus(tmp_path / "..", [("txt", "x" * 1000)])
    plan = plan_shards(a, 4)
    assert plan.cuts == [(0, 0), (0, 250), (0, 500), (0, 750), (1, 0)]
    assert plan.cut_bytes == [0, 250, 500, 750, 1000]
    assert [p for p in plan.pieces(1)] == [(0, 250, 500)]


def test_parquet_is_cut_between_row_groups_balanced_by_their_sizes():
    from norbert.data.slices import Unit, cut_units

    # Row groups of 10, 10, 80 bytes: 2 shards cut before the big one, 3 shards too.
    units = [Unit(0, 0, 10, False), Unit(0, 5, 10, False), Unit(0, 9, 80, False)]
    assert cut_units(units, 1, 2)[0] == [(0, 0), (0, 9), (1, 0)]
    cuts, at = cut_units(units, 1, 4)
    assert cuts == [(0, 0), (0, 9), (0, 9), (1, 0), (1, 0)] and at == [0, 20, 20, 100, 100]


@pytest.mark.parametrize("pad", [4090, 4093, 4094, 4095, 9000])
def test_lines_longer_than_the_look_back(tmp_path, pad):
    """The line before a cut read back in 4 KB steps: a character cut by a step (é at the
    step's edge), whitespace-only lines longer than a step, text far back in the line."""
    text = ("é" + " " * pad + "\nnext\n\n" + " " * pad + "\u00a0\u3000\nthird\n"
            + "\u3000" * (pad // 3) + "é\nfourth\n")
    paths = _write_corpus(tmp_path, [("txt", text)])
    want = read_documents(paths, encode)
    assert len(want) == 2
    size = os.path.getsize(paths[0])
    newlines = [i for i, b in enumerate(open(paths[0], "rb").read()) if b == 10]
    for offset in sorted(set(range(0, size + 1, 997)) | {n + d for n in newlines
                                                         for d in (-1, 0, 1, 2)}):
        assert cut_documents(paths, [(0, offset)])[0] == want, offset


def test_exact_dedup_keeps_the_earliest_copy_however_the_input_is_cut(tmp_path):
    from norbert.data import dedup

    docs = ["alpha beta\ngamma", "delta", "alpha  beta\ngamma", "eps é", "delta", "zeta",
            "eps é"] * 3
    paths = _write_corpus(tmp_path, [("txt", "\r\n\r\n".join(docs[:9])), ("txt", ""),
                                     ("txt", "\n\n\n".join(docs[9:]) + "\n")])
    seen, want = set(), []  # the naive answer: the first copy of each text, in order
    for document in read_documents(paths, str.split):
        text = tuple(map(tuple, document))
        if text not in seen:
            seen.add(text)
            want.append([encode(" ".join(words)) for words in document])
    assert 4 < len(want) < len(read_documents(paths, encode))
    for k in (1, 2, 3, 5, 8, 13):
        cuts = plan_shards(paths, k).cuts
        readers = [SliceReader(paths, a, b) for a, b in zip(cuts, cuts[1:])]
        drops = dedup.dropped([dedup.slice_digests(r) for r in readers])
        kept = []
        for (a, b), drop in zip(zip(cuts, cuts[1:]), drops):
            kept += [d for d, _ in documents(iter(SliceReader(paths, a, b)), encode,
                                             CorpusStats(), skip=frozenset(drop)) if d]
        assert kept == want, k


def test_remote_files_are_planned_and_read_as_local_ones(tmp_path):
    """gs:// and friends go through tf.io.gfile (sizes, the .gz trailer, seeking back for the
    line before a cut): TF's in-memory ram:// stands in for them."""
    tf = pytest.importorskip("tensorflow")
    files = HARD_FILES + [("txt.gz", "gz continues\nthe text file before?\n\ngz doc\n")]
    local = _write_corpus(tmp_path, files)
    remote = ["ram://norbert-slices/%s" % os.path.basename(p) for p in local]
    for a, b in zip(local, remote):
        tf.io.gfile.copy(a, b, overwrite=True)
    want = read_documents(local, encode)
    for k in (2, 5, 11):
        plan, remote_plan = plan_shards(local, k), plan_shards(remote, k)
        assert remote_plan.cuts == plan.cuts and remote_plan.total_bytes == plan.total_bytes
        assert cut_documents(remote, plan.cuts[1:-1])[0] == want
    assert cut_documents(remote, [(0, 17), (2, 30), (5, 3)])[0] == want
