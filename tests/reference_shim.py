"""Runs Google's reference model (bert-tensorflow 1.0.4) on TF 2.x, as an oracle for the tests.

Two parts:

* ``install()`` registers a stand-in for ``tensorflow.contrib.layers.layer_norm`` (gone since
  TF 2.0) as ``tensorflow.contrib`` and ``tensorflow.contrib.layers`` in ``sys.modules``, so
  that ``bert.modeling`` imports. Like the original it creates ``<scope>/beta`` and
  ``<scope>/gamma`` (default scope ``LayerNorm``) and normalises over the last axis with
  epsilon 1e-12, through ``tf.nn.moments`` and ``tf.nn.batch_normalization``.
* Run as a script (``python reference_shim.py OUT_DIR``), it builds the reference pretraining
  graph through ``bert.run_pretraining.model_fn_builder`` (eval mode) for each activation in
  ``ACTIVATIONS``, gives every variable random values, saves a checkpoint with
  ``tf.train.Saver`` and records the reference's outputs, losses and metrics on one batch.
  A subprocess because ``bert.run_pretraining`` defines absl flags that other reference modules
  also define; ``reference_run()`` starts it once per test session.
"""

import json
import os
import subprocess
import sys
import types

import numpy as np

# The small model every comparison uses (dropout left on: eval mode must switch it off).
SMALL_CONFIG = {
    "vocab_size": 99,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
}
ACTIVATIONS = ("gelu", "relu", "tanh", "linear")  # the reference's own activations
BATCH, SEQ, PREDICTIONS = 3, 16, 5
LENGTHS = (16, 11, 7)  # real tokens per row; the rest is padding
REAL_PREDICTIONS = (5, 4, 2)  # real masked-LM predictions per row; the rest is padding


def layer_norm(
    inputs,
    center=True,
    scale=True,
    activation_fn=None,
    reuse=None,
    variables_collections=None,
    outputs_collections=None,
    trainable=True,
    begin_norm_axis=1,
    begin_params_axis=-1,
    scope=None,
):
    """The subset of ``tf.contrib.layers.layer_norm`` that ``bert.modeling`` uses."""
    import tensorflow.compat.v1 as tf

    inputs = tf.convert_to_tensor(inputs)
    rank = inputs.shape.ndims
    if begin_norm_axis % rank != rank - 1 or begin_params_axis % rank != rank - 1:
        raise NotImplementedError("this stand-in normalises over the last axis only")
    if activation_fn is not None or variables_collections or outputs_collections:
        raise NotImplementedError("bert.modeling does not use these arguments")
    with tf.variable_scope(scope, default_name="LayerNorm", reuse=reuse):
        width = inputs.shape[-1:]
        beta = gamma = None
        if center:
            beta = tf.get_variable(
                "beta", width, initializer=tf.zeros_initializer(), trainable=trainable
            )
        if scale:
            gamma = tf.get_variable(
                "gamma", width, initializer=tf.ones_initializer(), trainable=trainable
            )
        mean, variance = tf.nn.moments(inputs, [rank - 1], keep_dims=True)
        outputs = tf.nn.batch_normalization(
            inputs, mean, variance, offset=beta, scale=gamma, variance_epsilon=1e-12
        )
        outputs.set_shape(inputs.shape)
        return outputs


def install():
    """Makes ``from tensorflow.contrib import layers`` work; idempotent."""
    import tensorflow  # noqa: F401  (the parent package must exist first)

    if "tensorflow.contrib.layers" in sys.modules:
        return
    contrib = types.ModuleType("tensorflow.contrib")
    layers = types.ModuleType("tensorflow.contrib.layers")
    layers.layer_norm = layer_norm
    contrib.layers = layers
    sys.modules["tensorflow.contrib"] = contrib
    sys.modules["tensorflow.contrib.layers"] = layers


def make_batch(seed=0):
    """A fixed batch of pretraining features as numpy int32/float32 arrays."""
    rng = np.random.RandomState(seed)
    vocab = SMALL_CONFIG["vocab_size"]
    input_ids = np.zeros([BATCH, SEQ], np.int32)
    input_mask = np.zeros([BATCH, SEQ], np.int32)
    segment_ids = np.zeros([BATCH, SEQ], np.int32)
    positions = np.zeros([BATCH, PREDICTIONS], np.int32)
    label_ids = np.zeros([BATCH, PREDICTIONS], np.int32)
    weights = np.zeros([BATCH, PREDICTIONS], np.float32)
    for row, (length, real) in enumerate(zip(LENGTHS, REAL_PREDICTIONS)):
        input_ids[row, :length] = rng.randint(5, vocab, size=length)
        input_ids[row, 0] = 2  # a [CLS]-like first token
        input_mask[row, :length] = 1
        segment_ids[row, length // 2 : length] = 1
        positions[row, :real] = np.sort(rng.choice(np.arange(1, length), real, replace=False))
        label_ids[row, :real] = rng.randint(5, vocab, size=real)
        weights[row, :real] = 1.0
    return {
        "input_ids": input_ids,
        "input_mask": input_mask,
        "segment_ids": segment_ids,
        "masked_lm_positions": positions,
        "masked_lm_ids": label_ids,
        "masked_lm_weights": weights,
        "next_sentence_labels": np.array([[0], [1], [1]], np.int32),
    }


# ---- the subprocess -------------------------------------------------------------------------


def _run_one(hidden_act, batch, out_dir):
    """Reference graph for one activation: checkpoint, outputs, losses and metrics."""
    import tensorflow.compat.v1 as tf
    from bert import modeling, run_pretraining

    # Record what the reference's model_fn builds: the model and both heads' outputs.
    recorded = {}
    original_init = modeling.BertModel.__init__
    original_mlm = run_pretraining.get_masked_lm_output
    original_nsp = run_pretraining.get_next_sentence_output

    def recording_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        recorded["model"] = self

    def recording_mlm(*args, **kwargs):
        recorded["mlm"] = original_mlm(*args, **kwargs)
        return recorded["mlm"]

    def recording_nsp(*args, **kwargs):
        recorded["nsp"] = original_nsp(*args, **kwargs)
        return recorded["nsp"]

    modeling.BertModel.__init__ = recording_init
    run_pretraining.get_masked_lm_output = recording_mlm
    run_pretraining.get_next_sentence_output = recording_nsp
    try:
        graph = tf.Graph()
        with graph.as_default():
            config = modeling.BertConfig.from_dict(dict(SMALL_CONFIG, hidden_act=hidden_act))
            features = {
                name: tf.placeholder(tf.as_dtype(value.dtype), value.shape, name=name)
                for name, value in batch.items()
            }
            model_fn = run_pretraining.model_fn_builder(
                bert_config=config,
                init_checkpoint=None,
                learning_rate=1e-4,
                num_train_steps=1,
                num_warmup_steps=0,
                use_tpu=False,
                use_one_hot_embeddings=False,
            )
            spec = model_fn(features, None, tf.estimator.ModeKeys.EVAL, {})
            metric_fn, metric_tensors = spec.eval_metrics
            metrics = metric_fn(*metric_tensors)
            model = recorded["model"]
            mlm_loss, mlm_example_loss, mlm_log_probs = recorded["mlm"]
            nsp_loss, nsp_example_loss, nsp_log_probs = recorded["nsp"]
            saver = tf.train.Saver()
            variables = tf.global_variables()
    finally:
        modeling.BertModel.__init__ = original_init
        run_pretraining.get_masked_lm_output = original_mlm
        run_pretraining.get_next_sentence_output = original_nsp

    os.makedirs(out_dir)
    with tf.Session(graph=graph) as sess:
        sess.run(tf.variables_initializer(variables))
        # Every variable off its initial value (biases 0, gamma 1 would hide wiring mistakes).
        # All read in one run and all written in another (what ``var.load`` does, fed at once).
        rng = np.random.RandomState(1)
        feed = {
            var.initializer.inputs[1]: value + rng.normal(0.0, 0.05, value.shape).astype(np.float32)
            for var, value in zip(variables, sess.run(variables))
        }
        sess.run([var.initializer for var in variables], feed)
        saver.save(sess, os.path.join(out_dir, "model.ckpt"))

        # Make half of the labels the model's own predictions, so accuracies are not all 0.
        feed = {features[name]: value for name, value in batch.items()}
        mlm_pred, nsp_pred = sess.run(
            [tf.argmax(mlm_log_probs, -1), tf.argmax(nsp_log_probs, -1)], feed
        )
        labels = batch["masked_lm_ids"].reshape(-1).copy()
        labels[::2] = mlm_pred[::2]
        batch = dict(batch, masked_lm_ids=labels.reshape(batch["masked_lm_ids"].shape))
        nsp_labels = nsp_pred.reshape(-1, 1).astype(np.int32)
        nsp_labels[-1] = 1 - nsp_labels[-1]
        batch["next_sentence_labels"] = nsp_labels
        feed = {features[name]: value for name, value in batch.items()}

        sess.run(tf.local_variables_initializer())
        sess.run([update for _, update in metrics.values()], feed)
        fetches = {
            "sequence_output": model.get_sequence_output(),
            "pooled_output": model.get_pooled_output(),
            "embedding_output": model.get_embedding_output(),
            "masked_lm_loss": mlm_loss,
            "masked_lm_example_loss": mlm_example_loss,
            "masked_lm_log_probs": mlm_log_probs,
            "next_sentence_loss": nsp_loss,
            "next_sentence_example_loss": nsp_example_loss,
            "next_sentence_log_probs": nsp_log_probs,
            "total_loss": spec.loss,
        }
        for index, layer in enumerate(model.get_all_encoder_layers()):
            fetches["layer_%d" % index] = layer
        for name, (value, _) in metrics.items():
            fetches["metric/" + name] = value
        results = sess.run(fetches, feed)
    np.savez(os.path.join(out_dir, "outputs.npz"), **results)
    np.savez(os.path.join(out_dir, "batch.npz"), **batch)
    with open(os.path.join(out_dir, "variables.json"), "w") as f:
        json.dump({v.op.name: v.shape.as_list() for v in variables}, f, indent=1, sort_keys=True)


def main(out_root):
    install()
    from absl import flags

    flags.FLAGS.mark_as_parsed()
    batch = make_batch()
    for act in ACTIVATIONS:
        _run_one(act, batch, os.path.join(out_root, act))


_CACHE = {}


def has_estimator():
    """True where ``tf.compat.v1.estimator.tpu.TPUEstimator`` exists (TF 1.15 to 2.15)."""
    try:
        import tensorflow.compat.v1 as tf

        return hasattr(tf.estimator.tpu, "TPUEstimator")
    except (ImportError, AttributeError):
        return False


def reference_run(tmp_path_factory):
    """Runs ``main`` in a subprocess once per test session; returns the output folder.

    Skips the calling test where TensorFlow has no ``tf.estimator`` (2.16 and newer): the
    reference's run_pretraining needs it.
    """
    import pytest

    if not has_estimator():
        pytest.skip("the reference needs tf.estimator (TensorFlow <= 2.15)")
    if "root" not in _CACHE:
        root = str(tmp_path_factory.mktemp("reference"))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        done = subprocess.run(
            [sys.executable, os.path.abspath(__file__), root],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            universal_newlines=True,
        )
        if done.returncode != 0:
            raise RuntimeError("the reference run failed:\n" + done.stdout[-5000:])
        _CACHE["root"] = root
    return _CACHE["root"]


def load_reference(root, act):
    """(outputs, batch, {variable name: shape}) recorded for one activation."""
    folder = os.path.join(root, act)
    outputs = dict(np.load(os.path.join(folder, "outputs.npz")))
    batch = dict(np.load(os.path.join(folder, "batch.npz")))
    with open(os.path.join(folder, "variables.json")) as f:
        shapes = json.load(f)
    return outputs, batch, shapes, os.path.join(folder, "model.ckpt")


if __name__ == "__main__":
    main(sys.argv[1])
