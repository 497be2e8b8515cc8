"""Record files checked before a run: cut short or damaged files found and named, cheaply."""

import json

import pytest

from norbert import NorbertError
from norbert.data import tfrecord
from norbert.training import input_pipeline
from norbert.training.input_pipeline import (
    InputConfig, RecordInput, check_framing, find_damage,
)


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
    count = 40 if request.param == "small" else 3 * input_pipeline.TAIL_BYTES // 100
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
    frames = _framed(3 * input_pipeline.TAIL_BYTES // 100)
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

    other = tmp_path / "other.tfrecord"
    _write(other, frames)
    config = InputConfig([str(other), str(path)], 1, 1, is_training=False)
    message = ("Graph execution error:\n\nNode: 'IteratorGetNext'\ncorrupted record at %d\n\t "
               "[[{{node IteratorGetNext}}]]" % (start + 12))
    described = RecordInput(config, None).describe_data_loss(message)
    assert described == "%s is damaged: record 100 (at byte %d) %s" % (path, start, expected[2])
    # A message without an offset: every file is read through.
    assert RecordInput(config, None).describe_data_loss("data loss") == described


def test_a_damaged_length_is_found(tmp_path):
    frames = _framed(60)
    data = bytearray(b"".join(frames))
    start = sum(len(f) for f in frames[:9])  # record 10
    data[start + 2] ^= 1
    (tmp_path / "bad.tfrecord").write_bytes(bytes(data))
    with pytest.raises(NorbertError, match=r"record 10 \(at byte %d\) is corrupt \(its length "
                                           r"fails its checksum\)" % start):
        check_framing(str(tmp_path / "bad.tfrecord"))


# -- each worker's share ------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory):
    """Two record files from random words, each record distinct."""
    import random

    from norbert.data.builder import DataConfig, create_pretraining_data

    root = tmp_path_factory.mktemp("two_shards")
    words = ["w%d" % i for i in range(60)]
    rng = random.Random(0)
    docs = ["\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(4))
            for _ in range(30)]
    (root / "text.txt").write_text("\n\n".join(docs) + "\n")
    (root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                                              + words) + "\n")
    create_pretraining_data(DataConfig(
        input_file=str(root / "text.txt"), output_file=str(root / "part"),
        vocab_file=str(root / "vocab.txt"), max_seq_length=32, max_predictions_per_seq=5,
        dupe_factor=1, num_output_shards=2, num_workers=1))
    return sorted(str(p) for p in root.glob("part-*") if not str(p).endswith(".json"))


def _records_seen(files, worker, workers, batches):
    """The distinct records (input_ids) worker ``worker`` of ``workers`` reads in ``batches``."""
    tf = pytest.importorskip("tensorflow").compat.v1
    input_fn = input_pipeline.make_input_fn(InputConfig(
        input_files=files, max_seq_length=32, max_predictions_per_seq=5, is_training=True,
        seed=1, shuffle_buffer=10))
    context = tf.distribute.InputContext(num_input_pipelines=workers,
                                         input_pipeline_id=worker, num_replicas_in_sync=workers)
    with tf.Graph().as_default():
        data = input_fn({"batch_size": 4, "input_context": context})
        ids = tf.data.make_one_shot_iterator(data).get_next()["input_ids"]
        with tf.Session() as sess:
            return {row.tobytes() for _ in range(batches) for row in sess.run(ids)}


def _all_records(files):
    tf = pytest.importorskip("tensorflow").compat.v1
    return {tuple(tf.train.Example.FromString(r).features.feature["input_ids"].int64_list.value)
            for f in files for r in tf.io.tf_record_iterator(f)}


@pytest.mark.parametrize("by", ["file", "record"])
def test_workers_read_disjoint_shares_that_cover_the_data(two_shards, by, caplog):
    import numpy as np

    files = two_shards if by == "file" else two_shards[:1]
    every = {np.array(ids, dtype=np.int32).tobytes() for ids in _all_records(files)}
    batches = 3 * len(every) // 4  # several passes over each share
    shares = [_records_seen(files, i, 2, batches) for i in range(2)]
    assert not shares[0] & shares[1]
    assert shares[0] | shares[1] == every
    if by == "file":  # a whole file each
        assert shares[0] == {np.array(ids, dtype=np.int32).tobytes()
                             for ids in _all_records(files[:1])}
    else:
        assert "1 record files for 2 workers" in caplog.text
