"""The pretraining heads, losses and metrics against Google's run_pretraining (in a subprocess)."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1
pytest.importorskip("bert")

import reference_shim  # noqa: E402  (tests/ is on sys.path)
from norbert import BertConfig, NorbertError  # noqa: E402
from norbert.model import heads  # noqa: E402

TOLERANCE = 1e-5
SMALL = BertConfig(**reference_shim.SMALL_CONFIG)


def constants(batch):
    return {name: tf.constant(value) for name, value in batch.items()}


@pytest.mark.parametrize("act", reference_shim.ACTIVATIONS)
def test_losses_and_metrics_equal_the_references(reference, act):
    theirs, batch, _, checkpoint = reference_shim.load_reference(reference, act)
    with tf.Graph().as_default():
        features = constants(batch)
        out = heads.pretraining_forward(SMALL.replace(hidden_act=act), features, False)
        metrics = heads.pretraining_metrics(*heads.metric_inputs(out, features))
        assert sorted(metrics) == sorted(
            ["masked_lm_accuracy", "masked_lm_loss", "next_sentence_accuracy", "next_sentence_loss"]
        )
        with tf.Session() as sess:
            tf.train.Saver().restore(sess, checkpoint)
            sess.run(tf.local_variables_initializer())
            sess.run([update for _, update in metrics.values()])
            fetches = {
                "total_loss": out.total_loss,
                "masked_lm_loss": out.masked_lm.loss,
                "masked_lm_example_loss": out.masked_lm.per_example_loss,
                "next_sentence_loss": out.next_sentence.loss,
                "next_sentence_example_loss": out.next_sentence.per_example_loss,
            }
            fetches.update(("metric/" + name, value) for name, (value, _) in metrics.items())
            ours = sess.run(fetches)
    for name, value in ours.items():
        assert np.shape(value) == theirs[name].shape, name
        diff = np.max(np.abs(value - theirs[name]))
        assert diff <= TOLERANCE, "%s differs by %g" % (name, diff)
    # The batch was made so that the accuracies are informative (neither 0 nor 1).
    assert 0.2 < ours["metric/masked_lm_accuracy"] < 0.8
    assert 0.2 < ours["metric/next_sentence_accuracy"] < 0.8


def test_gather_positions_picks_rows_per_sequence():
    rng = np.random.RandomState(0)
    sequence = rng.normal(size=[3, 6, 4]).astype(np.float32)
    positions = np.array([[0, 5], [2, 2], [1, 0]], np.int32)
    expected = np.stack([sequence[b, p] for b in range(3) for p in positions[b]])
    with tf.Graph().as_default(), tf.Session() as sess:
        dynamic = tf.placeholder(tf.float32, [None, None, 4])
        got = sess.run(heads.gather_positions(dynamic, positions.astype(np.int64)),
                       {dynamic: sequence})
        static = sess.run(heads.gather_positions(tf.constant(sequence), positions))
    assert np.array_equal(got, expected) and np.array_equal(static, expected)


def test_no_real_prediction_gives_zero_masked_lm_loss():
    batch = reference_shim.make_batch()
    batch["masked_lm_weights"] = np.zeros_like(batch["masked_lm_weights"])
    with tf.Graph().as_default():
        out = heads.pretraining_forward(SMALL, constants(batch), is_training=False)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            mlm, total, nsp = sess.run([out.masked_lm.loss, out.total_loss, out.next_sentence.loss])
    assert mlm == 0.0 and np.isfinite(total) and abs(total - nsp) < 1e-6


def test_every_variable_gets_a_gradient_and_the_output_layer_is_tied():
    batch = reference_shim.make_batch()
    with tf.Graph().as_default():
        out = heads.pretraining_forward(SMALL, constants(batch), is_training=True)
        variables = tf.trainable_variables()
        gradients = tf.gradients(out.total_loss, variables)
        assert [v.op.name for v, g in zip(variables, gradients) if g is None] == []
        # The masked-LM output weights are the word embeddings: no [V, H] variable of its own.
        assert [v.op.name for v in variables if v.shape.as_list() == [99, 32]] == [
            "bert/embeddings/word_embeddings"
        ]
        assert out.masked_lm.log_probs.shape.as_list() == [15, 99]
        assert out.next_sentence.log_probs.shape.as_list() == [3, 2]


def test_missing_features_are_named():
    batch = reference_shim.make_batch()
    del batch["masked_lm_weights"], batch["next_sentence_labels"]
    with tf.Graph().as_default():
        with pytest.raises(NorbertError, match="masked_lm_weights, next_sentence_labels"):
            heads.pretraining_forward(SMALL, constants(batch), is_training=True)
