"""Training on records of ``--objective=mlm`` (masked LM alone): the objective read from the
sidecars, the loss and the results without a next-sentence term, the next-sentence head kept
bit for bit, checkpoints exchanged with runs of Google's objective both ways, and exported."""

import importlib.util
import shutil

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

from helpers import english_records, tiny_bert_config  # noqa: E402
from norbert.data import sidecar  # noqa: E402
from norbert.errors import NorbertError  # noqa: E402
from norbert.model.bert_config import BertConfig  # noqa: E402
from norbert.training import record_checks  # noqa: E402
from norbert.training.model_fn import ModelFnConfig, build_model_fn  # noqa: E402
from norbert.training.config import OptimizerConfig, PretrainingConfig  # noqa: E402
from norbert.training.pretraining import run_pretraining  # noqa: E402
from norbert.training.spec import EVAL, TRAIN, RunConfig  # noqa: E402

SEQ, PRED = 64, 10
NEXT_SENTENCE = ("cls/seq_relationship/output_weights", "cls/seq_relationship/output_bias")
POOLER = ("bert/pooler/dense/kernel", "bert/pooler/dense/bias")


@pytest.fixture(scope="module")
def records(tmp_path_factory, corpus_paths, uncased_vocab_path):
    """Folders of mlm records, of Google's pairs, and of mlm records without masks
    (--masking=dynamic): the first 30 kB of English text."""
    out = []
    for name, settings in (("mlm", dict(objective="mlm", cross_documents=True)),
                           ("pairs", dict(dupe_factor=1)),
                           ("dynamic", dict(objective="mlm", masking="dynamic"))):
        root = tmp_path_factory.mktemp(name)
        english_records(root, corpus_paths, uncased_vocab_path, 30_000, max_seq_length=SEQ,
                        max_predictions_per_seq=PRED, do_lower_case=True, progress=False,
                        **settings)
        (root / "bert_config.json").write_text(tiny_bert_config())
        out.append(root)
    return out


def _run(root, out, steps, do_eval=False, init=None, eval_root=None, **settings):
    config = PretrainingConfig(
        input_file=str(root / "train.tfrecord"), bert_config_file=str(root / "bert_config.json"),
        eval_input_file=str(eval_root / "train.tfrecord") if eval_root else None,
        max_seq_length=SEQ, max_predictions_per_seq=PRED, do_train=True, do_eval=do_eval,
        max_eval_steps=2, init_checkpoint=str(init) if init else None, **settings)
    optimizer = OptimizerConfig(learning_rate=1e-3, num_train_steps=steps, num_warmup_steps=0)
    run = RunConfig(output_dir=str(out), save_checkpoints_steps=100, train_batch_size=8,
                    eval_batch_size=8, seed=1)
    return run_pretraining(config, optimizer, run)


def _values(folder, names):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(folder)))
    return {name: reader.get_tensor(name) for name in names}


@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
def test_mlm_training_keeps_the_next_sentence_head_and_exchanges_checkpoints(records, tmp_path,
                                                                             caplog):
    import logging

    caplog.set_level(logging.INFO, logger="absl")
    mlm, pairs, _ = records
    _run(pairs, tmp_path / "google", 1)  # Google's objective: a donor checkpoint
    donor = _values(tmp_path / "google", NEXT_SENTENCE + POOLER)
    results = _run(mlm, tmp_path / "mlm", 3, do_eval=True, init=tmp_path / "google")
    assert set(results) == {"global_step", "loss", "masked_lm_accuracy", "masked_lm_loss"}
    assert "  objective: masked LM alone; the next-sentence head kept as it is (the records' " \
           "sidecars)" in [r.getMessage() for r in caplog.records]
    assert results["loss"] == pytest.approx(results["masked_lm_loss"], rel=1e-5)
    with open(str(tmp_path / "mlm" / "eval_results.txt")) as f:
        assert "next_sentence" not in f.read()
    kept = _values(tmp_path / "mlm", NEXT_SENTENCE + POOLER)
    for name in NEXT_SENTENCE + POOLER:  # no gradient reached them: bit for bit
        assert kept[name].tobytes() == donor[name].tobytes(), name
    trained = _values(tmp_path / "mlm", ["cls/predictions/output_bias"])
    assert not np.array_equal(trained["cls/predictions/output_bias"],
                              _values(tmp_path / "google", ["cls/predictions/output_bias"])
                              ["cls/predictions/output_bias"])
    back = _run(pairs, tmp_path / "back", 1, do_eval=True, init=tmp_path / "mlm")
    assert "next_sentence_loss" in back  # Google's objective again: the head trains
    after = _values(tmp_path / "back", NEXT_SENTENCE)
    assert any(after[n].tobytes() != kept[n].tobytes() for n in NEXT_SENTENCE)
    _exported_loads(tmp_path / "mlm", mlm, tmp_path / "hf")


def _exported_loads(run, records_root, folder):
    """The run's checkpoint exported loads as BertForMaskedLM and BertForPreTraining (where
    transformers and torch are installed: the TF 2.15 environment; not the newest TF's)."""
    if not (importlib.util.find_spec("transformers") and importlib.util.find_spec("torch")):
        return
    import transformers
    from norbert.conversion.export import export_to_hf

    vocab = sidecar.read(str(records_root / "train.tfrecord"))["settings"]["vocab_file"]
    report = export_to_hf(checkpoint=str(run),
                          bert_config_file=str(records_root / "bert_config.json"),
                          vocab_file=vocab, output_dir=str(folder), do_lower_case=True)
    assert report.architecture == "BertForPreTraining"  # the kept head goes along
    for cls in (transformers.BertForMaskedLM, transformers.BertForPreTraining):
        _, info = cls.from_pretrained(str(folder), output_loading_info=True)
        assert not info["missing_keys"] and not info["mismatched_keys"], (cls, info)


@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
@pytest.mark.parametrize("engine", ["loop", "tpu_estimator"])
def test_masks_drawn_when_read_on_either_engine(records, tmp_path, engine):
    import reference_shim

    if engine == "tpu_estimator" and not reference_shim.has_estimator():
        pytest.skip("TPUEstimator needs tf.estimator (TensorFlow <= 2.15)")
    dynamic = records[2]
    results = _run(dynamic, tmp_path / engine, 2, do_eval=True, engine=engine)
    assert set(results) == {"global_step", "loss", "masked_lm_accuracy", "masked_lm_loss"}
    assert results["global_step"] == 2


@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
def test_a_mix_of_objectives_is_one_error_naming_the_files(records, tmp_path):
    mlm, pairs, _ = records
    with pytest.raises(NorbertError, match="mix objectives.*mlm in .*mlm.*train.tfrecord.*"
                                           "mlm_nsp in .*pairs.*train.tfrecord"):
        _run(mlm, tmp_path / "mixed", 1, do_eval=True, eval_root=pairs)
    assert not (tmp_path / "mixed").exists()
    assert record_checks.objective_of([str(pairs / "train.tfrecord")]) == "mlm_nsp"
    assert record_checks.objective_of([str(mlm / "train.tfrecord")]) == "mlm"
    copy = tmp_path / "bare.tfrecord"  # Google's records, without a sidecar
    shutil.copy(str(pairs / "train.tfrecord"), str(copy))
    assert record_checks.objective_of([str(copy)]) == "mlm_nsp"


def test_model_fn_scalars_and_metrics_leave_out_the_next_sentence(records):
    config = BertConfig.from_json_file(str(records[0] / "bert_config.json"))
    features = lambda: {  # noqa: E731  (made in each graph)
        "input_ids": tf.zeros([2, SEQ], tf.int32), "input_mask": tf.ones([2, SEQ], tf.int32),
        "segment_ids": tf.zeros([2, SEQ], tf.int32),
        "masked_lm_positions": tf.ones([2, PRED], tf.int32),
        "masked_lm_ids": tf.ones([2, PRED], tf.int32),
        "masked_lm_weights": tf.ones([2, PRED], tf.float32),
        "next_sentence_labels": tf.zeros([2, 1], tf.int32)}
    optimizer = OptimizerConfig(learning_rate=1e-3, num_train_steps=2, num_warmup_steps=0)
    for objective, nsp in (("mlm", False), ("mlm_nsp", True)):
        model_fn = build_model_fn(ModelFnConfig(config, optimizer, objective=objective))
        for mode in (TRAIN, EVAL):
            with tf.Graph().as_default():
                tf.train.get_or_create_global_step()
                spec = model_fn(features(), None, mode, {})
                names = {v.op.name for v in tf.global_variables()}
                assert set(NEXT_SENTENCE) <= names  # built either way: Google's checkpoints
                keys = set(spec.scalars or {})
                if mode == EVAL:
                    fn, tensors = spec.eval_metrics
                    keys = set(fn(*tensors))
                assert any("next_sentence" in k for k in keys) == nsp, keys
    with pytest.raises(NorbertError, match="objective"):
        ModelFnConfig(config, optimizer, objective="nsp")
