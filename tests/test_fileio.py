import os

import pytest

from norbert import NorbertError, fileio


def test_atomic_output_renames_only_on_success(tmp_path):
    path = tmp_path / "out.bin"
    with fileio.atomic_output(str(path)) as f:
        f.write(b"abc")
        assert not path.exists()  # nothing under the final name while writing
    assert path.read_bytes() == b"abc"
    with pytest.raises(RuntimeError):
        with fileio.atomic_output(str(path)) as f:
            f.write(b"half")
            raise RuntimeError("crash")
    assert path.read_bytes() == b"abc"  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary left behind


def test_two_writers_of_one_file_in_one_process_get_their_own_temporary(tmp_path):
    # Attempts of one file on two machines may share a pid; the temporary must not be shared.
    path = str(tmp_path / "out.bin")
    with fileio.atomic_output(path) as first, fileio.atomic_output(path) as second:
        first.write(b"first")
        second.write(b"second")
        temporaries = sorted(p.name for p in tmp_path.iterdir())
        assert len(temporaries) == 2 and all(n.startswith("out.bin.tmp-") for n in temporaries)
    assert open(path, "rb").read() == b"first"  # the last renamed wins, whole


def test_atomic_output_makes_missing_folders(tmp_path):
    with fileio.atomic_output(str(tmp_path / "a" / "b" / "out.txt"), "w") as f:
        f.write("hei")
    assert (tmp_path / "a" / "b" / "out.txt").read_text() == "hei"


def test_atomic_output_that_fails_removes_the_folders_it_made(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(RuntimeError):
        with fileio.atomic_output(str(tmp_path / "a" / "b" / "c" / "out.txt")):
            raise RuntimeError("crash")
    assert os.listdir(str(tmp_path)) == ["a"] and os.listdir(str(tmp_path / "a")) == []


def test_atomic_output_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NorbertError, match="cannot create folder .*file"):
        with fileio.atomic_output(str(tmp_path / "file" / "sub" / "out.txt")):
            pass
    assert os.listdir(str(tmp_path)) == ["file"]


def test_atomic_output_through_tf_gfile():
    tf = pytest.importorskip("tensorflow")
    path = "ram://norbert-fileio/out.txt"
    with fileio.atomic_output(path, "w") as f:
        f.write("hei")
    assert tf.io.gfile.GFile(path).read() == "hei"
    assert fileio.read_bytes(path) == b"hei"
    assert fileio.glob("ram://norbert-fileio/*") == [path]


def test_remove_takes_a_file_away_and_a_missing_one_is_no_error(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("x")
    fileio.remove(str(path))
    assert not path.exists()
    fileio.remove(str(path))


def test_remove_through_tf_gfile():
    tf = pytest.importorskip("tensorflow")
    path = "ram://norbert-fileio-remove/a.txt"
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("x")
    fileio.remove(path)
    assert not tf.io.gfile.exists(path)
    fileio.remove(path)


def test_glob_and_read_bytes(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"1")
    (tmp_path / "b.txt").write_bytes(b"2")
    assert [p.rsplit("/", 1)[1] for p in fileio.glob(str(tmp_path / "*.txt"))] == ["a.txt", "b.txt"]
    with pytest.raises(NorbertError, match="no such file"):
        fileio.read_bytes(str(tmp_path / "c.txt"))


def test_expand_inputs_keeps_order_and_names_the_flag(tmp_path):
    for name in ["b.txt", "a.txt", "c.gz"]:
        (tmp_path / name).write_bytes(b"")
    spec = "%s,%s" % (tmp_path / "*.txt", tmp_path / "c.gz")
    assert [p.rsplit("/", 1)[1] for p in fileio.expand_inputs(spec)] == ["a.txt", "b.txt", "c.gz"]
    with pytest.raises(NorbertError, match="--corpus: no files match"):
        fileio.expand_inputs(str(tmp_path / "*.json"), flag="--corpus")
    with pytest.raises(NorbertError, match="--input_file is empty"):
        fileio.expand_inputs(" , ")


def test_line_reader_splits_on_newline_only_and_counts_bad_bytes(tmp_path):
    import gzip

    data = b"one\r\ntwo\rstill two\n\nbad \xff byte\nlast" + b"\nfine" * 60
    (tmp_path / "a.txt").write_bytes(data)
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(data))
    for name in ["a.txt", "a.txt.gz"]:
        reader = fileio.LineReader()
        lines = list(reader.lines(str(tmp_path / name)))
        assert lines == ["one\r", "two\rstill two", "", "bad \ufffd byte", "last"] + ["fine"] * 60
        assert reader.bad_lines == 1
    with pytest.raises(NorbertError, match="no such file"):
        list(fileio.LineReader().lines(str(tmp_path / "missing.txt")))


def test_line_reader_refuses_binary_and_other_encodings(tmp_path):
    (tmp_path / "records.tfrecord").write_bytes(b"text\n\x1a\x00\x00\x00\x03\x00data\n")
    with pytest.raises(NorbertError, match=r"records.tfrecord is binary \(NUL bytes on line 2\)"):
        list(fileio.LineReader().lines(str(tmp_path / "records.tfrecord")))
    text = "Blåbær og øl\nEn setning\nSå\n\nGrønn\nFerdig på fjellet\n"
    (tmp_path / "latin1.txt").write_bytes(text.encode("latin-1"))
    with pytest.raises(NorbertError, match=r"latin1.txt is not UTF-8 \(4 of its first 5 lines"):
        list(fileio.LineReader().lines(str(tmp_path / "latin1.txt")))
