"""The tf.data pipeline: each worker's share of the records, and damage named when read."""

import pytest

from norbert.data import tfrecord
from norbert.training import input_pipeline, record_checks
from norbert.training.input_pipeline import InputConfig, RecordInput


def test_data_loss_is_named_with_the_file_and_record(tmp_path):
    frames = [tfrecord.frame(bytes([i % 256]) * (100 + i % 7))
              for i in range(3 * record_checks.TAIL_BYTES // 100)]
    data = bytearray(b"".join(frames))
    start = sum(len(f) for f in frames[:99])  # record 100
    data[start + 30] ^= 1
    path = tmp_path / "flipped.tfrecord"
    path.write_bytes(bytes(data))
    other = tmp_path / "other.tfrecord"
    other.write_bytes(b"".join(frames))
    config = InputConfig([str(other), str(path)], 1, 1, is_training=False)
    message = ("Graph execution error:\n\nNode: 'IteratorGetNext'\ncorrupted record at %d\n\t "
               "[[{{node IteratorGetNext}}]]" % (start + 12))
    described = RecordInput(config, None).describe_data_loss(message)
    assert described == ("%s is damaged: record 100 (at byte %d) is corrupt (its data fail "
                         "their checksum)" % (path, start))
    # A message without an offset: every file is read through.
    assert RecordInput(config, None).describe_data_loss("data loss") == described
    assert RecordInput(config, None).describe_data_loss("corrupted record at 7") == described
    whole = InputConfig([str(other)], 1, 1, is_training=False)
    assert RecordInput(whole, None).describe_data_loss(message) is None


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
