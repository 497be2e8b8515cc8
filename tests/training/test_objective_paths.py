"""Records of ``--objective=mlm`` through the paths that do not depend on the objective: length
buckets (auto), the data position (exact resumption), mixed groups (``--input_file=a=..,b=..``),
mirrored replicas (2 logical CPU devices) and two worker processes on 127.0.0.1.

Cheap in the default suite: the input stream's position saved and restored with buckets and
with mixed groups, and one short mirrored run of mixed, bucketed masked-LM-only records. Whole
runs stopped and resumed (one device and mirrored), compared step by step with a run never
stopped, are in the slow suite, as the same tests of Google's records are.
"""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

from helpers import (  # noqa: E402
    assert_same_run, pretrain_stopping_at, read_stream_batches, same_batch,
)
from norbert.data import sidecar  # noqa: E402
from norbert.data.builder import create_pretraining_data  # noqa: E402
from norbert.model import objective_record  # noqa: E402
from norbert.training import record_checks  # noqa: E402
from norbert.training import length_buckets as buckets_lib  # noqa: E402
from norbert.training.distribution import DistributionConfig  # noqa: E402
from norbert.training.input_pipeline import InputConfig  # noqa: E402
from norbert.training.mixing import Group  # noqa: E402
from worker_processes import Workers, pretraining_command  # noqa: E402

S, P = 32, 5
TWO_CPUS = DistributionConfig(distribution="mirrored", num_cpu_replicas=2)
AUTO = buckets_lib.parse("auto", S)  # (8, 16, 24, 32): the default --length_buckets at 32


@pytest.fixture(scope="module")
def mlm_shards(tmp_path_factory, dropout_free_run, uncased_vocab_path):
    """Two shards of masked-LM-only records of the tiny English text, a record never crossing
    a document (--cross_documents=false): a document's last record is short, so that length
    buckets cut batches to several lengths."""
    root, _ = dropout_free_run
    folder = tmp_path_factory.mktemp("mlm_paths")
    create_pretraining_data(input_file=str(root / "text.txt"), output_file=str(folder / "mlm"),
                            vocab_file=uncased_vocab_path, objective="mlm", max_seq_length=S,
                            max_predictions_per_seq=P, do_lower_case=True, num_workers=1,
                            num_output_shards=2, progress=False)
    files = sorted(str(p) for p in folder.glob("mlm-*") if not str(p).endswith(".json"))
    assert len(files) == 2 and record_checks.objective_of(files) == "mlm"
    assert sidecar.objective_of(sidecar.read(files[0])) == "mlm"
    return files


@pytest.mark.parametrize("kind", ["buckets", "mixed"])
def test_mlm_records_resume_on_the_next_batches(mlm_shards, tmp_path, kind):
    """The stream's position, saved in the middle of a window of batches grouped by length
    (auto's boundaries), or of two named groups drawn 70/30, and restored: the same batches."""
    groups = None
    if kind == "mixed":
        groups = (Group("a", tuple(mlm_shards[:1]), 100, 0.7),
                  Group("b", tuple(mlm_shards[1:]), 100, 0.3))
    config = InputConfig(input_files=mlm_shards, max_seq_length=S, max_predictions_per_seq=P,
                         is_training=True, seed=11, shuffle_buffer=20,
                         masking=record_checks.dynamic_masking_of(mlm_shards, P),
                         pairing=record_checks.dynamic_pairing_of(mlm_shards), groups=groups,
                         length_buckets=AUTO if kind == "buckets" else ())
    straight = read_stream_batches(config, tmp_path, 14, save_at=6)
    resumed = read_stream_batches(config, tmp_path, 8, restore_at=6)
    assert all(same_batch(a, b) for a, b in zip(straight[6:], resumed))
    assert not same_batch(resumed[0], straight[0])  # not the stream's first batches again
    for batch in straight:  # one segment, and no next-sentence label to learn
        assert not batch["segment_ids"].any() and not batch["next_sentence_labels"].any()
    lengths = {b["input_ids"].shape[1] for b in straight}
    assert (len(lengths) > 1) == (kind == "buckets"), lengths  # cut to their buckets


@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
def test_mixed_bucketed_mlm_records_train_on_two_replicas(mlm_shards, dropout_config, tmp_path,
                                                          monkeypatch, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="absl")
    groups = "a=%s,b=%s" % tuple(mlm_shards)
    results = pretrain_stopping_at(groups, dropout_config, tmp_path / "run", monkeypatch,
                                   num_train_steps=3, do_eval=True, eval_input_file=groups,
                                   max_eval_steps=2, distribution=TWO_CPUS)
    plan = [r.getMessage() for r in caplog.records]
    assert "  engine: loop, mirrored over 2 replicas" in plan
    assert "  length buckets: %s" % buckets_lib.describe(AUTO, P) in plan
    assert "  objective: masked LM alone; the next-sentence head kept as it is (the records' " \
           "sidecars)" in plan
    assert results["global_step"] == 3
    assert not [k for k in results if "next_sentence" in k]
    assert {"masked_lm_accuracy/a", "masked_lm_accuracy/b"} <= set(results)  # per group
    assert objective_record.read(str(tmp_path / "run")) == ["mlm"]  # for the export's card


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
@pytest.mark.parametrize("replicas", [1, 2])
def test_a_stopped_mlm_run_resumes_exactly(mlm_shards, dropout_config, tmp_path, monkeypatch,
                                           replicas):
    """Mixed groups of bucketed masked-LM-only records, dropout on, stopped during update 4
    (it saves there) and resumed: every logged loss and the final variables equal a run never
    stopped, on one device and on 2 replicas."""
    groups = "a=%s,b=%s" % tuple(mlm_shards)
    flags = dict(sampling_weights="a=0.7,b=0.3")
    if replicas == 2:
        flags["distribution"] = TWO_CPUS
    pretrain_stopping_at(groups, dropout_config, tmp_path / "straight", monkeypatch, **flags)
    pretrain_stopping_at(groups, dropout_config, tmp_path / "stopped", monkeypatch, 4, **flags)
    pretrain_stopping_at(groups, dropout_config, tmp_path / "stopped", monkeypatch, **flags)
    assert_same_run(tmp_path / "straight", tmp_path / "stopped")


def test_two_workers_train_mlm_records_and_keep_the_next_sentence_head(
        mlm_shards, dropout_free_run, tmp_path):
    """Two worker processes (each reading its own shard, cut to agreed bucket lengths) train
    the masked-LM loss alone: the next-sentence head and the pooler stay the initial
    checkpoint's bit for bit while the encoder moves, and no next-sentence scalar is logged."""
    root, init = dropout_free_run
    output = tmp_path / "run"
    with Workers(tmp_path) as workers:
        workers.start_cluster(pretraining_command(
            ",".join(mlm_shards), root / "c.json", output, 3, init_checkpoint=init,
            learning_rate=1e-3, save_checkpoints_steps=3))
        assert workers.wait(240) == [0, 0], workers.log(0)[-3000:] + workers.log(1)[-3000:]
        for worker in range(2):
            assert "objective: masked LM alone" in workers.log(worker)
    final, start = tf.train.load_checkpoint(str(output / "model.ckpt-3")), \
        tf.train.load_checkpoint(init)
    kept = [n for n, _ in tf.train.list_variables(init) if "/adam_" not in n
            and n.startswith(("cls/seq_relationship/", "bert/pooler/"))]
    assert len(kept) == 4, kept
    for name in kept:  # not trained: not one bit changed
        assert np.array_equal(final.get_tensor(name), start.get_tensor(name)), name
    word = "bert/embeddings/word_embeddings"
    assert np.max(np.abs(final.get_tensor(word) - start.get_tensor(word))) > 1e-5
    tags = {v.tag for path in tf.io.gfile.glob(str(output / "events.out.tfevents.*"))
            for event in tf.train.summary_iterator(path) for v in event.summary.value}
    assert "masked_lm_loss" in tags and not [t for t in tags if "next_sentence" in t], tags
    assert objective_record.read(str(output)) == ["mlm"]
