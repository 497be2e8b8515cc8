"""Protobuf wire format and TFRecord framing, written and read by hand, checked against
TensorFlow."""

import io
import os
import random
import re

import pytest

from norbert.data import tfrecord
from norbert.errors import NorbertError


def test_varint():
    assert tfrecord.varint(0) == b"\x00"
    assert tfrecord.varint(127) == b"\x7f"
    assert tfrecord.varint(128) == b"\x80\x01"
    assert tfrecord.varint(30521) == b"\xb9\xee\x01"
    assert tfrecord.varint(-1) == b"\xff" * 9 + b"\x01"


def test_crc32c_check_value_and_fallback():
    assert tfrecord.crc32c(b"123456789") == 0xE3069283  # the standard check value
    data = bytes(random.Random(0).randrange(256) for _ in range(3000))
    assert tfrecord._crc32c_python(data) == tfrecord.crc32c(data)
    assert tfrecord._crc32c is not None, "google-crc32c's C implementation is missing"


def test_examples_parse_with_protobuf():
    pytest.importorskip("tensorflow")
    from tensorflow.core.example import example_pb2

    features = {
        "ints": (tfrecord.INT64, [0, 1, 127, 128, 2**40, -3]),
        "floats": (tfrecord.FLOAT, [1.0, -0.5, 3.25]),
        "empty": (tfrecord.INT64, []),
    }
    data = tfrecord.encode_example(features)
    example = example_pb2.Example.FromString(data)
    f = example.features.feature
    assert list(f["ints"].int64_list.value) == [0, 1, 127, 128, 2**40, -3]
    assert list(f["floats"].float_list.value) == [1.0, -0.5, 3.25]
    assert f["empty"].HasField("int64_list") and not f["empty"].int64_list.value
    # And the other way: protobuf's own bytes decode with ours.
    assert tfrecord.decode_example(example.SerializeToString()) == {
        "ints": [0, 1, 127, 128, 2**40, -3], "floats": [1.0, -0.5, 3.25], "empty": []}


def test_files_round_trip_through_tensorflow(tmp_path):
    tf = pytest.importorskip("tensorflow")
    records = [bytes([i]) * i for i in range(50)]
    paths = [str(tmp_path / "a.tfrecord"), str(tmp_path / "b.tfrecord")]
    assert tfrecord.write_round_robin(records, paths) == [25, 25]
    assert list(tf.compat.v1.io.tf_record_iterator(paths[0])) == records[0::2]
    assert list(tf.compat.v1.io.tf_record_iterator(paths[1])) == records[1::2]
    theirs = str(tmp_path / "tf.tfrecord")
    with tf.io.TFRecordWriter(theirs) as w:
        for r in records:
            w.write(r)
    assert list(tfrecord.read_records(theirs)) == records
    with open(theirs, "rb") as f:
        assert f.read() == b"".join(tfrecord.frame(r) for r in records)


def test_corruption_is_detected(tmp_path):
    path = tmp_path / "x.tfrecord"
    tfrecord.write_round_robin([b"hello", b"world"], [str(path)])
    data = bytearray(path.read_bytes())
    data[14] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(NorbertError, match="checksum"):
        list(tfrecord.read_records(str(path)))
    path.write_bytes(bytes(data[:10]))
    with pytest.raises(NorbertError, match="truncated"):
        list(tfrecord.read_records(str(path)))


def test_nothing_is_left_when_writing_fails(tmp_path):
    def records():
        yield b"one"
        yield b"two"
        raise KeyboardInterrupt

    paths = [str(tmp_path / "a.tfrecord"), str(tmp_path / "b.tfrecord")]
    with pytest.raises(KeyboardInterrupt):
        tfrecord.write_round_robin(records(), paths)
    assert os.listdir(str(tmp_path)) == []


# -- reading the framing: one streaming parser -------------------------------------------------


class _Reads:
    """A file object that records how many bytes each read asks for."""

    def __init__(self, f):
        self._f = f
        self.asked = []

    def read(self, n=-1):
        self.asked.append(n)
        return self._f.read(n)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def _records(count=300, big=(7,)):
    """Records of varied lengths, the ones at ``big`` longer than one read."""
    rng = random.Random(1)
    return [bytes(rng.randrange(256) for _ in range(3 * tfrecord.READ_BYTES // 2)) if i in big
            else bytes([i % 256]) * rng.randrange(0, 600) for i in range(count)]


def test_a_file_is_read_in_bounded_reads_never_whole(tmp_path, monkeypatch):
    records = _records()
    path = tmp_path / "big.tfrecord"
    tfrecord.write_round_robin(records, [str(path)])
    assert path.stat().st_size > 2 * tfrecord.READ_BYTES
    opened = []

    def open_binary(p):
        opened.append(_Reads(open(p, "rb")))
        return opened[-1]

    monkeypatch.setattr(tfrecord.fileio, "open_binary", open_binary)
    assert list(tfrecord.read_records(str(path))) == records
    asked = opened[0].asked
    assert 0 < max(asked) <= tfrecord.READ_BYTES and -1 not in asked
    assert len(asked) > 2 * len(records)  # a header, then the data and checksum, each record
    # A smaller bound holds too, for every read.
    with open(str(path), "rb") as raw:
        f = _Reads(raw)
        frames = list(tfrecord.scan(f, chunk=100))
    assert [fr.data for fr in frames] == records and max(f.asked) <= 100
    assert [fr.number for fr in frames] == list(range(1, len(records) + 1))
    offsets = [0]
    for r in records[:-1]:
        offsets.append(offsets[-1] + len(tfrecord.frame(r)))
    assert [fr.offset for fr in frames] == offsets
    assert frames[-1].end == path.stat().st_size


def test_headers_alone_are_read_when_the_data_are_not_wanted(tmp_path):
    records = _records(40, big=())
    data = b"".join(tfrecord.frame(r) for r in records)
    f = _Reads(io.BytesIO(data))
    frames = list(tfrecord.scan(f, read_data=False))
    assert [fr.length for fr in frames] == [len(r) for r in records]
    assert all(fr.data is None for fr in frames) and set(f.asked) == {tfrecord.HEADER_BYTES}
    wanted = frames[10].offset
    frames = list(tfrecord.scan(io.BytesIO(data), read_data=lambda pos: pos == wanted))
    assert [fr.data for fr in frames if fr.data is not None] == [records[10]]


def _damaged(records, at, kind):
    """The framed ``records`` with record ``at`` (from 0) damaged as ``kind``; its offset."""
    frames = [tfrecord.frame(r) for r in records]
    offset = sum(len(f) for f in frames[:at])
    data = bytearray(b"".join(frames))
    if kind == tfrecord.HEADER_CUT:
        data = data[:offset + 7]
    elif kind == tfrecord.LENGTH_CORRUPT:
        data[offset + 1] ^= 0x10
    elif kind == tfrecord.DATA_CUT:
        data = data[:offset + len(frames[at]) - 1]
    else:
        data[offset + tfrecord.HEADER_BYTES + 2] ^= 1
    return bytes(data), offset


KINDS = [tfrecord.HEADER_CUT, tfrecord.LENGTH_CORRUPT, tfrecord.DATA_CUT, tfrecord.DATA_CORRUPT]
WORDS = {tfrecord.HEADER_CUT: "truncated record header at byte %d",
         tfrecord.LENGTH_CORRUPT: "corrupt record length at byte %d",
         tfrecord.DATA_CUT: "truncated record at byte %d",
         tfrecord.DATA_CORRUPT: r"corrupt record at byte %d \(checksum mismatch\)"}


@pytest.mark.parametrize("kind", KINDS)
def test_damage_of_every_kind_is_reported_with_its_offset(tmp_path, kind):
    records = _records(30, big=(3,))
    at = 12
    data, offset = _damaged(records, at, kind)
    items = list(tfrecord.scan(io.BytesIO(data), chunk=256))
    assert [i.data for i in items[:-1]] == records[:at]
    assert items[-1] == tfrecord.Damage(at + 1, offset, kind)
    assert items[-1].cut_short == (kind in (tfrecord.HEADER_CUT, tfrecord.DATA_CUT))
    # Headers alone find what headers show; a corrupt record's data pass unread.
    skipped = list(tfrecord.scan(io.BytesIO(data), read_data=False))
    if kind == tfrecord.DATA_CORRUPT:
        assert len(skipped) == len(records) and not any(
            isinstance(i, tfrecord.Damage) for i in skipped)
    else:
        assert skipped[-1] == tfrecord.Damage(at + 1, offset, kind)
    # The readers of records raise, naming the source and the byte.
    with pytest.raises(NorbertError, match="^here: %s$" % (WORDS[kind] % offset)):
        list(tfrecord.iter_records(data, source="here"))
    path = tmp_path / "damaged.tfrecord"
    path.write_bytes(data)
    with pytest.raises(NorbertError, match="^%s: %s$" % (path, WORDS[kind] % offset)):
        list(tfrecord.read_records(str(path)))


def test_a_file_shorter_than_its_size_said_is_cut_short():
    data = b"".join(tfrecord.frame(r) for r in [b"abc", b"defgh"])
    items = list(tfrecord.scan(io.BytesIO(data[:-2]), size=len(data)))
    assert items[-1] == tfrecord.Damage(2, len(tfrecord.frame(b"abc")), tfrecord.DATA_CUT)
    assert list(tfrecord.scan(io.BytesIO(b""))) == []


def test_the_reader_agrees_with_tensorflows(tmp_path):
    tf = pytest.importorskip("tensorflow")
    records = _records(200) + [b""]
    path = str(tmp_path / "theirs.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for r in records:
            w.write(r)
    theirs = [t.numpy() for t in tf.data.TFRecordDataset(path)]
    assert theirs == records == list(tfrecord.read_records(path))
    # Where TensorFlow meets a corrupt record, the reader points at the same one.
    data, offset = _damaged(records, 50, tfrecord.DATA_CORRUPT)
    with open(path, "wb") as f:
        f.write(data)
    with pytest.raises(tf.errors.DataLossError) as caught:
        list(tf.data.TFRecordDataset(path))
    said = int(re.search(r"corrupted record at (\d+)", str(caught.value)).group(1))
    with open(path, "rb") as f:
        damage = list(tfrecord.scan(f))[-1]
    assert damage.kind == tfrecord.DATA_CORRUPT and said in (damage.offset,
                                                             damage.offset + 12)


def test_a_files_tail_tells_whether_it_ends_with_a_whole_record():
    data = b"".join(tfrecord.frame(r) for r in _records(60, big=()))
    for size in (16, 100, 1000, len(data)):
        assert tfrecord.ends_with_a_frame(data[-size:]) == (size >= len(tfrecord.frame(
            _records(60, big=())[-1])))
    assert not tfrecord.ends_with_a_frame(data[:-1])
    assert not tfrecord.ends_with_a_frame(data[:-5][-1000:])
    assert not tfrecord.ends_with_a_frame(b"x" * 15)
