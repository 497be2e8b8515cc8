"""BertModel against Google's reference (bert-tensorflow 1.0.4, run in a subprocess)."""

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1
pytest.importorskip("bert")

import reference_shim  # noqa: E402  (tests/ is on sys.path)
from norbert import BertConfig, NorbertError  # noqa: E402
from norbert.model import heads
from norbert.model import modeling  # noqa: E402

TOLERANCE = 1e-5
SMALL = BertConfig(**reference_shim.SMALL_CONFIG)


def features_from(batch, dtype=tf.int32, dynamic=False):
    """Constants (or placeholders with unknown batch and length, and a feed) for a batch."""
    features, feed = {}, {}
    for name, value in batch.items():
        kind = tf.float32 if value.dtype == np.float32 else dtype
        if dynamic:
            features[name] = tf.placeholder(kind, [None] * value.ndim, name=name)
            feed[features[name]] = value
        else:
            features[name] = tf.constant(value, dtype=kind)
    return features, feed


def variable_shapes():
    return {v.op.name: v.shape.as_list() for v in tf.global_variables()}


def test_variable_names_and_shapes_equal_the_references(reference):
    _, batch, reference_shapes, _ = reference_shim.load_reference(reference, "gelu")
    with tf.Graph().as_default():
        features, _ = features_from(batch)
        heads.pretraining_forward(SMALL, features, is_training=True)
        ours = variable_shapes()
        assert {v.op.name for v in tf.trainable_variables()} == set(ours)
    assert ours == reference_shapes
    # Spot checks of Google's layout, independent of the reference run.
    assert ours["bert/encoder/layer_1/intermediate/dense/kernel"] == [32, 37]
    assert ours["bert/encoder/layer_1/output/dense/kernel"] == [37, 32]
    assert ours["cls/seq_relationship/output_weights"] == [2, 32]
    assert ours["cls/predictions/output_bias"] == [99]


def run_restored(config, checkpoint, batch, dynamic=False, one_hot=False, dtype=tf.int32):
    """Our model + heads, restored from ``checkpoint``, on ``batch`` (eval mode)."""
    with tf.Graph().as_default():
        features, feed = features_from(batch, dtype=dtype, dynamic=dynamic)
        out = heads.pretraining_forward(
            config, features, is_training=False, use_one_hot_embeddings=one_hot
        )
        ours = variable_shapes()
        theirs = dict(tf.train.list_variables(checkpoint))
        missing = sorted(set(ours) - set(theirs))
        unexpected = sorted(set(theirs) - set(ours))
        assert not missing and not unexpected, (missing, unexpected)
        assert ours == theirs
        fetches = {
            "sequence_output": out.model.get_sequence_output(),
            "pooled_output": out.model.get_pooled_output(),
            "embedding_output": out.model.get_embedding_output(),
            "masked_lm_log_probs": out.masked_lm.log_probs,
            "next_sentence_log_probs": out.next_sentence.log_probs,
        }
        for index, layer in enumerate(out.model.get_all_encoder_layers()):
            fetches["layer_%d" % index] = layer
        with tf.Session() as sess:
            tf.train.Saver().restore(sess, checkpoint)
            return sess.run(fetches, feed)


def assert_close(ours, theirs, names):
    for name in names:
        assert ours[name].shape == theirs[name].shape, name
        diff = np.max(np.abs(ours[name] - theirs[name]))
        assert diff <= TOLERANCE, "%s differs by %g" % (name, diff)


COMPARED = (
    "embedding_output",
    "layer_0",
    "layer_1",
    "sequence_output",
    "pooled_output",
    "masked_lm_log_probs",
    "next_sentence_log_probs",
)


@pytest.mark.parametrize("act", reference_shim.ACTIVATIONS)
def test_reference_checkpoint_restores_and_gives_the_same_outputs(reference, act):
    # The "gelu" case is Google's tanh-approximated GELU against the reference's own.
    theirs, batch, _, checkpoint = reference_shim.load_reference(reference, act)
    ours = run_restored(SMALL.replace(hidden_act=act), checkpoint, batch)
    assert_close(ours, theirs, COMPARED)


def test_unknown_shapes_one_hot_lookup_and_int64_ids_give_the_same_outputs(reference):
    theirs, batch, _, checkpoint = reference_shim.load_reference(reference, "gelu")
    dynamic = run_restored(SMALL, checkpoint, batch, dynamic=True, dtype=tf.int64)
    assert_close(dynamic, theirs, COMPARED)
    one_hot = run_restored(SMALL, checkpoint, batch, one_hot=True)
    assert_close(one_hot, theirs, COMPARED)


def test_transformers_gelu_names_map_to_googles_gelu(reference):
    theirs, batch, _, checkpoint = reference_shim.load_reference(reference, "gelu")
    ours = run_restored(SMALL.replace(hidden_act="gelu_pytorch_tanh"), checkpoint, batch)
    assert_close(ours, theirs, COMPARED)
    # The erf form is a different function: about 1e-3 apart, not equal.
    exact = run_restored(SMALL.replace(hidden_act="gelu_exact"), checkpoint, batch)
    diff = np.max(np.abs(exact["sequence_output"] - theirs["sequence_output"]))
    assert 1e-5 < diff < 0.05


def test_bert_base_shapes_without_allocating():
    config = BertConfig(vocab_size=30522, type_vocab_size=2)
    with tf.Graph().as_default():
        ids = tf.placeholder(tf.int32, [None, 128])
        model = modeling.BertModel(config, False, ids, tf.ones_like(ids), tf.zeros_like(ids))
        shapes = variable_shapes()
        assert model.get_sequence_output().shape.as_list() == [None, 128, 768]
        assert model.get_pooled_output().shape.as_list() == [None, 768]
        assert len(model.get_all_encoder_layers()) == 12
        assert model.get_embedding_table().shape.as_list() == [30522, 768]
    assert len(shapes) == 5 + 12 * 16 + 2
    assert shapes["bert/embeddings/word_embeddings"] == [30522, 768]
    assert shapes["bert/embeddings/position_embeddings"] == [512, 768]
    assert shapes["bert/embeddings/token_type_embeddings"] == [2, 768]
    assert shapes["bert/encoder/layer_11/attention/self/query/kernel"] == [768, 768]
    assert shapes["bert/encoder/layer_11/intermediate/dense/kernel"] == [768, 3072]
    assert shapes["bert/encoder/layer_11/output/dense/kernel"] == [3072, 768]
    assert shapes["bert/encoder/layer_11/output/LayerNorm/gamma"] == [768]
    assert shapes["bert/pooler/dense/kernel"] == [768, 768]
    # BERT-base's well-known parameter count.
    assert sum(int(np.prod(s)) for s in shapes.values()) == 109482240


def small_outputs(is_training, runs=2):
    """Sequence outputs of ``runs`` evaluations of one randomly initialised small model."""
    batch = reference_shim.make_batch()
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        features, _ = features_from(batch)
        model = modeling.BertModel(
            SMALL, is_training, features["input_ids"], features["input_mask"],
            features["segment_ids"],
        )
        dropout_ops = [op.name for op in tf.get_default_graph().get_operations()
                       if "dropout" in op.name.lower()]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return [sess.run(model.get_sequence_output()) for _ in range(runs)], dropout_ops


def test_dropout_only_when_training():
    (first, second), ops = small_outputs(is_training=True)
    assert ops and np.max(np.abs(first - second)) > 1e-3
    (first, second), ops = small_outputs(is_training=False)
    assert not ops and np.array_equal(first, second)


def test_padding_does_not_change_real_positions():
    batch = reference_shim.make_batch()
    changed = dict(batch, input_ids=batch["input_ids"].copy())
    changed["input_ids"][batch["input_mask"] == 0] = 7  # other ids where the mask is 0
    results = []
    for data in (batch, changed):
        with tf.Graph().as_default():
            tf.set_random_seed(1)
            features, _ = features_from(data)
            model = modeling.BertModel(
                SMALL, False, features["input_ids"], features["input_mask"],
                features["segment_ids"],
            )
            with tf.Session() as sess:
                sess.run(tf.global_variables_initializer())
                results.append(sess.run(model.get_sequence_output()))
    real = batch["input_mask"] == 1
    assert np.max(np.abs(results[0][real] - results[1][real])) < 1e-5
    assert np.max(np.abs(results[0][~real] - results[1][~real])) > 1e-3


def test_activations_match_their_formulas():
    x = np.linspace(-6.0, 6.0, 241).astype(np.float32)
    erf = np.vectorize(math.erf)
    exact = 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    approx = 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    with tf.Graph().as_default(), tf.Session() as sess:
        t = tf.constant(x)
        got = sess.run({
            name: modeling.get_activation(name)(t)
            for name in ("gelu", "gelu_new", "gelu_exact", "relu", "tanh")
        })
    assert np.max(np.abs(got["gelu"] - approx)) < 1e-6
    assert np.array_equal(got["gelu_new"], got["gelu"])
    assert np.max(np.abs(got["gelu_exact"] - exact)) < 1e-6
    assert 1e-4 < np.max(np.abs(got["gelu"] - got["gelu_exact"])) < 1e-2
    assert np.array_equal(got["relu"], np.maximum(x, 0))
    assert np.max(np.abs(got["tanh"] - np.tanh(x))) < 1e-6
    assert modeling.get_activation("linear") is None
    with pytest.raises(NorbertError, match="swish"):
        modeling.get_activation("swish")


def test_layer_norm_and_the_reference_stand_in_agree_with_numpy():
    rng = np.random.RandomState(0)
    x = (rng.normal(size=[4, 7, 16]) * 3 + 1).astype(np.float32)
    gamma = rng.normal(size=[16]).astype(np.float32)
    beta = rng.normal(size=[16]).astype(np.float32)
    mean = x.mean(-1, keepdims=True)
    expected = (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-12)
    expected = expected * gamma + beta
    with tf.Graph().as_default():
        t = tf.constant(x)
        with tf.variable_scope("ours"):
            ours = modeling.layer_norm(t)
        with tf.variable_scope("theirs"):
            theirs = reference_shim.layer_norm(t, begin_norm_axis=-1, begin_params_axis=-1)
        names = sorted(v.op.name for v in tf.global_variables())
        assert names == ["ours/LayerNorm/beta", "ours/LayerNorm/gamma",
                         "theirs/LayerNorm/beta", "theirs/LayerNorm/gamma"]
        with tf.Session() as sess:
            for v in tf.global_variables():
                v.load(beta if v.op.name.endswith("beta") else gamma, sess)
            got_ours, got_theirs = sess.run([ours, theirs])
    assert np.max(np.abs(got_ours - expected)) < 1e-5
    assert np.max(np.abs(got_theirs - expected)) < 1e-5


def test_clear_errors_at_the_boundary():
    with tf.Graph().as_default():
        ids = tf.zeros([2, 8], tf.int32)
        with pytest.raises(NorbertError, match="BertConfig"):
            modeling.BertModel(reference_shim.SMALL_CONFIG, False, ids)
        with pytest.raises(NorbertError, match="is_training"):
            modeling.BertModel(SMALL, tf.constant(True), ids)
        with pytest.raises(NorbertError, match="input_ids"):
            modeling.BertModel(SMALL, False, tf.zeros([8], tf.int32))
        with pytest.raises(NorbertError, match="input_ids"):
            modeling.BertModel(SMALL, False, tf.zeros([2, 8], tf.float32))
        with pytest.raises(NorbertError, match="max_position_embeddings"):
            modeling.BertModel(SMALL, False, tf.zeros([2, 65], tf.int32))


def test_too_long_sequence_of_unknown_length_fails_when_run():
    with tf.Graph().as_default():
        ids = tf.placeholder(tf.int32, [None, None])
        model = modeling.BertModel(SMALL, False, ids)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            assert sess.run(model.get_pooled_output(), {ids: np.ones([1, 64])}).shape == (1, 32)
            with pytest.raises(tf.errors.InvalidArgumentError, match="max_position"):
                sess.run(model.get_pooled_output(), {ids: np.ones([1, 65])})


# ---- stateless dropout --------------------------------------------------------------------


def dropped(shape, rate, seeds, dtype=tf.float32, value=1.0):
    """``modeling.dropout`` of a tensor of ``value``s [shape] once per (seed, site, batches,
    replica, replicas) in ``seeds``, each run in a fresh session."""
    results = []
    for seed, site, batches, replica, replicas in seeds:
        with tf.Graph().as_default():
            x = tf.fill(shape, tf.constant(value, dtype))
            out = modeling.dropout(x, rate, modeling.site_seed(
                seed, site, tf.constant(batches, tf.int64), replica, replicas))
            assert out.dtype == dtype
            with tf.Session() as sess:
                results.append(sess.run(tf.cast(out, tf.float32)))
    return results


def test_stateless_dropout_is_a_function_of_its_key():
    base = (7, 0, 5, 0, 2)
    same, again, *others = dropped([64, 64], 0.1, [
        base, base, (8, 0, 5, 0, 2), (7, 1, 5, 0, 2), (7, 0, 6, 0, 2), (7, 0, 5, 1, 2)])
    assert np.array_equal(same, again)  # another session, the same masks
    for other in others:  # seed, site, batch, replica: each changes the mask
        assert np.mean((same == 0) != (other == 0)) > 0.1
    # Replica 1 of batch 5 is not replica 0 of batch 6: one count per replica per batch.
    last, next_first = dropped([64, 64], 0.1, [(7, 0, 5, 1, 2), (7, 0, 6, 0, 2)])
    assert np.mean((last == 0) != (next_first == 0)) > 0.1


def test_stateless_dropout_drops_the_rate_and_keeps_the_mean():
    (out,) = dropped([1000, 1000], 0.1, [(3, 0, 0, 0, 1)])
    dropped_share = np.mean(out == 0)
    assert abs(dropped_share - 0.1) < 0.002  # 6 standard deviations of a 1e6 draw
    assert np.allclose(out[out != 0], 1.0 / 0.9)  # kept values scaled by 1 / (1 - rate)
    assert abs(out.mean() - 1.0) < 0.003
    for dtype in (tf.bfloat16, tf.float16):  # the compute dtype kept; the share the same
        (low,) = dropped([300, 300], 0.25, [(3, 0, 0, 0, 1)], dtype=dtype)
        assert abs(np.mean(low == 0) - 0.25) < 0.01
        assert np.allclose(low[low != 0], 1.0 / 0.75, rtol=1e-2)
    with tf.Graph().as_default():
        x = tf.ones([4])
        assert modeling.dropout(x, 0.0, tf.constant([1, 2], tf.int64)) is x


def test_dropout_key_numbers_the_sites_it_builds():
    with tf.Graph().as_default():
        key = modeling.DropoutKey(5, tf.constant(3, tf.int64))
        x = tf.ones([50, 50])
        first, second = key.apply(x, 0.5), key.apply(x, 0.5)
        assert key.apply(x, 0.0) is x and key.sites == 2  # no site for a rate of 0
        with tf.Session() as sess:
            a, b = sess.run([first, second])
    assert np.mean((a == 0) != (b == 0)) > 0.3


def keyed_model_outputs(key_step, runs=2):
    """Sequence outputs of a training SMALL model with a ``DropoutKey`` at batch ``key_step``
    (a placeholder), ``runs`` times per step in [0, 0, 1]; and the graph's random op types."""
    batch = reference_shim.make_batch()
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        features, _ = features_from(batch)
        step = tf.placeholder(tf.int64, [])
        key = modeling.DropoutKey(11, step)
        model = modeling.BertModel(
            SMALL, True, features["input_ids"], features["input_mask"],
            features["segment_ids"], dropout_key=key,
        )
        kinds = {op.type for op in tf.get_default_graph().get_operations()
                 if "Random" in op.type}
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return [sess.run(model.get_sequence_output(), {step: s}) for s in key_step], \
                kinds, key.sites


def test_keyed_model_dropout_depends_on_the_key_alone():
    (first, again, next_step), kinds, sites = keyed_model_outputs([0, 0, 1])
    # One site for the embeddings, three per layer (attention probabilities, two outputs).
    assert sites == 1 + 3 * SMALL.num_hidden_layers
    # Only stateless random ops (the initializers' are stateful, dropout's not).
    assert any("Stateless" in kind for kind in kinds)
    assert np.array_equal(first, again)
    assert np.max(np.abs(first - next_step)) > 1e-3
    (eval_output, _), _ = small_outputs(is_training=False)
    assert np.max(np.abs(first - eval_output)) > 1e-3
