"""Record files checked before a run: cut short or damaged files found and named, cheaply;
their records counted, their shapes and kinds read once."""

import json

import pytest

from norbert import NorbertError
from norbert.data import tfrecord
from norbert.training import record_checks
from norbert.training.record_checks import check_framing, find_damage


def _framed(count, size=100):
    """``count`` framed records of ``size`` bytes and more (lengths vary, as real ones do)."""
    return [tfrecord.frame(bytes([i % 256]) * (size + i % 7)) for i in range(count)]


def _write(path, frames):
    data = b"".join(frames)
    path.write_bytes(data)
    return data


@pytest.fixture(params=["small", "large"])
def frames(request):
    """Records in a file read through (small) or judged by its tail only (large)."""
    count = 40 if request.param == "small" else 3 * record_checks.TAIL_BYTES // 100
    return _framed(count)


def test_whole_files_pass(tmp_path, frames):
    _write(tmp_path / "ok.tfrecord", frames)
    check_framing(str(tmp_path / "ok.tfrecord"))
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    check_framing(str(tmp_path / "empty.tfrecord"))
    assert find_damage(str(tmp_path / "ok.tfrecord")) is None


@pytest.mark.parametrize("cut", [5, 12, 50, -1], ids=["in header", "after header", "in data",
                                                      "in checksum"])
def test_a_file_cut_short_is_named_with_the_record(tmp_path, frames, cut):
    data = b"".join(frames)
    last = len(frames) - 3  # the record cut: the third from the end
    start = sum(len(f) for f in frames[:last - 1])
    end = start + (cut if cut > 0 else len(frames[last - 1]) + cut)
    path = tmp_path / "cut.tfrecord"
    path.write_bytes(data[:end])
    with pytest.raises(NorbertError) as caught:
        check_framing(str(path), "--eval_input_file")
    assert str(caught.value) == (
        "--eval_input_file: %s is damaged: record %d (at byte %d) is cut short (the file is "
        "truncated); copy or rebuild the file" % (path, last, start))


def test_a_file_cut_at_a_record_boundary_passes(tmp_path, frames):
    # Only a count could tell: the sidecar's bytes_in_file, where there is one (below).
    _write(tmp_path / "cut.tfrecord", frames[:-5])
    check_framing(str(tmp_path / "cut.tfrecord"))


def test_the_sidecar_size_catches_any_cut(tmp_path):
    frames = _framed(40)
    data = _write(tmp_path / "shard.tfrecord", frames[:-5])
    meta = {"file": "shard.tfrecord", "bytes_in_file": len(b"".join(frames))}
    (tmp_path / "shard.tfrecord.meta.json").write_text(json.dumps(meta))
    with pytest.raises(NorbertError, match=r"--input_file: .*shard.tfrecord has %d bytes but its "
                                           r"sidecar says %d: it is truncated" % (
                                               len(data), meta["bytes_in_file"])):
        check_framing(str(tmp_path / "shard.tfrecord"))


def test_a_text_file_is_not_a_tfrecord_file(tmp_path):
    (tmp_path / "notes.txt").write_text("one sentence per line\n" * 20)
    with pytest.raises(NorbertError, match=r"notes.txt is not a TFRecord file"):
        check_framing(str(tmp_path / "notes.txt"))


def test_flipped_bytes_are_found_where_tensorflow_points(tmp_path):
    frames = _framed(3 * record_checks.TAIL_BYTES // 100)
    data = bytearray(b"".join(frames))
    start = sum(len(f) for f in frames[:99])  # record 100
    data[start + 30] ^= 1
    path = tmp_path / "flipped.tfrecord"
    path.write_bytes(bytes(data))
    check_framing(str(path))  # the tail is whole: the run starts, and meets it while reading
    expected = (100, start, "is corrupt (its data fail their checksum)")
    assert find_damage(str(path)) == expected
    assert find_damage(str(path), offset=start + 12) == expected  # as TF names it
    assert find_damage(str(path), offset=start - len(frames[98])) is None  # another record


def test_a_damaged_length_is_found(tmp_path):
    frames = _framed(60)
    data = bytearray(b"".join(frames))
    start = sum(len(f) for f in frames[:9])  # record 10
    data[start + 2] ^= 1
    (tmp_path / "bad.tfrecord").write_bytes(bytes(data))
    with pytest.raises(NorbertError, match=r"record 10 \(at byte %d\) is corrupt \(its length "
                                           r"fails its checksum\)" % start):
        check_framing(str(tmp_path / "bad.tfrecord"))


# -- counts ----------------------------------------------------------------------------------


def test_records_are_counted_from_headers_or_the_sidecar(tmp_path):
    frames = _framed(40)
    _write(tmp_path / "a.tfrecord", frames)
    assert record_checks.count_records(str(tmp_path / "a.tfrecord")) == 40
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    assert record_checks.count_records(str(tmp_path / "empty.tfrecord")) == 0
    # Its own sidecar's count is taken; a shard set's (another file's) is not.
    own = {"file": "a.tfrecord", "instances_in_file": 7}
    assert record_checks.records_in(str(tmp_path / "a.tfrecord"), sidecars={
        str(tmp_path / "a.tfrecord"): own}) == 7
    shared = {"file": "set.tfrecord", "instances_in_file": 7}
    assert record_checks.records_in(str(tmp_path / "a.tfrecord"), sidecars={
        str(tmp_path / "a.tfrecord"): shared}) == 40


@pytest.mark.parametrize("damage", ["cut", "length", "data before a cut"])
def test_a_count_names_the_first_damage(tmp_path, damage):
    frames = _framed(40)
    data = bytearray(b"".join(frames))
    start = sum(len(f) for f in frames[:9])  # record 10
    if damage == "cut":
        data = data[:start + 20]
        what = "is cut short (the file is truncated)"
    elif damage == "length":
        data[start + 3] ^= 1
        what = "is corrupt (its length fails its checksum)"
    else:  # headers alone pass record 10; the cut at the end sends the count to look closer
        data[start + 40] ^= 1
        data = data[:-3]
        what = "is corrupt (its data fail their checksum)"
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(bytes(data))
    with pytest.raises(NorbertError) as caught:
        record_checks.count_records(str(path), "--eval_input_file")
    assert str(caught.value) == ("--eval_input_file: %s is damaged: record 10 (at byte %d) %s; "
                                 "copy or rebuild the file" % (path, start, what))


# -- shapes and kinds --------------------------------------------------------------------------


def _example(s=8, p=2, **extra):
    features = {"input_ids": (tfrecord.INT64, [2] + [7] * (s - 2) + [3]),
                "masked_lm_positions": (tfrecord.INT64, [1] * p),
                "masked_lm_ids": (tfrecord.INT64, [9] * p)}
    features.update({k: (tfrecord.INT64, v) for k, v in extra.items()})
    return tfrecord.encode_example(features)


def test_the_first_record_is_read_and_checked(tmp_path):
    path = tmp_path / "r.tfrecord"
    path.write_bytes(tfrecord.frame(_example()) + tfrecord.frame(b"second, never read"))
    first = record_checks.first_record(str(path))
    assert first["input_ids"] == [2, 7, 7, 7, 7, 7, 7, 3] and first["masked_lm_ids"] == [9, 9]
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    assert record_checks.first_record(str(tmp_path / "empty.tfrecord")) is None
    (tmp_path / "cut.tfrecord").write_bytes(path.read_bytes()[:20])
    with pytest.raises(NorbertError, match=r"--x: .*cut.tfrecord is damaged: record 1 \(at byte "
                                           r"0\) is cut short"):
        record_checks.first_record(str(tmp_path / "cut.tfrecord"), "--x")
    (tmp_path / "text.tfrecord").write_bytes(tfrecord.frame(b"\xff\xff\xff"))
    with pytest.raises(NorbertError, match="its first record is not a tf.train.Example"):
        record_checks.first_record(str(tmp_path / "text.tfrecord"))


def test_check_data_names_the_flag_for_every_file(tmp_path):
    from norbert.training.input_pipeline import InputConfig

    good, bad = tmp_path / "good.tfrecord", tmp_path / "bad.tfrecord"
    good.write_bytes(tfrecord.frame(_example()))
    bad.write_bytes(tfrecord.frame(_example())[:-2])
    record_checks.check_data(InputConfig([str(good)], 8, 2, is_training=True), "--input_file",
                             (10, "bert_config.json"))
    with pytest.raises(NorbertError, match=r"^--max_seq_length=16 does not match the data: "
                                           r".*good.tfrecord its first record has "
                                           r"max_seq_length=8; pass --max_seq_length=8"):
        record_checks.check_data(InputConfig([str(good)], 16, 2, is_training=True))
    with pytest.raises(NorbertError, match=r"holds token id 9, but the model's vocab_size is 5"):
        record_checks.check_data(InputConfig([str(good)], 8, 2, is_training=True),
                                 model_vocab=(5, "bert_config.json"))
    # The second file's damage is named with the flag, as the first's would be.
    with pytest.raises(NorbertError, match=r"^--eval_input_file: .*bad.tfrecord is damaged"):
        record_checks.check_data(InputConfig([str(good), str(bad)], 8, 2, is_training=False),
                                 "--eval_input_file")


def _dynamic_sidecar(path, pairing=False, prob=0.15):
    settings = {"masking": "dynamic", "masked_lm_prob": prob, "do_whole_word_mask": False,
                "whole_word_mask_per_word": False, "vocab_size": 20, "mask_id": 4}
    if pairing:
        settings.update(pairing="dynamic", cls_id=2, sep_id=3)
    meta = {"file": path.name, "settings": settings}
    (path.parent / (path.name + ".meta.json")).write_text(json.dumps(meta))


def test_the_records_kinds_come_from_one_pass(tmp_path, monkeypatch):
    static = tmp_path / "static.tfrecord"  # no sidecar: its first record tells
    static.write_bytes(tfrecord.frame(_example()))
    chunks = tmp_path / "chunks.tfrecord"
    chunks.write_bytes(tfrecord.frame(_example(maskable=[1] * 8, sentence_starts=[0] * 8)))
    _dynamic_sidecar(chunks, pairing=True)
    reads = []
    first_record = record_checks.first_record
    monkeypatch.setattr(record_checks, "first_record",
                        lambda path, flag="--input_file": reads.append(path) or first_record(
                            path, flag))
    assert record_checks.dynamic_records_of([str(static)], 5) == (None, None)
    assert reads == [str(static)]  # once, for both kinds
    masking, pairing = record_checks.dynamic_records_of([str(chunks)], 5)
    assert (masking.max_predictions_per_seq, masking.vocab_size, masking.mask_id) == (5, 20, 4)
    assert (pairing.cls_id, pairing.sep_id) == (2, 3)
    assert record_checks.dynamic_masking_of([str(chunks)], 5) == masking
    assert record_checks.dynamic_pairing_of([str(chunks)]) == pairing
    assert reads == [str(static)]  # a file with a sidecar is not read
    with pytest.raises(NorbertError, match="mixes records built differently: .*static.tfrecord "
                                           r"\(masks in the records\)"):
        record_checks.dynamic_records_of([str(static), str(chunks)], 5)
    pairs = tmp_path / "pairs.tfrecord"
    pairs.write_bytes(tfrecord.frame(_example(maskable=[1] * 8)))
    _dynamic_sidecar(pairs)
    with pytest.raises(NorbertError, match=r"mixes records built differently: .*pairs.tfrecord "
                                           r"\(sentence pairs\).*pairing"):
        record_checks.dynamic_records_of([str(pairs), str(chunks)], 5)
    orphan = tmp_path / "orphan.tfrecord"
    orphan.write_bytes(chunks.read_bytes())
    with pytest.raises(NorbertError, match="orphan.tfrecord holds records for masks drawn at "
                                           "training time but has no sidecar"):
        record_checks.dynamic_records_of([str(orphan)], 5)
