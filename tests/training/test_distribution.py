"""Mirrored training over 2 CPU devices computes what one device computes on the same batch."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

from norbert import NorbertError  # noqa: E402
from norbert.model import heads  # noqa: E402
from norbert.model.bert_config import BertConfig  # noqa: E402
from norbert.training import distribution, input_pipeline, loop, replicas  # noqa: E402
from norbert.model.precision_config import DynamicLossScale  # noqa: E402
from norbert.training.distribution import DistributionConfig, make_strategy  # noqa: E402
from norbert.training.model_fn import ModelFnConfig, build_model_fn  # noqa: E402
from norbert.training.config import OptimizerConfig  # noqa: E402
from norbert.training.spec import RunConfig  # noqa: E402
from norbert.training.start import Start, find_start  # noqa: E402

TWO_CPUS = DistributionConfig(distribution="mirrored", num_cpu_replicas=2)


@pytest.fixture(scope="module")
def setup(dropout_free_run):
    root, init = dropout_free_run
    config = BertConfig.from_json_file(str(root / "c.json"))
    input_fn = input_pipeline.make_input_fn(input_pipeline.InputConfig(
        input_files=[str(root / "train.tfrecord")], max_seq_length=32,
        max_predictions_per_seq=5, is_training=True, seed=3))
    return root, config, input_fn, init


def _model_fn(config, optimizer, accumulation, **precision):
    return build_model_fn(ModelFnConfig(config, OptimizerConfig(
        learning_rate=1e-3, num_train_steps=10, num_warmup_steps=0, optimizer=optimizer,
        gradient_accumulation_steps=accumulation), **precision))


WORD = "bert/embeddings/word_embeddings"


def _moved(trained, init):
    """How far training moved the word embeddings (largest change of one value)."""
    return float(np.max(np.abs(trained.get_tensor(WORD) - init.get_tensor(WORD))))


def _train(setup, name, optimizer, accumulation, distribution, **precision):
    root, config, input_fn, init = setup
    result = loop.train(_model_fn(config, optimizer, accumulation, **precision), input_fn, {},
                        RunConfig(output_dir=str(root / name), train_batch_size=8, seed=1), 3,
                        distribution, start=find_start(str(root / name), init))
    return tf.train.load_checkpoint(result.checkpoint), result.checkpoint


# adamw_exact in the default suite; the other updates, the same machinery, in the slow one.
@pytest.mark.parametrize("optimizer,accumulation",
                         [pytest.param("adamw", 1, marks=pytest.mark.slow), ("adamw_exact", 1),
                          pytest.param("lamb", 1, marks=pytest.mark.slow),
                          pytest.param("adamw", 2, marks=pytest.mark.slow)])
def test_two_replicas_equal_one_device(setup, optimizer, accumulation):
    tag = "%s-%d" % (optimizer, accumulation)
    one, one_path = _train(setup, "one-" + tag, optimizer, accumulation, None)
    two, two_path = _train(setup, "two-" + tag, optimizer, accumulation, TWO_CPUS)
    names = [n for n, _ in tf.train.list_variables(one_path)]
    assert names == [n for n, _ in tf.train.list_variables(two_path)]  # Google's names
    assert not any("replica" in n for n in names)
    moved = _moved(one, tf.train.load_checkpoint(setup[3]))
    assert moved > 1e-5  # it trained
    for name in names:
        # Measured: at most 3.7e-7 (adamw), 3.1e-7 (adamw_exact), 1.2e-7 (lamb), 2.3e-7
        # (adamw, accumulation 2), the same in every run.
        np.testing.assert_allclose(two.get_tensor(name), one.get_tensor(name), rtol=0,
                                   atol=1e-5, err_msg=name)
    # The logged scalars (the last step's) are the global batch's, averaged over replicas.
    logged = [_scalars(path)[3] for path in (one_path, two_path)]
    assert {"loss", "masked_lm_accuracy", "masked_lm_loss", "learning_rate"} <= set(logged[0])
    assert set(logged[0]) == set(logged[1])
    for tag in logged[0]:
        if not tag.endswith("_per_sec"):
            np.testing.assert_allclose(logged[1][tag], logged[0][tag], rtol=1e-5, atol=1e-6,
                                       err_msg=tag)
        # Examples per update: the global batch times the micro-batches accumulated.
        per_update = logged[1]["examples_per_sec"] / logged[1]["global_step_per_sec"]
        np.testing.assert_allclose(per_update, 8 * accumulation, rtol=1e-6)


def _scalars(checkpoint):
    """{step: {tag: value}} of the TensorBoard events beside ``checkpoint``."""
    import glob
    import os

    found = {}
    for events in glob.glob(os.path.join(os.path.dirname(checkpoint), "events.out.*")):
        for event in tf.train.summary_iterator(events):
            for value in event.summary.value:
                found.setdefault(event.step, {})[value.tag] = value.simple_value
    return found


@pytest.mark.slow
@pytest.mark.parametrize("low", ["fp16", "bf16"])
def test_low_precision_replicas_differ_from_one_device_no_more_than_from_fp32(setup, low):
    """fp16 (dynamic loss scale) and bf16 activations round differently when a replica
    computes half the batch, so two replicas are not one device to float32's precision; they
    must not differ from it more than low precision differs from fp32."""
    settings = dict(precision=low)
    if low == "fp16":
        settings["loss_scale"] = DynamicLossScale(initial_scale=2.0 ** 15, growth_interval=2)
    fp32, _ = _train(setup, "one-fp32", "adamw_exact", 1, None)
    one, path = _train(setup, "one-" + low, "adamw_exact", 1, None, **settings)
    two, _ = _train(setup, "two-" + low, "adamw_exact", 1, TWO_CPUS, **settings)
    names = [n for n, _ in tf.train.list_variables(path)]
    if low == "fp16":  # the same overflows seen, the same scale reached
        assert two.get_tensor("loss_scale/scale") == one.get_tensor("loss_scale/scale")

    def gap(a, b):  # the mean difference: a few values Adam's step flips weigh little
        diffs = [np.abs(a.get_tensor(n) - b.get_tensor(n)).ravel() for n in names
                 if not n.startswith("loss_scale")]
        return float(np.mean(np.concatenate(diffs)))

    # Measured (mean over all values, 3 updates): fp16 6.1e-7 vs 9.1e-7, bf16 1.2e-6 vs
    # 4.1e-6. Replicas add no more than the low precision itself does.
    assert gap(two, one) < 2 * gap(one, fp32), (gap(two, one), gap(one, fp32))


def test_replicas_copies_stay_identical(setup):
    """After 2 updates (4 batches, accumulation 2) every replica holds bitwise the same value
    of every variable and slot: each applies the same all-reduced gradients (a missing
    reduction shows here, not in a checkpoint, which holds one replica's copy)."""
    root, config, input_fn, init = setup
    model_fn = _model_fn(config, "adamw", 2)
    with tf.Graph().as_default():
        strategy = make_strategy(TWO_CPUS)
        step = loop._replicated_step(model_fn, input_fn, {},
                                     RunConfig(output_dir=str(root / "sync"),
                                               train_batch_size=8), strategy,
                                     Start(init_checkpoint=init), None)
        copies = {v.op.name: strategy.experimental_local_results(v)
                  for v in tf.global_variables()}
        options = loop.session_config(RunConfig(output_dir="unused"), TWO_CPUS)
        with tf.Session(config=options) as sess:
            sess.run([tf.global_variables_initializer()] + step.initializers)
            for _ in range(4):
                sess.run(step.train_op)
            values = sess.run(copies)
    assert all(len(v) == 2 for v in values.values())
    assert any(n.startswith("bert/") for n in values) and any("/adam_m" in n for n in values)
    for name, (first, second) in values.items():
        np.testing.assert_array_equal(first, second, err_msg=name)
    assert int(values["global_step"][0]) == 2


@pytest.mark.slow
def test_per_replica_mean_loss_would_drift(setup, monkeypatch):
    """The global-batch denominator matters: the per-replica mean moves away from one device."""
    one, _ = _train(setup, "one-drift", "adamw_exact", 1, None)
    monkeypatch.setattr(replicas, "weighted_mean", heads.local_weighted_mean)
    two, _ = _train(setup, "two-drift", "adamw_exact", 1, TWO_CPUS)
    moved = _moved(one, tf.train.load_checkpoint(setup[3]))
    # Measured: 9.8e-3, about as far as training moved (1.1e-2).
    assert np.max(np.abs(two.get_tensor(WORD) - one.get_tensor(WORD))) > 0.5 * moved


def test_batch_must_divide_among_replicas():
    with pytest.raises(NorbertError, match="--train_batch_size=7 does not divide among 2"):
        distribution.check_batch_divides(7, 2)


@pytest.mark.parametrize("settings,message", [
    (dict(num_cpu_replicas=2), "--num_cpu_replicas needs --distribution=mirrored"),
    (dict(distribution="mirrored", all_reduce="ring"), "--all_reduce=ring"),
    (dict(distribution="multi_worker", all_reduce="hierarchical"), "--all_reduce=hierarchical"),
    (dict(distribution="mirrored", num_cpu_replicas=2, num_gpus=1), "exclude each other"),
    (dict(distribution="mirrored", num_cpu_replicas=2, all_reduce="nccl"), "needs GPUs"),
    (dict(num_gpus=-1), "--num_gpus must not be negative"),
])
def test_config_checks(settings, message):
    with pytest.raises(NorbertError, match=message):
        DistributionConfig(**settings)


@pytest.mark.slow
def test_a_mirrored_run_resumes_on_one_device_and_back(setup, tmp_path):
    """Checkpoints carry no trace of the replicas: either kind of run resumes the other's."""
    import shutil

    root, config, input_fn, init = setup
    model_fn = _model_fn(config, "adamw", 1)
    mirrored = loop.train(model_fn, input_fn, {},
                          RunConfig(output_dir=str(tmp_path / "a"), train_batch_size=8), 2,
                          TWO_CPUS, start=Start(init_checkpoint=init))
    shutil.copytree(str(tmp_path / "a"), str(tmp_path / "b"))
    one = loop.train(model_fn, input_fn, {},
                     RunConfig(output_dir=str(tmp_path / "b"), train_batch_size=8), 3)
    back = loop.train(model_fn, input_fn, {},
                      RunConfig(output_dir=str(tmp_path / "b"), train_batch_size=8), 4, TWO_CPUS)
    # Each went on from the other's step: a Saver restores every variable (slots too) or fails.
    assert (mirrored.global_step, one.global_step, back.global_step) == (2, 3, 4)


@pytest.mark.slow
def test_a_mirrored_checkpoint_converts_and_evaluates_on_tpu_estimator(setup, tmp_path,
                                                                       uncased_vocab_path):
    from norbert.conversion.export import ExportConfig, export_to_hf
    from norbert.training.config import TPU_ESTIMATOR, PretrainingConfig
    from norbert.training.pretraining import run_pretraining
    from norbert.training.tpu import estimator_module

    root, config, input_fn, init = setup
    mirrored = loop.train(_model_fn(config, "adamw", 1), input_fn, {},
                          RunConfig(output_dir=str(tmp_path / "run"), train_batch_size=8), 2,
                          TWO_CPUS, start=Start(init_checkpoint=init))
    report = export_to_hf(ExportConfig(
        checkpoint=mirrored.checkpoint, bert_config_file=str(root / "c.json"),
        vocab_file=uncased_vocab_path, output_dir=str(tmp_path / "hf")), do_lower_case=True)
    assert report.architecture == "BertForPreTraining" and not report.missing_heads
    try:
        estimator_module()
    except NorbertError:
        return  # TensorFlow without tf.estimator: the converter was the check
    result = run_pretraining(
        PretrainingConfig(input_file=str(root / "train.tfrecord"),
                          bert_config_file=str(root / "c.json"), max_seq_length=32,
                          max_predictions_per_seq=5, do_eval=True, max_eval_steps=2,
                          init_checkpoint=mirrored.checkpoint, engine=TPU_ESTIMATOR),
        run=RunConfig(output_dir=str(tmp_path / "eval"), eval_batch_size=8))
    assert result["masked_lm_accuracy"] >= 0 and np.isfinite(result["masked_lm_loss"])


@pytest.mark.slow
def test_the_script_trains_mirrored_with_xla_fp16_lamb_and_accumulation(setup, tmp_path):
    """The command line, with the options that change the step's graph most, on 2 replicas:
    XLA, fp16 with dynamic loss scaling, LAMB, accumulation, an init checkpoint, then eval."""
    import os
    import subprocess
    import sys

    root, _, _, init = setup
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    command = [sys.executable, os.path.join(repo, "scripts", "run_pretraining.py"),
               "--input_file=%s" % (root / "train.tfrecord"), "--output_dir=%s" % tmp_path,
               "--bert_config_file=%s" % (root / "c.json"), "--init_checkpoint=%s" % init,
               "--max_seq_length=32", "--max_predictions_per_seq=5", "--train_batch_size=8",
               "--eval_batch_size=8", "--max_eval_steps=2", "--num_train_steps=2",
               "--num_warmup_steps=0", "--learning_rate=1e-3", "--log_every_steps=1",
               "--do_train", "--do_eval", "--distribution=mirrored", "--num_cpu_replicas=2",
               "--use_xla", "--precision=fp16", "--optimizer=lamb",
               "--gradient_accumulation_steps=2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step 2/2" in done.stderr and "examples/s" in done.stderr
    # The partial restore's report, once (in cross-replica context, not once per replica):
    # the model's variables, not the earlier run's adamw slots and step.
    from norbert.model.checkpoints import is_run_state

    model = [n for n, _ in tf.train.list_variables(init) if not is_run_state(n)]
    assert done.stderr.count("initialised %d variables from %s" % (len(model), init)) == 1
    assert "not restored, optimizer state or step of the earlier run" in done.stderr
    results = (tmp_path / "eval_results.txt").read_text()
    assert "global_step = 2" in results
    stored = dict(tf.train.list_variables(str(tmp_path / "model.ckpt-2")))
    assert "loss_scale/scale" in stored and not any("replica" in n for n in stored)
