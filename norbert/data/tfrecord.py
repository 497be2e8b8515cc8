"""``tf.train.Example`` records and TFRecord files, written without TensorFlow.

Importing TensorFlow takes seconds and building protobuf messages field by field is the
reference builder's biggest cost, so records are encoded here directly in protobuf's wire format:

    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }   # entries: key = 1, value = 2
    Feature   { oneof { BytesList bytes_list = 1; FloatList float_list = 2;
                        Int64List int64_list = 3; } }
    Int64List { repeated int64 value = 1 [packed = true]; }   # varints
    FloatList { repeated float value = 1 [packed = true]; }   # little-endian float32

and framed as TFRecord: ``uint64 length``, ``uint32 masked_crc32c(length)``, the data,
``uint32 masked_crc32c(data)``, all little-endian. Files are written under a temporary name and
renamed when complete (``norbert.fileio.atomic_output``), so a reader never sees half a file.
"""

import contextlib
import struct
from typing import Dict, Iterable, Iterator, List, Mapping, Sequence, Tuple

import numpy as np

from norbert import fileio
from norbert.errors import NorbertError

BYTES, FLOAT, INT64 = 1, 2, 3  # field numbers of Feature's oneof

try:
    from google_crc32c import value as _crc32c

    if __import__("google_crc32c").implementation != "c":  # pure Python: slower than ours
        raise ImportError
except ImportError:  # pragma: no cover - exercised only where the wheel is missing
    _crc32c = None


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int (negative int64s take ten bytes)."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_delimited(field: int, payload: bytes) -> bytes:
    return bytes(((field << 3) | 2,)) + varint(len(payload)) + payload


def feature_bytes(kind: int, packed: bytes) -> bytes:
    """A ``Feature`` whose list (``INT64`` or ``FLOAT``) holds the already packed ``values``."""
    inner = _len_delimited(1, packed) if packed else b""  # an empty list has no field at all
    return _len_delimited(kind, inner)


def pack_int64(values: Iterable[int]) -> bytes:
    return b"".join(varint(int(v)) for v in values)


def pack_float(values: Sequence[float]) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def encode_example_entry(name: str, kind: int, packed: bytes) -> bytes:
    """One ``Features.feature`` map entry (field 1 of Features) with already packed values."""
    entry = _len_delimited(1, name.encode("utf-8")) + _len_delimited(2, feature_bytes(kind, packed))
    return _len_delimited(1, entry)


def encode_example(features: Mapping[str, Tuple[int, Sequence]]) -> bytes:
    """Serialised ``tf.train.Example`` from ``name -> (INT64 or FLOAT, values)``, in order."""
    body = b"".join(
        encode_example_entry(name, kind, (pack_int64 if kind == INT64 else pack_float)(values))
        for name, (kind, values) in features.items()
    )
    return _len_delimited(1, body)


# -- decoding (for checks and tests; training parses with TensorFlow) --------------------------


def _read_varint(data: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[Tuple[int, int, object]]:
    """``(field, wire_type, value)`` of a message: bytes for wire type 2, int for 0."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 2:
            size, pos = _read_varint(data, pos)
            yield field, wire, data[pos:pos + size]
            pos += size
        elif wire == 0:
            value, pos = _read_varint(data, pos)
            yield field, wire, value
        elif wire == 5:
            yield field, wire, data[pos:pos + 4]
            pos += 4
        elif wire == 1:
            yield field, wire, data[pos:pos + 8]
            pos += 8
        else:
            raise ValueError("unsupported protobuf wire type %d" % wire)


def decode_example(data: bytes) -> Dict[str, list]:
    """``name -> values`` of a serialised ``tf.train.Example`` (int64 and float lists)."""
    out: Dict[str, list] = {}
    for _, _, features in _fields(data):
        for _, _, entry in _fields(features):
            name, feature = "", b""
            for field, _, value in _fields(entry):
                if field == 1:
                    name = value.decode("utf-8")
                elif field == 2:
                    feature = value
            values: list = []
            for kind, _, lst in _fields(feature):
                for field, wire, value in _fields(lst):
                    if kind == INT64:
                        if wire == 2:  # packed
                            pos = 0
                            while pos < len(value):
                                v, pos = _read_varint(value, pos)
                                values.append(v - (1 << 64) if v >= 1 << 63 else v)
                        else:
                            values.append(value - (1 << 64) if value >= 1 << 63 else value)
                    elif kind == FLOAT:
                        if wire == 2:
                            values.extend(np.frombuffer(value, "<f4").tolist())
                        else:
                            values.append(struct.unpack("<f", value)[0])
                    else:
                        values.append(value)
            out[name] = values
    return out


# -- TFRecord framing --------------------------------------------------------------------------

_MASK_DELTA = 0xA282EAD8


def _crc32c_python(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _table()
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_TABLE: List[int] = []


def _table() -> List[int]:
    if not _TABLE:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _TABLE.append(c)
    return _TABLE


def crc32c(data: bytes) -> int:
    return _crc32c(data) if _crc32c is not None else _crc32c_python(data)


def masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: crc32c rotated right by 15 bits plus a constant (mod 2**32)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """One record in TFRecord framing."""
    length = struct.pack("<Q", len(record))
    return b"".join((
        length,
        struct.pack("<I", masked_crc32c(length)),
        record,
        struct.pack("<I", masked_crc32c(record)),
    ))


def iter_records(data: bytes, source: str = "records") -> Iterator[bytes]:
    """The records of TFRecord-framed ``data``, checksums verified."""
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise NorbertError("%s: truncated record header at byte %d" % (source, pos))
        length_bytes = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        (crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if crc != masked_crc32c(length_bytes):
            raise NorbertError("%s: corrupt record length at byte %d" % (source, pos))
        start, end = pos + 12, pos + 12 + length
        if end + 4 > len(data):
            raise NorbertError("%s: truncated record at byte %d" % (source, pos))
        record = data[start:end]
        (crc,) = struct.unpack("<I", data[end:end + 4])
        if crc != masked_crc32c(record):
            raise NorbertError("%s: corrupt record at byte %d (checksum mismatch)" % (source, pos))
        yield record
        pos = end + 4


def read_records(path: str) -> Iterator[bytes]:
    """The records of one TFRecord file (uncompressed), checksums verified."""
    return iter_records(fileio.read_bytes(path, what="TFRecord file"), source=path)


def write_round_robin(records: Iterable[bytes], paths: Sequence[str]) -> List[int]:
    """Writes record ``k`` to ``paths[k % len(paths)]``, as the reference; counts per file.

    Every file appears complete or not at all: each is written under a temporary name and
    renamed at the end; on any error (Ctrl-C included) none of the new files is left.
    """
    counts = [0] * len(paths)
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(fileio.atomic_output(p, "wb")) for p in paths]
        writes = [f.write for f in files]
        n = len(writes)
        k = 0
        for record in records:
            writes[k](frame(record))
            counts[k] += 1
            k = k + 1 if k + 1 < n else 0
    return counts
