"""Mixed precision (bf16, fp16 with loss scaling) and XLA: close to fp32, float32 variables."""

import os
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

import reference_shim  # noqa: E402  (tests/ is on sys.path)
from helpers import english_records, tiny_bert_config  # noqa: E402
from norbert import BertConfig, NorbertError
from norbert.model import heads, precision  # noqa: E402
from norbert.model.precision_config import DynamicLossScale, PrecisionConfig  # noqa: E402
from norbert.training.loop import train
from norbert.training.model_fn import ModelFnConfig, build_model_fn  # noqa: E402
from norbert.training.config import OptimizerConfig  # noqa: E402
from norbert.training.optimization import create_train_op  # noqa: E402
from norbert.training.spec import TRAIN, RunConfig  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
REPO = os.path.dirname(HERE)
SMALL = BertConfig(**reference_shim.SMALL_CONFIG)
# Measured on the reference checkpoint: bf16 log-probs within 0.009 of fp32, fp16 within 0.002.
TOLERANCE = {tf.bfloat16: 3e-2, tf.float16: 1e-2}


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    return reference_shim.reference_run(tmp_path_factory)


def constants(batch):
    return {name: tf.constant(value) for name, value in batch.items()}


def variables():
    return {v.op.name: (v.dtype.base_dtype, v.shape.as_list()) for v in tf.global_variables()}


def restored_outputs(checkpoint, batch, dtype):
    with tf.Graph().as_default():
        out = heads.pretraining_forward(SMALL, constants(batch), False, compute_dtype=dtype)
        found = variables()
        with tf.Session() as sess:
            tf.train.Saver().restore(sess, checkpoint)
            values = sess.run({
                "masked_lm_log_probs": out.masked_lm.log_probs,
                "next_sentence_log_probs": out.next_sentence.log_probs,
                "total_loss": out.total_loss,
                "sequence_output": out.model.get_sequence_output(),
            })
    return values, found


@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16], ids=["bf16", "fp16"])
def test_low_precision_outputs_are_close_to_fp32_with_float32_variables(reference, dtype):
    theirs, batch, reference_shapes, checkpoint = reference_shim.load_reference(reference, "gelu")
    ours, found = restored_outputs(checkpoint, batch, dtype)
    # Same names and shapes as Google's checkpoint, and every variable stored as float32.
    assert {name: shape for name, (_, shape) in found.items()} == reference_shapes
    assert {d for d, _ in found.values()} == {tf.float32}
    assert ours["sequence_output"].dtype == dtype.as_numpy_dtype
    for name in ("masked_lm_log_probs", "next_sentence_log_probs"):
        assert ours[name].dtype == np.float32, name  # softmax and losses stay float32
        diff = np.max(np.abs(ours[name] - theirs[name]))
        assert diff <= TOLERANCE[dtype], "%s differs by %g" % (name, diff)
        assert diff > 0, "no rounding at all: the low precision was not used"
    assert abs(ours["total_loss"] - theirs["total_loss"]) < TOLERANCE[dtype]


def test_fp32_graph_has_no_casts_and_low_precision_matmuls_do():
    batch = reference_shim.make_batch()

    def ops(dtype):
        with tf.Graph().as_default() as graph:
            heads.pretraining_forward(SMALL, constants(batch), True, compute_dtype=dtype)
            return [op for op in graph.get_operations()]

    fp32 = ops(tf.float32)
    assert not [op for op in fp32 if op.type == "Cast" and op.get_attr("DstT") != tf.float32
                and op.get_attr("DstT") != tf.int32]
    bf16 = ops(tf.bfloat16)
    matmuls = [op for op in bf16 if op.type in ("MatMul", "BatchMatMulV2")]
    assert matmuls and all(op.get_attr("T") == tf.bfloat16 for op in matmuls)
    softmaxes = [op for op in bf16 if op.type in ("Softmax", "LogSoftmax")]
    assert len(softmaxes) == SMALL.num_hidden_layers + 2
    assert all(op.get_attr("T") == tf.float32 for op in softmaxes)


def _train_steps(dtype, steps, loss_scale=1.0, lr=1e-3):
    """Losses (and the run's final state) of ``steps`` updates on one fixed batch."""
    batch = reference_shim.make_batch()
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        out = heads.pretraining_forward(SMALL, constants(batch), True, compute_dtype=dtype)
        config = OptimizerConfig(learning_rate=lr, num_train_steps=100, num_warmup_steps=0)
        op, _ = create_train_op(out.total_loss, config, loss_scale=loss_scale)
        step = tf.train.get_global_step()
        scale = tf.get_collection(precision.LOSS_SCALE_COLLECTION)
        kernel = [v for v in tf.trainable_variables() if v.op.name.endswith("query/kernel")][0]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            losses, steps_seen, scales, kernels = [], [], [], []
            for _ in range(steps):
                kernels.append(sess.run(kernel))
                loss, _ = sess.run([out.total_loss, op])
                losses.append(float(loss))
                steps_seen.append(int(sess.run(step)))
                scales.append(float(sess.run(scale[0])) if scale else None)
            kernels.append(sess.run(kernel))
            dtypes = {v.dtype.base_dtype for v in tf.global_variables()} - {tf.int64}
    return losses, steps_seen, scales, kernels, dtypes


def test_bf16_training_reduces_the_loss():
    losses, steps, _, _, dtypes = _train_steps(tf.bfloat16, 15)
    assert dtypes == {tf.float32}  # optimizer slots too
    assert steps == list(range(1, 16))
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < losses[0] - 0.5, losses


def test_fp16_dynamic_loss_scale_skips_overflows_then_trains():
    # 2**24 overflows float16 gradients here (about 2**17 is the most that fits): the first
    # steps must be skipped, each halving the scale, until it fits; then updates happen, and
    # the scale grows after every 3 good ones (and overflows and halves again).
    scaling = DynamicLossScale(initial_scale=2.0 ** 24, growth_interval=3)
    losses, steps, scales, kernels, dtypes = _train_steps(tf.float16, 40, scaling)
    assert dtypes == {tf.float32}
    assert all(np.isfinite(losses))  # the loss is float32: the runner's NaN stop stays quiet
    skipped = [i for i in range(40) if (steps[i] - (steps[i - 1] if i else 0)) == 0]
    assert skipped[:3] == [0, 1, 2]
    for i in skipped:
        assert np.array_equal(kernels[i], kernels[i + 1])  # a skipped step changes nothing
        assert scales[i] == (scales[i - 1] if i else 2.0 ** 24) / 2
    applied = [i for i in range(40) if i not in skipped]
    assert len(applied) >= 20 and not np.array_equal(kernels[applied[0]], kernels[applied[0] + 1])
    assert max(scales[applied[0]:]) > scales[applied[0]]  # it grew again after good steps
    assert np.mean(losses[-3:]) < losses[0] - 0.5, losses


def test_fp16_static_loss_scale_trains():
    losses, steps, _, _, _ = _train_steps(tf.float16, 10, loss_scale=128.0)
    assert steps == list(range(1, 11))
    assert np.mean(losses[-3:]) < losses[0] - 0.3, losses


def test_loss_scale_is_checkpointed_and_logged(tmp_path):
    batch = reference_shim.make_batch()

    def input_fn(params):
        return tf.data.Dataset.from_tensors(batch).repeat()

    config = ModelFnConfig(
        bert_config=SMALL, optimizer=OptimizerConfig(learning_rate=1e-3, num_train_steps=4,
                                                     num_warmup_steps=0),
        precision="fp16", loss_scale=DynamicLossScale(initial_scale=2.0 ** 40),
    )
    result = train(build_model_fn(config), input_fn, {}, RunConfig(
        output_dir=str(tmp_path), log_every_steps=1, train_batch_size=3), max_steps=4)
    assert result.global_step == 4 and np.isfinite(result.loss)
    stored = dict(tf.train.list_variables(result.checkpoint))
    assert "loss_scale/scale" in stored and "loss_scale/good_steps" in stored
    assert tf.train.load_variable(result.checkpoint, "loss_scale/scale") < 2.0 ** 40
    # Checkpoints of a fp16 run hold float32 weights only, as a fp32 run's do.
    assert tf.train.load_variable(
        result.checkpoint, "bert/embeddings/word_embeddings").dtype == np.float32
    with tf.Graph().as_default():
        spec = build_model_fn(config)(
            {k: tf.constant(v) for k, v in batch.items()}, None, TRAIN, {})
        assert "loss_scale" in spec.scalars


def test_compute_dtypes():
    assert [precision.compute_dtype(p) for p in ("fp32", "bf16", "fp16")] == [
        tf.float32, tf.bfloat16, tf.float16]
    with pytest.raises(NorbertError, match="--precision=fp8 is not known"):
        precision.compute_dtype("fp8")
    with tf.Graph().as_default(), pytest.raises(NorbertError, match="compute_dtype"):
        from norbert.model import modeling

        modeling.BertModel(SMALL, False, tf.zeros([2, 8], tf.int32), compute_dtype=tf.int32)


@pytest.fixture(scope="module")
def data(tmp_path_factory, corpus_paths, uncased_vocab_path):
    """Records from the first 40 kB of the English corpus, and a tiny BERT config."""
    root = tmp_path_factory.mktemp("precision")
    english_records(root, corpus_paths, uncased_vocab_path, 40_000, max_seq_length=32,
                    max_predictions_per_seq=5, dupe_factor=1)
    (root / "bert_config.json").write_text(tiny_bert_config())
    return root


@pytest.mark.slow
def test_script_trains_with_bf16_and_xla_and_evaluates_in_fp32(data, tmp_path):
    script = os.path.join(REPO, "scripts", "run_pretraining.py")
    common = [sys.executable, script, "--input_file=%s" % (data / "train.tfrecord"),
              "--output_dir=%s" % (tmp_path / "out"), "--max_seq_length=32",
              "--max_predictions_per_seq=5", "--bert_config_file=%s" % (data / "bert_config.json"),
              "--train_batch_size=8", "--eval_batch_size=8", "--max_eval_steps=2",
              "--num_warmup_steps=1", "--learning_rate=1e-3", "--seed=1", "--log_every_steps=2"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(common + ["--do_train", "--num_train_steps=4", "--precision=bf16",
                                    "--use_xla"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step 4/4" in done.stderr
    # The bf16 run's checkpoint is an ordinary float32 one: fp32 evaluation reads it.
    done = subprocess.run(common + ["--do_eval", "--num_train_steps=4"], capture_output=True,
                          text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    results = (tmp_path / "out" / "eval_results.txt").read_text()
    assert "global_step = 4" in results
    bad = subprocess.run(common + ["--do_train", "--precision=bf16", "--loss_scale=8"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "error: --loss_scale is for --precision=fp16" in bad.stderr


@pytest.mark.filterwarnings("ignore::norbert.training.pretraining.TrainingWarning")
def test_fp16_with_xla_through_run_pretraining(data, tmp_path):
    from norbert.training.config import PretrainingConfig, TpuConfig
    from norbert.training.pretraining import run_pretraining

    config = PretrainingConfig(
        input_file=str(data / "train.tfrecord"), bert_config_file=str(data / "bert_config.json"),
        max_seq_length=32, max_predictions_per_seq=5, do_train=True,
    )
    optimizer = OptimizerConfig(learning_rate=1e-3, num_train_steps=3, num_warmup_steps=0)
    run = RunConfig(output_dir=str(tmp_path), train_batch_size=8, use_xla=True, seed=1)
    run_pretraining(config, optimizer, run, precision=PrecisionConfig("fp16"))
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-3")
    with pytest.raises(NorbertError, match="--precision=fp16 is for GPUs"):
        run_pretraining(config, optimizer, run, TpuConfig(use_tpu=True),
                        PrecisionConfig("fp16"))
