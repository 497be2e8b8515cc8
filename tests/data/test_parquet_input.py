"""Parquet input (one document per row, its text in the column --text_field): the same
documents as the same text given as JSON lines, in both local modes; slices that cut a file
between row groups; nulls skipped; errors that name the file, the column and the flag."""

import json
import random
import sys

import pytest

from norbert.data import tfrecord
from norbert.data.builder import create_pretraining_data
from norbert.data.documents import CorpusStats, parquet_texts, read_documents
from norbert.data.slices import SliceReader, documents, plan_shards
from norbert.errors import NorbertError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

WORDS = ["alpha", "bravo", "delta", "gamma", "kappa", "omega", "sigma", "theta", "zulu"]


def encode(text):
    """A stand-in tokeniser: one id per whitespace word (its length), none for symbols only."""
    return [len(w) for w in text.split() if any(c.isalnum() for c in w)]


def texts(n, seed=0):
    """``n`` documents of three sentences of eight five-letter words: all of equal bytes, so
    that the plan cuts Parquet and JSON lines (whose lines add the same bytes to each) alike."""
    rng = random.Random(seed)
    return [" ".join(" ".join(rng.choice(WORDS) for _ in range(8)).capitalize() + "."
                     for _ in range(3)) for _ in range(n)]


def write_parquet(path, values, field="text", row_group_size=None, **more):
    table = pa.table(dict({field: pa.array(values, type=pa.string())}, **more))
    pq.write_table(table, str(path), row_group_size=row_group_size)
    return str(path)


def write_jsonl(path, values, field="text"):
    path.write_text("".join(json.dumps({field: v}) + "\n" for v in values), encoding="utf-8")
    return str(path)


def slices_documents(paths, k, text_field="text"):
    """The documents of each of the ``k`` slices; their lines count each byte of the input
    once (as one slice of the whole input counts them)."""
    plan = plan_shards(paths, k, text_field=text_field)
    out, nbytes = [], 0
    for start, end in zip(plan.cuts, plan.cuts[1:]):
        lines = list(SliceReader(paths, start, end, text_field))
        nbytes += sum(n for _, n in lines)
        out.append([d for d, _ in documents(iter(lines), encode, CorpusStats()) if d])
    whole = SliceReader(paths, (0, 0), (len(paths), 0), text_field)
    assert nbytes == sum(n for _, n in whole)
    return plan, out


@pytest.fixture
def vocab(make_vocab):
    return make_vocab(WORDS + ["."])


def _build(inputs, out, vocab, **kw):
    settings = dict(dupe_factor=2, max_seq_length=32, max_predictions_per_seq=5,
                    progress=False)
    settings.update(kw)
    return create_pretraining_data(input_file=",".join(inputs), output_file=out,
                                   vocab_file=vocab, **settings)


# -- the builder: Parquet reads as JSON lines -----------------------------------------------


def test_reference_exact_build_from_parquet_equals_jsonl(tmp_path, vocab):
    values = texts(40)
    parquet = write_parquet(tmp_path / "c.parquet", values, row_group_size=16)
    jsonl = write_jsonl(tmp_path / "c.jsonl", values)
    a = _build([parquet], str(tmp_path / "p.tfrecord"), vocab)
    b = _build([jsonl], str(tmp_path / "j.tfrecord"), vocab)
    assert a.corpus.documents == b.corpus.documents == 40 and a.instances > 40
    assert (tmp_path / "p.tfrecord").read_bytes() == (tmp_path / "j.tfrecord").read_bytes()


def test_sharded_build_from_parquet_equals_jsonl(tmp_path, vocab):
    values = texts(60, seed=1)
    parquet = write_parquet(tmp_path / "c.parquet", values, row_group_size=5)
    jsonl = write_jsonl(tmp_path / "c.jsonl", values)
    want = read_documents([jsonl], encode)
    assert len(want) == 60 and read_documents([parquet], encode) == want
    # The same documents in the same slices: equal-sized documents cut alike in both (the
    # Parquet file between row groups of 5 rows, equal in their text's size).
    plan_p, got_p = slices_documents([parquet], 3)
    plan_j, got_j = slices_documents([jsonl], 3)
    assert [len(s) for s in got_p] == [20, 20, 20] and got_p == got_j
    assert [c[1] for c in plan_p.cuts[1:-1]] == [20, 40]  # rows
    assert plan_p.total_bytes >= sum(len(v.encode("utf-8")) for v in values)  # uncompressed
    # And so the same records, shard by shard.
    for name, path in (("p", parquet), ("j", jsonl)):
        summary = _build([path], str(tmp_path / (name + ".tfrecord")), vocab,
                         num_output_shards=3, num_workers=1)
        assert summary.corpus.documents == 60 and summary.instances > 60
    for k in range(3):
        suffix = ".tfrecord-%05d-of-00003" % k
        p = list(tfrecord.read_records(str(tmp_path / ("p" + suffix))))
        assert p and p == list(tfrecord.read_records(str(tmp_path / ("j" + suffix))))


def test_a_custom_text_field_for_jsonl_and_parquet(tmp_path, vocab):
    values = texts(12, seed=2)
    parquet = write_parquet(tmp_path / "c.parquet", values, field="body",
                            text=pa.array(["Not this."] * 12))
    jsonl = write_jsonl(tmp_path / "c.jsonl", values, field="body")
    want = read_documents([jsonl], encode, text_field="body")
    assert len(want) == 12 and read_documents([parquet], encode, text_field="body") == want
    assert [d for s in slices_documents([jsonl, parquet], 4, "body")[1] for d in s] == want * 2
    with pytest.raises(NorbertError, match=r'c\.jsonl line 1 .*"text" field.*--text_field'):
        read_documents([jsonl], encode)
    for mode in ({}, dict(num_output_shards=2, num_workers=1)):
        out = tmp_path / ("out%d" % len(mode))
        out.mkdir()
        summary = _build([parquet, jsonl], str(out / "t.tfrecord"), vocab, text_field="body",
                         **mode)
        assert summary.corpus.documents == 24


# -- slices of a Parquet file ---------------------------------------------------------------


def test_slices_cut_between_row_groups_cover_each_row_once(tmp_path, monkeypatch):
    values = ["Row %d here. %s" % (i, t) for i, t in enumerate(texts(50, seed=3))]
    path = write_parquet(tmp_path / "c.parquet", values, row_group_size=4)
    assert pq.ParquetFile(path).metadata.num_row_groups == 13
    want = read_documents([path], encode)
    for k in (1, 2, 3, 7, 11):
        plan, got = slices_documents([path], k)
        assert [d for s in got for d in s] == want
        rows = [c[1] if c[0] == 0 else 50 for c in plan.cuts]
        assert rows == sorted(rows) and len(set(rows)) == k + 1
    # Any rows [start, stop), and the row groups before and after them are not read.
    for start, stop in ((0, 50), (3, 4), (4, 9), (17, 50), (23, 23), (49, 50)):
        assert list(parquet_texts(path, "text", start, stop)) == values[start:stop]
    read = []
    iter_batches = pq.ParquetFile.iter_batches

    def spy(self, *args, **kw):
        read.append(list(kw["row_groups"]))
        return iter_batches(self, *args, **kw)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    reader = SliceReader([path], (0, 10), (0, 21))
    assert [d for d, _ in documents(iter(reader), encode, CorpusStats()) if d] == want[10:21]
    assert read == [[2, 3, 4, 5]] and reader.lines_read == 11


def test_null_and_empty_rows_are_no_documents(tmp_path):
    values = [None, "First doc. Two sentences.", "", None, "  ", "Second one.", None]
    path = write_parquet(tmp_path / "c.parquet", values, row_group_size=2)
    stats = CorpusStats()
    docs = read_documents([path], str.split, stats)
    assert docs == [[["First", "doc."], ["Two", "sentences."]], [["Second", "one."]]]
    assert stats.documents == 2 and stats.files == 1
    for k in (1, 2, 4):
        assert [d for s in slices_documents([path], k)[1] for d in s] == read_documents(
            [path], encode)


def test_plain_text_and_parquet_mix(tmp_path, vocab):
    one = tmp_path / "a.txt"
    one.write_text("alpha bravo\ngamma\n\ndelta kappa", encoding="utf-8")  # no blank line at end
    parquet = write_parquet(tmp_path / "b.parquet", ["Omega sigma. Theta zulu."] + texts(9),
                            row_group_size=3)
    two = tmp_path / "c.txt"
    two.write_text("zulu theta\n\nomega\n", encoding="utf-8")
    paths = [str(one), parquet, str(two)]
    docs = read_documents(paths, str.split)
    assert docs[:3] == [[["alpha", "bravo"], ["gamma"]], [["delta", "kappa"]],
                        [["Omega", "sigma."], ["Theta", "zulu."]]]
    assert docs[-2:] == [[["zulu", "theta"]], [["omega"]]] and len(docs) == 14
    want = read_documents(paths, encode)
    for k in (1, 2, 3, 5, 9):
        assert [d for s in slices_documents(paths, k)[1] for d in s] == want
    summary = _build(paths, str(tmp_path / "t.tfrecord"), vocab)
    assert summary.corpus.documents == 14 and summary.corpus.files == 3


def test_a_remote_parquet_file_reads_as_a_local_one(tmp_path):
    """gs:// and friends go through tf.io.gfile: TF's in-memory ram:// stands in for them."""
    tf = pytest.importorskip("tensorflow")
    local = write_parquet(tmp_path / "c.parquet", texts(30, seed=4), row_group_size=8)
    remote = "ram://norbert-parquet/c.parquet"
    tf.io.gfile.copy(local, remote, overwrite=True)
    want = read_documents([local], encode)
    assert read_documents([remote], encode) == want
    assert [d for s in slices_documents([remote], 3)[1] for d in s] == want


def test_planning_reads_the_footer_alone(tmp_path, monkeypatch):
    """The plan's row groups come from the last 8 bytes and the footer, nothing else: the
    bytes read are those, far fewer than pyarrow's own 64 KB tail read; the sizes are the
    file's metadata's."""
    from norbert import fileio
    from norbert.data import documents as documents_module

    path = write_parquet(tmp_path / "c.parquet", texts(3000, seed=5), row_group_size=500)
    read = []

    class Counted:
        def __init__(self, f):
            self._f = f

        def __getattr__(self, name):
            return getattr(self._f, name)

        def read(self, n=-1):
            data = self._f.read(n)
            read.append(len(data))
            return data

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

    opened = fileio.open_binary
    monkeypatch.setattr(documents_module.fileio, "open_binary",
                        lambda p: Counted(opened(p).__enter__()))
    groups = documents_module.parquet_row_groups(path, "text")
    meta = pq.ParquetFile(path).metadata
    assert groups == [(meta.row_group(g).num_rows,
                       meta.row_group(g).column(0).total_uncompressed_size)
                      for g in range(meta.num_row_groups)]
    assert len(groups) == 6
    with open(path, "rb") as f:
        f.seek(-8, 2)
        footer = int.from_bytes(f.read(4), "little")
    assert sum(read) == footer + 8 < 64 * 1024 < (tmp_path / "c.parquet").stat().st_size


# -- errors ----------------------------------------------------------------------------------


def test_a_missing_column_names_the_file_the_columns_and_the_flag(tmp_path):
    path = write_parquet(tmp_path / "c.parquet", ["A doc."], field="content",
                         id=pa.array([1]))
    message = r"c\.parquet has no column 'text' \(its columns: content, id\).*--text_field"
    with pytest.raises(NorbertError, match=message):
        read_documents([path], encode)
    with pytest.raises(NorbertError, match=message):
        plan_shards([path], 2)
    with pytest.raises(NorbertError, match=r"c\.parquet: column 'id' holds int64, not text"):
        read_documents([path], encode, text_field="id")


def test_a_file_that_is_not_parquet_and_a_missing_pyarrow(tmp_path, monkeypatch):
    path = tmp_path / "c.parquet"
    path.write_text("alpha bravo\n", encoding="utf-8")
    with pytest.raises(NorbertError, match=r"cannot read .*c\.parquet as Parquet"):
        read_documents([str(path)], encode)
    with pytest.raises(NorbertError, match=r"cannot read .*c\.parquet as Parquet: it does not "
                                           r"end as a Parquet file does"):
        plan_shards([str(path)], 2)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(NorbertError, match=r"reading Parquet \(.*c\.parquet\) needs pyarrow: "
                                           r"pip install 'norbert\[parquet\]'"):
        read_documents([str(path)], encode)
    write_parquet(path, ["A doc."])  # planning from its footer needs pyarrow too
    with pytest.raises(NorbertError, match=r"reading Parquet \(.*c\.parquet\) needs pyarrow"):
        plan_shards([str(path)], 2)
