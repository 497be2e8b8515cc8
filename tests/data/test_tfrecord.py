"""Protobuf wire format and TFRecord framing written by hand, checked against TensorFlow."""

import os
import random

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
