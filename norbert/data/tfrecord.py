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

The framing is read back in one place, ``scan``: a stream of frames from a file object, in
reads of a bounded size, ending with the first damage found (cut short, or a checksum failing,
and at which byte). ``read_records`` and the checks before a run
(``norbert.training.record_checks``) are made of it.
"""

import contextlib
import dataclasses
import functools
import io
import struct
from typing import (IO, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence,
                    Tuple, Union)

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


@functools.lru_cache(maxsize=None)
def _table() -> Tuple[int, ...]:
    """CRC-32C's byte table (the reflected Castagnoli polynomial), made on first use."""
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


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


# Reading the framing: ``scan`` is the one parser, every reader and check goes through it.

HEADER_BYTES = 12  # uint64 length, uint32 masked crc32c of the length
FOOTER_BYTES = 4  # uint32 masked crc32c of the data
# The most one read asks for: a file is never held whole, and a record longer than this
# (BERT's are a few KB) is read in pieces of this size.
READ_BYTES = 1 << 16

# What is wrong with a damaged record (``Damage.kind``).
HEADER_CUT = "header cut short"
LENGTH_CORRUPT = "length fails its checksum"
DATA_CUT = "data cut short"
DATA_CORRUPT = "data fail their checksum"


@dataclasses.dataclass(frozen=True)
class Frame:
    """One record's place in its file, and its data when they were read."""

    number: int  # the record's number in the file, from 1
    offset: int  # the byte its frame starts at (its data start HEADER_BYTES later)
    length: int  # bytes of data
    data: Optional[bytes]  # checksum verified; None when skipped (not read)

    @property
    def end(self) -> int:
        """The byte after the frame: where the next one starts."""
        return self.offset + HEADER_BYTES + self.length + FOOTER_BYTES


@dataclasses.dataclass(frozen=True)
class Damage:
    """The first damaged record of a file: the frames before it are whole."""

    number: int  # the record's number in the file, from 1
    offset: int  # the byte its frame starts at
    kind: str  # HEADER_CUT, LENGTH_CORRUPT, DATA_CUT or DATA_CORRUPT

    @property
    def cut_short(self) -> bool:
        return self.kind in (HEADER_CUT, DATA_CUT)


def _read(f: IO[bytes], count: int, chunk: int) -> bytes:
    """Up to ``count`` bytes of ``f``, each read asking for at most ``chunk``; fewer at the end."""
    parts = []
    while count > 0:
        part = f.read(min(count, chunk))
        if not part:
            break
        parts.append(part)
        count -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _size_of(f: IO[bytes]) -> int:
    here = f.tell()
    f.seek(0, 2)
    size = f.tell()
    f.seek(here)
    return size


def names_frame(offset: int) -> Callable[[int], bool]:
    """A ``read_data`` test for ``scan``: the frame that TensorFlow's "corrupted record at N"
    names, N being the start of the frame or of its data."""
    return lambda pos: offset in (pos, pos + HEADER_BYTES)


def scan(f: IO[bytes], size: Optional[int] = None,
         read_data: Union[bool, Callable[[int], bool]] = True,
         chunk: int = READ_BYTES) -> Iterator[Union[Frame, Damage]]:
    """The frames of the TFRecord file open as ``f`` (from its start), then the ``Damage`` of
    the first damaged record if there is one (nothing follows it).

    ``size``: the file's bytes (``fileio.size``; default: sought). Each header is read and its
    length's checksum checked; a record's data are read and checked when ``read_data`` says so
    (a bool, or a test of the frame's offset), else skipped with a seek: counting records, or
    finding the one at an offset, reads the headers only. No read asks for more than ``chunk``
    bytes, so a file is never held in memory, only the record being read.
    """
    wanted = read_data if callable(read_data) else (lambda offset: read_data)
    size = _size_of(f) if size is None else size
    pos = number = 0
    while pos < size:
        number += 1
        header = _read(f, HEADER_BYTES, chunk)
        if len(header) < HEADER_BYTES:
            yield Damage(number, pos, HEADER_CUT)
            return
        if int.from_bytes(header[8:], "little") != masked_crc32c(header[:8]):
            yield Damage(number, pos, LENGTH_CORRUPT)
            return
        length = int.from_bytes(header[:8], "little")
        end = pos + HEADER_BYTES + length + FOOTER_BYTES
        if end > size:
            yield Damage(number, pos, DATA_CUT)
            return
        data = None
        if wanted(pos):
            body = _read(f, length + FOOTER_BYTES, chunk)
            if len(body) < length + FOOTER_BYTES:  # shorter than its size said
                yield Damage(number, pos, DATA_CUT)
                return
            data = body[:length]
            if int.from_bytes(body[length:], "little") != masked_crc32c(data):
                yield Damage(number, pos, DATA_CORRUPT)
                return
        else:
            f.seek(end)
        yield Frame(number, pos, length, data)
        pos = end


def ends_with_a_frame(tail: bytes) -> bool:
    """Whether ``tail``, a file's last bytes, ends with one whole TFRecord frame.

    Some start ``p`` in ``tail`` must hold a length that reaches exactly to the end, with both
    checksums right: a file cut short almost never does, and this needs no read of the whole.
    """
    n = len(tail)
    if n < HEADER_BYTES + FOOTER_BYTES:
        return False
    raw = np.frombuffer(tail, np.uint8)
    m = n - 15  # starts p with p + 16 <= n
    lengths = np.zeros(m, np.uint64)
    for k in range(8):  # the little-endian uint64 at every start at once
        lengths |= raw[k:k + m].astype(np.uint64) << np.uint64(8 * k)
    reach = (n - 16 - np.arange(m)).astype(np.uint64)
    data_crc = int.from_bytes(tail[n - 4:], "little")
    for p in np.nonzero(lengths == reach)[0].tolist():
        if int.from_bytes(tail[p + 8:p + 12], "little") != masked_crc32c(tail[p:p + 8]):
            continue
        if data_crc == masked_crc32c(tail[p + 12:n - 4]):
            return True
    return False


# read_records' words for each kind of damage (tests and tools match them).
_READ_PROBLEMS = {
    HEADER_CUT: "truncated record header at byte %d",
    LENGTH_CORRUPT: "corrupt record length at byte %d",
    DATA_CUT: "truncated record at byte %d",
    DATA_CORRUPT: "corrupt record at byte %d (checksum mismatch)",
}


def stream_records(f: IO[bytes], source: str = "records",
                   size: Optional[int] = None) -> Iterator[bytes]:
    """The records of the TFRecord file open as ``f``, checksums verified, one at a time;
    ``NorbertError`` naming ``source`` and the byte where one is damaged."""
    for item in scan(f, size):
        if isinstance(item, Damage):
            raise NorbertError("%s: %s" % (source, _READ_PROBLEMS[item.kind] % item.offset))
        yield item.data


def iter_records(data: bytes, source: str = "records") -> Iterator[bytes]:
    """The records of TFRecord-framed ``data``, checksums verified."""
    return stream_records(io.BytesIO(data), source, len(data))


def read_records(path: str) -> Iterator[bytes]:
    """The records of one TFRecord file (uncompressed), checksums verified, read as they are
    used: a record in memory at a time, never the whole file."""
    size = fileio.size(path)
    f = fileio.open_binary(path)

    def records():
        with f:
            yield from stream_records(f, path, size)

    return records()


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
